import Analysis
import Domain
import Testing

@Suite struct TokenMaskerTests {
    @Test(arguments: [
        ("Timeout after 30s calling 10.0.0.7:5432", "Timeout after <*> calling <*>"),
        ("User 8d6f7a9e-2b1c-4c5d-9e8f-0a1b2c3d4e5f not found", "User <*> not found"),
        ("GET https://api.example.com/v1/orders/991 failed", "GET <*> failed"),
        ("cannot open /var/log/app/2026-11-22.log: permission denied", "cannot open <*>: permission denied"),
        ("order 'A-991' rejected: \"insufficient funds\"", "order '<*>' rejected: \"<*>\""),
        ("took 250ms (limit 200ms), 42% of quota", "took <*> (limit <*>), <*> of quota"),
        ("block 0x7ffde0a1 freed twice", "block <*> freed twice"),
        ("mail to ops@example.com bounced", "mail to <*> bounced"),
        ("Connection refused", "Connection refused"),
        ("retry 3 of 5", "retry <*> of <*>"),
        ("OAuth2 token expired", "OAuth2 token expired"),
    ])
    func masksVariableTokens(message: String, template: String) {
        #expect(TokenMasker.mask(message) == template)
    }
}

@Suite struct FingerprintTests {
    @Test func sameShapeSameGroupDifferentShapeDifferentGroup() {
        let a = Fingerprint(service: "checkout", errorType: "Timeout", message: "Timeout after 30s calling 10.0.0.7:5432", frames: [])
        let b = Fingerprint(service: "checkout", errorType: "Timeout", message: "Timeout after 12s calling 10.0.0.9:5432", frames: [])
        let otherService = Fingerprint(service: "payments", errorType: "Timeout", message: "Timeout after 30s calling 10.0.0.7:5432", frames: [])
        let otherType = Fingerprint(service: "checkout", errorType: "IOError", message: "Timeout after 30s calling 10.0.0.7:5432", frames: [])
        #expect(a == b)
        #expect(a.value != otherService.value && a.value != otherType.value)
        #expect(a.value.count == 16)
    }

    @Test func framesCountButLineNumbersAndLibraryFramesDoNot() {
        let frames = [StackFrame(function: "Pay.charge", line: 42), StackFrame(function: "Netty.read", inApp: false)]
        let moved = [StackFrame(function: "Pay.charge", line: 57)]
        let elsewhere = [StackFrame(function: "Refund.issue", line: 42)]
        let base = Fingerprint(service: "s", errorType: "E", message: "m", frames: frames)
        #expect(base == Fingerprint(service: "s", errorType: "E", message: "m", frames: moved))
        #expect(base != Fingerprint(service: "s", errorType: "E", message: "m", frames: elsewhere))
    }

    @Test func isStableAcrossProcesses() {
        // A fixed value: a change here changes every stored group, so it must be deliberate.
        #expect(Fingerprint(service: "checkout", errorType: "TimeoutError", message: "upstream timed out", frames: []).value
            == "c8b924a58e0cd697")
        #expect(StableHash.hex64("faultline") == "cf91191f4db109d6")
        #expect(StableHash.uuid("errors/0/1/0").uuidString.dropFirst(14).first == "8")
    }
}

/// The fingerprint's rules are frozen (a change regroups every stored error): a fast path must
/// give exactly what the rules gave. Random messages over the bytes the rules look at, masked
/// and fingerprinted, hash to the values recorded when they were frozen.
@Suite struct FrozenFingerprintTests {
    /// Messages of tokens drawn from pieces that every rule reacts to.
    static func messages(_ count: Int, seed: UInt64) -> [String] {
        let pieces = ["/", ".", "..", "~", ":", "://", "@", "-", "_", "'", "\"", "`", "(", ")", "[", "]", "{", "}", "=", "<", ">",
                      ",", ";", "!", "?", " ", "  ", "\t", "\n", "0", "7", "42", "1234", "ab", "DEAD", "beef", "f00d", "x", "Error",
                      "http", "ms", "%", "é", "\u{212A}", "ü", "user", "id", "<*>", "C:\\", "v1.2.3"]
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            (0..<Int.random(in: 1...14, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
        }
    }

    @Test func maskingGivesWhatTheFrozenRulesGave() {
        let masks = Self.messages(20_000, seed: 11).map(TokenMasker.mask)
        #expect(StableHash.hex64(masks.joined(separator: "\n")) == "e782652e6933965d")
    }

    @Test func fingerprintsAreWhatTheFrozenRulesGave() {
        let messages = Self.messages(5_000, seed: 12)
        let values = messages.indices.map { index in
            Fingerprint(service: messages[(index + 1) % messages.count], errorType: index % 3 == 0 ? nil : messages[(index + 2) % messages.count],
                        message: messages[index],
                        frames: [StackFrame(function: messages[(index + 3) % messages.count], file: nil, inApp: index % 2 == 0)]).value
        }
        #expect(StableHash.hex64(values.joined(separator: "\n")) == "ab8cc3188649f580")
    }

    @Test func theJoiningHashIsTheHashOfTheJoinedText() {
        let messages = Self.messages(2_000, seed: 13)
        for index in stride(from: 0, to: messages.count - 3, by: 4) {
            let parts = Array(messages[index..<index + 4])
            #expect(StableHash.hex64(joining: parts[0], parts[1], parts[2], parts[3]) == StableHash.hex64(parts.joined(separator: "\u{1F}")))
        }
        #expect(StableHash.hex64(joining: "", "") == StableHash.hex64("\u{1F}"))
    }
}
