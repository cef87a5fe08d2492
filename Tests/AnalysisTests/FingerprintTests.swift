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
