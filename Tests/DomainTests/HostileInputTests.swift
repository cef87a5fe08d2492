import Domain
import Foundation
import Testing

/// Messages shaped to break the decoder: numbers no conversion holds, counts and sizes that
/// make quadratic work or runaway output. Each must be stored or refused with a reason, never
/// trap, and produce output bounded by a fixed multiple of its input.
@Suite struct HostileInputTests {
    func otlp(time: String, key: String = "timeUnixNano") -> String {
        """
        {"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
         "scopeLogs":[{"logRecords":[{"\(key)":\(time),"severityNumber":17,"body":{"stringValue":"boom"}}]}]}]}
        """
    }

    @Test(arguments: ["1e30", "-1e30", "1e400", "-5", "\"99999999999999999999\"", "1.5e19", "-0.0e0"])
    func otlpTimesNoDateHolds(time: String) {
        let why = reason(Array(otlp(time: time).utf8))
        #expect(why != nil, "\(time) was accepted")
        #expect(why?.contains("timeUnixNano") == true, "\(why ?? "")")
    }

    @Test func onlyAHugeObservedTime() {
        let why = reason(Array(otlp(time: "1e30", key: "observedTimeUnixNano").utf8))
        #expect(why?.contains("observedTimeUnixNano") == true, "\(why ?? "accepted")")
    }

    @Test func rfc3339FormatIsTotal() {
        for seconds in [Double.infinity, -.infinity, .nan, 1e30, -1e30, 9.3e18, -62_167_219_201, 253_402_300_800, .greatestFiniteMagnitude] {
            let text = RFC3339.format(Date(timeIntervalSince1970: seconds))
            #expect(text.hasSuffix("s since 1970"), "\(seconds): \(text)")
        }
        #expect(RFC3339.format(Date(timeIntervalSince1970: -62_167_219_200)) == "0000-01-01T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_799)) == "9999-12-31T23:59:59.000Z")
    }

    /// The event id parser gives Foundation's UUID for every 8-4-4-4-12 hexadecimal text and
    /// refuses every other text, some of which Foundation reads (a sign, a space or `0x` in a
    /// group): checked on hand-picked shapes and on 20,000 near-misses.
    @Test func eventIDsParseAsFoundationParsesThemButStrictly() {
        func strictlyValid(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            guard bytes.count == 36 else { return false }
            return bytes.indices.allSatisfy { index in
                [8, 13, 18, 23].contains(index) ? bytes[index] == UInt8(ascii: "-")
                    : (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index])
                        || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(bytes[index] | 0x20)
            }
        }
        func check(_ text: String) {
            #expect(UUID(hyphenated: text) == (strictlyValid(text) ? UUID(uuidString: text) : nil), "\(text)")
        }
        #expect(UUID(uuidString: "+f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5") != nil && UUID(hyphenated: "+f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5") == nil)
        let samples = [
            "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5", "6F1C2D3E-4A5B-4C6D-8E7F-90A1B2C3D4E5", "6f1C2d3E-4a5B-4c6D-8e7F-90a1B2c3D4e5",
            "6f1c2d3e4a5b4c6d8e7f90a1b2c3d4e5", "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e", "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5f",
            "+f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5", " 6f1c2d3-4a5b-4c6d-8e7f-90a1b2c3d4e5", "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4g5",
            "6f1c2d3e_4a5b-4c6d-8e7f-90a1b2c3d4e5", "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4é", "", "-", "{6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5}",
            "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e\u{0}",
        ]
        for text in samples { check(text) }
        #expect(samples.filter { UUID(hyphenated: $0) != nil }.count == 5)
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEF-g +x")
        for _ in 0..<20_000 {
            var characters = Array(UUID().uuidString)
            for _ in 0..<Int.random(in: 0...2, using: &random) {
                characters[Int.random(in: 0..<characters.count, using: &random)] = alphabet.randomElement(using: &random)!
            }
            if Int.random(in: 0..<10, using: &random) == 0 { characters.removeLast() }
            check(String(characters))
        }
    }

    @Test func saturatingConversion() {
        #expect(Int(saturating: .nan) == 0)
        #expect(Int(saturating: 1e300) == .max && Int(saturating: -.infinity) == .min)
        #expect(Int(saturating: -2.9) == -2)
    }

    @Test func timesFarFromNowAreRefusedWithTheirText() {
        #expect(reason(Array(#"{"timestamp":"0000-01-01T00:00:00Z","service":"a","message":"m"}"#.utf8))?.contains("0000-01-01") == true)
        #expect(reason(Array(#"{"timestamp":"9999-12-31T23:59:59Z","service":"a","message":"m"}"#.utf8))?.contains("future") == true)
        #expect(reason(Array(#"{"@t":"0001-01-01T00:00:00Z","@l":"Error","@m":"m","Application":"a"}"#.utf8))?.contains("older") == true)
    }

    @Test func deploymentTimesOutsideWhatAColumnHolds() throws {
        for time in ["0000-01-01T00:00:00Z", "1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            #expect(throws: DecodeError.self) {
                try Deployment.decode(Array(#"{"service":"a","version":"1.0.0","started_at":"\#(time)"}"#.utf8))
            }
        }
        let recent = try Deployment.decode(Array(#"{"service":"a","version":"1.0.0","started_at":"2001-01-01T00:00:00Z"}"#.utf8))
        let context = DeploymentContext(version: recent.version, startedAt: recent.startedAt)
        #expect(context.secondsSinceRollout(at: Date(timeIntervalSince1970: 1e30)) == .max)
        #expect(context.secondsSinceRollout(at: Date(timeIntervalSince1970: .nan)) == 0)
    }

    @Test func httpStatusAndLinesOutOfRange() {
        let base = #""timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m""#
        #expect(reason(Array("{\(base),\"http_status\":1e400}".utf8))?.contains("http_status") == true)
        #expect(reason(Array("{\(base),\"http_status\":99999999999999999999999}".utf8))?.contains("http_status") == true)
        #expect(reason(Array("{\(base),\"stacktrace\":[{\"function\":\"f\",\"line\":1e30}]}".utf8))?.contains("line") == true)
        #expect(reason(Array("{\(base),\"stacktrace\":[{\"function\":\"f\",\"line\":-1}]}".utf8))?.contains("line") == true)
    }

    @Test func manyKeysAreParsedOnceEach() throws {
        // 60,000 distinct keys and a repeated one: the last value wins.
        var text = #"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"first""#
        for n in 0..<60_000 { text += ",\"k\(n)\":\(n)" }
        text += #","message":"last"}"#
        let event = try #require(try decode(text).events.first)
        #expect(event.message == "last")
    }

    @Test func clefTemplateRendersIntoABoundedBuffer() throws {
        // Each hole would repeat a 100 KB property: the rendering stops at the message limit.
        let big = String(repeating: "x", count: 100_000)
        let holes = String(repeating: "{P}", count: 2_000)
        let text = #"{"@t":"2026-11-22T04:00:00Z","@l":"Error","@mt":"\#(holes)","P":"\#(big)","Application":"a"}"#
        let event = try #require(try decode(text).events.first)
        let limit = DecodeLimits().maxMessageLength
        #expect(event.message.utf8.count <= limit + 16)
        #expect(event.message.hasSuffix("…[truncated]"))
    }

    @Test func clefTemplateSyntax() throws {
        let text = #"{"@t":"2026-11-22T04:00:00Z","@l":"Error","@mt":"{{literal}} {User} paid {@Amount:0.00} {Missing} {unclosed","User":"ann","Amount":{"v":5},"Application":"shop"}"#
        let event = try #require(try decode(text).events.first)
        #expect(event.message == #"{literal} ann paid {"v":5} {Missing} {unclosed"#)
        #expect(event.service == "shop")
        // The service property renders too, though it becomes the event's service.
        let named = #"{"@t":"2026-11-22T04:00:00Z","@l":"Error","@mt":"in {Application}","Application":"shop"}"#
        #expect(try decode(named).events.first?.message == "in shop")
    }

    @Test func unclosedBracesStayLinear() throws {
        // "{x{x{x…" with no "}": each "{" must not search the rest of the template again.
        let template = String(repeating: "{x", count: 200_000)
        let text = #"{"@t":"2026-11-22T04:00:00Z","@l":"Error","@mt":"\#(template)","Application":"a"}"#
        let event = try #require(try decode(text).events.first)
        #expect(event.message.hasPrefix("{x{x"))
    }

    @Test func frameNamesAndCountsAreBounded() throws {
        let long = String(repeating: "f", count: 2_000)
        var frames: [String] = []
        for _ in 0..<300 { frames.append(#"{"function":"\#(long)","file":"a.swift","line":1}"#) }
        let text = #"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m","stacktrace":[\#(frames.joined(separator: ","))]}"#
        let event = try #require(try decode(text).events.first)
        #expect(event.frames.count == 200)
        #expect(event.frames.allSatisfy { ($0.function?.utf8.count ?? 0) <= 1024 + 16 })
        let trace = (0..<300).map { _ in "  at \(long) (x.java:1)" }.joined(separator: "\n")
        let textual = try #require(try decode(
            #"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m","stacktrace":"\#(trace.replacingOccurrences(of: "\n", with: "\\n"))"}"#
        ).events.first)
        #expect(textual.frames.count <= 200)
        #expect(textual.frames.allSatisfy { ($0.function?.utf8.count ?? 0) <= 1024 + 16 })
    }

    @Test func longErrorCodesAreRefusedInEveryFormat() {
        let code = String(repeating: "E", count: 300)
        #expect(reason(Array(#"{"@t":"2026-11-22T04:00:00Z","@l":"Error","@m":"m","Application":"a","ErrorCode":"\#(code)"}"#.utf8))?
            .contains("ErrorCode") == true)
    }

    @Test func deadLetterReasonsCarryNoNULAndStayShort() {
        let letter = DeadLetter(origin: origin, key: nil, value: [1], headers: [],
                                reason: "bad \u{0} " + String(repeating: "é", count: 2_000))
        #expect(!letter.reason.utf8.contains(0))
        #expect(letter.reason.utf8.count <= 1_004)
        #expect(String(validating: Array(letter.reason.utf8), as: UTF8.self) != nil)
    }

    /// A NUL followed by a combining mark is one Character that is not "\u{0}": character-wise
    /// replacement let it through to PostgreSQL, which refuses NUL in text.
    @Test func nulBeforeACombiningMarkIsReplacedToo() throws {
        let event = try #require(try decode(#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"x\u0000\u0300y"}"#).events.first)
        #expect(!event.message.utf8.contains(0))
        #expect(event.message == "x\u{FFFD}\u{300}y")
        let letter = DeadLetter(origin: origin, key: nil, value: [1], headers: [], reason: "bad \u{0}\u{301}")
        #expect(!letter.reason.utf8.contains(0))
        #expect("a\u{0}\u{300}".replacingNUL == "a\u{FFFD}\u{300}")
    }

    @Test func cutNeverSplitsACharacter() throws {
        // A 4-byte character across the 32 KiB limit.
        let limit = DecodeLimits().maxMessageLength
        let message = String(repeating: "a", count: limit - 2) + "😀😀"
        let event = try #require(try decode(#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"\#(message)"}"#).events.first)
        #expect(event.message == String(repeating: "a", count: limit - 2) + "…[truncated]")
    }
}
