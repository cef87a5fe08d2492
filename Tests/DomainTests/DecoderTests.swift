import Domain
import Foundation
import Testing

let now = RFC3339.parse("2026-11-22T05:00:00Z")!
let origin = MessageOrigin(topic: "errors", partition: 2, offset: 41)

func decode(_ text: String, contentType: String? = nil) throws(DecodeError) -> DecodedMessage {
    var origin = origin
    origin.contentType = contentType
    return try EventDecoder().decode(Array(text.utf8), origin: origin, now: now)
}

func reason(_ bytes: [UInt8], contentType: String? = nil) -> String? {
    var origin = origin
    origin.contentType = contentType
    do {
        _ = try EventDecoder().decode(bytes, origin: origin, now: now)
        return nil
    } catch {
        return error.reason
    }
}

@Suite struct NativeFormatTests {
    @Test func decodesEveryField() throws {
        let message = try decode("""
            {"event_id":"8d6f7a9e-2b1c-4c5d-9e8f-0a1b2c3d4e5f","timestamp":"2026-11-22T04:50:32.25+01:00","service":"checkout",
             "environment":"staging","version":"1.8.3","severity":"ERROR","error_type":"TimeoutError","message":"upstream timed out",
             "stacktrace":[{"function":"Checkout.pay","file":"Pay.swift","line":42},{"function":"NIO.run","in_app":false}],
             "error_code":504,"http_status":504,"trace_id":"abc","span_id":"def","host":"node-1","pod":"checkout-7f9","namespace":"shop",
             "region":"eu-west-1","attributes":{"user_tier":"gold","retries":3}}
            """)
        #expect(message.format == .native)
        let event = try #require(message.events.first)
        #expect(event.eventID == UUID(uuidString: "8d6f7a9e-2b1c-4c5d-9e8f-0a1b2c3d4e5f"))
        #expect(event.timestamp == RFC3339.parse("2026-11-22T03:50:32.25Z"))
        #expect(event.service == "checkout" && event.environment == "staging" && event.version == "1.8.3")
        #expect(event.severity == .error && event.errorType == "TimeoutError" && event.message == "upstream timed out")
        #expect(event.frames == [StackFrame(function: "Checkout.pay", file: "Pay.swift", line: 42), StackFrame(function: "NIO.run", inApp: false)])
        #expect(event.stacktrace?.contains("Checkout.pay (Pay.swift:42)") == true)
        #expect(event.errorCode == "504" && event.httpStatus == 504)
        #expect(event.traceID == "abc" && event.spanID == "def" && event.host == "node-1" && event.pod == "checkout-7f9")
        #expect(event.namespace == "shop" && event.region == "eu-west-1")
        #expect(event.attributesJSON == #"{"retries":3,"user_tier":"gold"}"#)
    }

    @Test func derivesStableIdsAndDefaultsWhenOptionalFieldsAreAbsent() throws {
        let text = #"[{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"x"},{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"x"}]"#
        let first = try decode(text).events
        let again = try decode(text).events
        #expect(first.count == 2)
        #expect(first.map(\.eventID) == again.map(\.eventID), "the same message gives the same ids")
        #expect(first[0].eventID != first[1].eventID, "each event of a message has its own id")
        var other = origin
        other.offset += 1
        #expect(try EventDecoder().decode(Array(text.utf8), origin: other, now: now).events[0].eventID != first[0].eventID)
        #expect(first[0].environment == "production" && first[0].severity == .error && first[0].version == nil)
    }

    @Test func acceptsSchemaRegistryFramingAndNDJSON() throws {
        let json = Array(#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"framed"}"#.utf8)
        let framed = try EventDecoder().decode([0, 0, 0, 0, 7] + json, origin: origin, now: now)
        #expect(framed.events.first?.message == "framed")
        // Known answer: Confluent's wire format is the magic byte 0, the schema id as a 4-byte
        // big-endian integer (here 123456 = 0x0001E240), then the payload. An id whose bytes
        // look like JSON ("{" = 0x7B) is skipped whole too.
        let id123456 = try EventDecoder().decode([0x00, 0x00, 0x01, 0xE2, 0x40] + json, origin: origin, now: now)
        #expect(id123456.events.first?.message == "framed")
        let jsonLookingID = try EventDecoder().decode([0x00, 0x7B, 0x22, 0x7D, 0x0A] + json, origin: origin, now: now)
        #expect(jsonLookingID.events.first?.message == "framed")
        #expect(reason([0x00, 0x00, 0x00, 0x00, 0x07]) == "Schema Registry framing without a payload")
        let lines = try decode("""
            {"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"one"}
            {"timestamp":"2026-11-22T04:00:01Z","service":"a","message":"two"}
            """)
        #expect(lines.events.map(\.message) == ["one", "two"])
    }

    @Test func cutsOverlongMessagesInsteadOfRefusing() throws {
        let long = String(repeating: "é", count: 40_000)
        let event = try #require(try decode(#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"\#(long)"}"#).events.first)
        #expect(event.message.hasSuffix("…[truncated]"))
        #expect(event.message.utf8.count < 33 * 1024)
    }
}

@Suite struct OTLPFormatTests {
    static let sample = """
        {"resourceLogs":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"payments"}},
            {"key":"service.version","value":{"stringValue":"2.4.1"}},
            {"key":"deployment.environment.name","value":{"stringValue":"prod"}},
            {"key":"k8s.pod.name","value":{"stringValue":"payments-5d8"}},
            {"key":"k8s.namespace.name","value":{"stringValue":"pay"}},
            {"key":"cloud.region","value":{"stringValue":"westeurope"}}]},
          "scopeLogs":[{"scope":{"name":"app"},"logRecords":[
            {"timeUnixNano":"1795323032000000000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"charge failed"},
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "attributes":[{"key":"exception.type","value":{"stringValue":"java.net.SocketTimeoutException"}},
                           {"key":"exception.message","value":{"stringValue":"Read timed out"}},
                           {"key":"exception.stacktrace","value":{"stringValue":"java.net.SocketTimeoutException: Read timed out\\n\\tat com.shop.pay.Client.charge(Client.java:88)\\n\\tat java.base/java.net.Socket.read(Socket.java:1)"}},
                           {"key":"http.response.status_code","value":{"intValue":"502"}},
                           {"key":"customer.tier","value":{"stringValue":"gold"}}]},
            {"timeUnixNano":"1795323033000000000","severityNumber":9,"body":{"stringValue":"request ok"}}]}]}]}
        """

    @Test func decodesLogRecordsWithResourceAndExceptionAttributes() throws {
        let message = try decode(Self.sample)
        #expect(message.format == .otlp)
        #expect(message.skipped == 1, "the INFO record is not an error")
        let event = try #require(message.events.first)
        #expect(message.events.count == 1)
        #expect(event.service == "payments" && event.version == "2.4.1" && event.environment == "prod")
        #expect(event.pod == "payments-5d8" && event.namespace == "pay" && event.region == "westeurope")
        #expect(event.errorType == "java.net.SocketTimeoutException" && event.message == "Read timed out")
        #expect(event.timestamp == Date(timeIntervalSince1970: 1_795_323_032))
        #expect(event.httpStatus == 502 && event.traceID == "5b8efff798038103d269b633813fc60c")
        #expect(event.frames.first == StackFrame(function: "com.shop.pay.Client.charge", file: "Client.java", line: 88))
        #expect(event.frames.dropFirst().first?.inApp == false)
        #expect(event.attributesJSON == #"{"customer.tier":"gold","http.response.status_code":502}"#)
    }

    @Test func refusesProtobufAndRecordsWithoutAService() {
        #expect(reason(Array(Self.sample.utf8), contentType: "application/x-protobuf")?.contains("otlp_json") == true)
        let noService = Self.sample.replacingOccurrences(of: "service.name", with: "service.nickname")
        #expect(reason(Array(noService.utf8))?.contains("no service.name") == true)
    }
}

@Suite struct CLEFFormatTests {
    @Test func decodesSerilogCompactJSON() throws {
        let message = try decode("""
            {"@t":"2026-11-22T04:50:32.1234567Z","@mt":"Payment {PaymentId} failed after {Elapsed} ms","@l":"Error","PaymentId":"p-991","Elapsed":5012,"@x":"System.TimeoutException: The operation has timed out.\\n   at Shop.Payments.Charge(Order o) in /src/Payments.cs:line 42","Application":"payments-api","Environment":"prod","Version":"3.1.0","@tr":"abc","MachineName":"web-1"}
            {"@t":"2026-11-22T04:50:33Z","@mt":"Heartbeat"}
            """, contentType: "application/vnd.serilog.clef")
        #expect(message.format == .clef && message.skipped == 1)
        let event = try #require(message.events.first)
        #expect(event.service == "payments-api" && event.environment == "prod" && event.version == "3.1.0")
        #expect(event.message == "Payment p-991 failed after 5012 ms")
        #expect(event.errorType == "System.TimeoutException")
        #expect(event.frames.first == StackFrame(function: "Shop.Payments.Charge", file: "/src/Payments.cs", line: 42))
        #expect(event.traceID == "abc" && event.host == "web-1")
        #expect(event.attributesJSON == #"{"Elapsed":5012,"PaymentId":"p-991"}"#)
    }
}

/// Every kind of bad input gets a precise reason, and nothing crashes.
@Suite struct BadInputTests {
    static let valid = #"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m"}"#

    @Test(arguments: [
        ("", "empty message"),
        ("hello world", "not JSON"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","mess"#, "malformed or truncated JSON"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","message":"m"}"#, "missing required field service"),
        (#"{"service":"a","message":"m"}"#, "missing required field timestamp"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a"}"#, "missing required field message"),
        (#"{"timestamp":"yesterday","service":"a","message":"m"}"#, "timestamp \"yesterday\" is not an RFC 3339 time"),
        (#"{"timestamp":"2026-13-22T04:00:00Z","service":"a","message":"m"}"#, "is not an RFC 3339 time"),
        (#"{"timestamp":"1999-01-01T00:00:00Z","service":"a","message":"m"}"#, "older than the accepted 30 days"),
        (#"{"timestamp":"2030-01-01T00:00:00Z","service":"a","message":"m"}"#, "in the future"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":42,"message":"m"}"#, "service must be a string, not a number"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m","http_status":"teapot"}"#, "http_status must be a whole number"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m","http_status":true}"#, "http_status must be a whole number"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m","event_id":"nope"}"#, "event_id \"nope\" is not a UUID"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m","severity":"meh"}"#, "severity \"meh\" is not one of"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m","stacktrace":7}"#, "stacktrace must be text or an array"),
        (#"[{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"m"},{"service":"a","message":"m"}]"#, "event 2: missing required field timestamp"),
        (#"42"#, "event is not a JSON object"),
        (#"{"a":1}{"b":2}"#, "unexpected text after the JSON value"),
        (#"{"timestamp":"2026-11-22T04:00:00Z","service":"a","message":"bad \q escape"}"#, "invalid escape"),
        (#"[42]"#, "event is not a JSON object"),
        (#"[]"#, "holds no events"),
    ])
    func refusedWithAReason(input: String, expected: String) {
        let got = reason(Array(input.utf8))
        #expect(got?.contains(expected) == true, "got: \(got ?? "accepted")")
    }

    @Test func refusesOversizedBinaryDeepAndInvalidUTF8() {
        var limits = DecodeLimits()
        limits.maxMessageBytes = 100
        do {
            _ = try EventDecoder(limits: limits).decode(Array(String(repeating: "x", count: 101).utf8), origin: origin, now: now)
            Issue.record("accepted an oversized message")
        } catch {
            #expect(error.reason.contains("more than the limit of 100"))
        }
        #expect(reason([0xFF, 0xFE, 0x00, 0x01, 0x02, 0x03, 0x04])?.contains("UTF-8") == true)
        #expect(reason(Array(#"{"a":"\#u{FF}"}"#.utf8) + [0xC3])?.contains("UTF-8") == true)
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(reason(Array(deep.utf8))?.contains("nested deeper than 32") == true)
        #expect(reason(Array("{}".utf8), contentType: "application/xml")?.contains("not accepted") == true)
    }

    /// Noise, and valid messages cut short or with noise after them: every one is refused with
    /// a reason or decodes to events that hold what a valid event holds.
    @Test func randomBytesNeverCrashAndAreEitherRefusedOrValid() {
        var generator = SplitMix(seed: 7)
        var (refused, decoded) = (0, 0)
        for length in 0..<2000 {
            var bytes = (0..<(length % 300)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if length % 3 == 0 { bytes = Array(Self.valid.utf8.prefix(length % Self.valid.utf8.count)) + bytes }
            if length % 7 == 0 { bytes = Array(Self.valid.utf8) + Array(bytes.prefix(length % 5)) }
            do {
                let result = try EventDecoder().decode(bytes, origin: origin, now: now)
                decoded += 1
                for event in result.events {
                    #expect(!event.service.isEmpty && !event.message.isEmpty && event.timestamp.timeIntervalSince1970.isFinite)
                }
            } catch {
                refused += 1
                #expect(!error.reason.isEmpty)
            }
        }
        // Whole valid messages (with white space or nothing after them) decode; noise does not.
        #expect(decoded > 0 && refused > 1_500, "\(decoded) decoded, \(refused) refused")
        #expect(reason(Array(Self.valid.utf8) + [32, 10]) == nil)
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct TimeParsingTests {
    @Test func rfc3339() {
        #expect(RFC3339.parse("2026-11-22T04:50:32Z")?.timeIntervalSince1970 == 1_795_323_032)
        #expect(RFC3339.parse("2026-11-22T05:50:32.5+01:00")?.timeIntervalSince1970 == 1_795_323_032.5)
        #expect(RFC3339.parse("2024-02-29T00:00:00Z")?.timeIntervalSince1970 == 1_709_164_800)
        #expect(RFC3339.parse("1969-12-31T23:59:59Z")?.timeIntervalSince1970 == -1)
        #expect(RFC3339.parse("2026-11-22T04:50:32") == nil)
        #expect(RFC3339.parse("2026-11-22T04:50:32Zjunk") == nil)
        #expect(RFC3339.parse("2026-11-22T04:50:32.Z") == nil)
        // Evaluation data sets write UTC times without a zone.
        #expect(RFC3339.parse("2026-11-22 04:50:32", zoneRequired: false)?.timeIntervalSince1970 == 1_795_323_032)
        #expect(RFC3339.parse("2026-11-22 04:50:32.25", zoneRequired: false)?.timeIntervalSince1970 == 1_795_323_032.25)
        #expect(RFC3339.parse("2026-11-22T05:50:32+01:00", zoneRequired: false)?.timeIntervalSince1970 == 1_795_323_032)
        #expect(RFC3339.parse("2026-11-22 04:50:32 junk", zoneRequired: false) == nil)
        #expect(RFC3339.parse("2026-11-22 04:50", zoneRequired: false) == nil)
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_795_323_032.5)) == "2026-11-22T04:50:32.500Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
        // Milliseconds are rounded down, from seconds × 1000 as a double: a time parsed from
        // ".123" may lie a hair below it and still formats as ".123". Far from 1970 that
        // rounding is coarser than a microsecond (a double's step is 30 µs in 9925).
        #expect(RFC3339.format(Date(timeIntervalSince1970: 251_054_194_677.708_98)) == "9925-08-04T20:17:57.709Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -0.000_1)) == "1969-12-31T23:59:59.999Z")
        for seconds in stride(from: -2_000_000_000.0, to: 4_000_000_000, by: 123_456_789.123) {
            let date = Date(timeIntervalSince1970: (seconds * 1000).rounded(.down) / 1000)
            #expect(abs(RFC3339.parse(RFC3339.format(date))!.timeIntervalSince(date)) < 0.001)
        }
    }
}

@Suite struct JSONParserTests {
    func parse(_ text: String) -> JSONValue? { try? JSONParser.parse(Array(text.utf8)) }

    /// Strings are scanned eight bytes at a time: a quote, an escape or a control byte at any
    /// offset of a chunk must be found, and the text between them kept whole.
    @Test func stringsReadTheSameWhereverTheirSpecialBytesFall() throws {
        let pieces = ["a", "bcdefgh", "é", "😀", #"\""#, #"\\"#, #"\n"#, #"\t"#, "/", #"\u00e9"#, #"\ud83d\ude00"#, " ", "~", #"\u007f"#]
        let decoded = ["a", "bcdefgh", "é", "😀", "\"", "\\", "\n", "\t", "/", "é", "😀", " ", "~", "\u{7f}"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let picks = (0..<Int.random(in: 0...12, using: &generator)).map { _ in Int.random(in: 0..<pieces.count, using: &generator) }
            let padding = String(repeating: " ", count: Int.random(in: 0...8, using: &generator))
            let json = "[\(padding)\"" + picks.map { pieces[$0] }.joined() + "\"]"
            #expect(try JSONParser.parse(Array(json.utf8)) == .array([.string(picks.map { decoded[$0] }.joined())]), "\(json)")
            // A raw control byte anywhere in it is refused.
            var bytes = Array(json.utf8)
            let at = Int.random(in: (padding.utf8.count + 2)..<(bytes.count - 1), using: &generator)
            guard bytes.count > padding.utf8.count + 3, !(bytes[at] & 0xC0 == 0x80) else { continue }
            bytes.insert(UInt8.random(in: 0..<32, using: &generator), at: at)
            #expect(throws: (any Error).self, "\(bytes)") { try JSONParser.parse(bytes) }
        }
    }

    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(Array(#" {"a": [1, -2.5e3, true, false, null], "b": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "c": {}} "#.utf8))
        #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .string("x\"\\/\u{8}\u{C}\n\r\té😀"))
        #expect(value["c"] == .object([]))
        #expect(value.text == #"{"a":[1,-2.5e3,true,false,null],"b":"x\"\\/\u0008\u000c\n\r\té😀","c":{}}"#)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc", "\"\\x\"", "\"\\ud800\"", "[1] x", "{\"a\":1,}",
                      "\"tab\there\"", "nul"])
    func refusesInvalidJSON(_ text: String) {
        #expect(parse(text) == nil)
    }

    @Test func writesNulAsReplacementCharacter() throws {
        #expect(try JSONParser.parse(Array(#"{"k":"a\u0000b"}"#.utf8)).text == #"{"k":"a\ufffdb"}"#)
    }

    @Test func enforcesTheNestingLimit() {
        #expect(parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) != nil)
        #expect(parse(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)) == nil)
    }
}

@Suite struct DeploymentIndexTests {
    let t0 = RFC3339.parse("2026-11-22T00:00:00Z")!

    @Test func findsTheRolloutActiveAtAnEventsTimeWhateverTheOrderOfArrival() {
        var index = DeploymentIndex()
        // Inserted out of order, and one twice.
        for (version, hours) in [("1.8.3", 10.0), ("1.8.1", 0), ("1.8.2", 5), ("1.8.3", 10)] {
            index.insert(Deployment(service: "checkout", environment: "production", version: version, commit: "c\(version)",
                                    startedAt: t0.addingTimeInterval(hours * 3600)))
        }
        #expect(index.count == 3)
        func version(at hours: Double, own: String? = nil) -> String? {
            index.context(service: "checkout", environment: "production", version: own, at: t0.addingTimeInterval(hours * 3600))?.version
        }
        #expect(version(at: -1) == nil)
        #expect(version(at: 0) == "1.8.1")
        #expect(version(at: 7) == "1.8.2")
        #expect(version(at: 11) == "1.8.3")
        // An event that names its version gets that version's rollout (a canary still on 1.8.2).
        #expect(version(at: 11, own: "1.8.2") == "1.8.2")
        #expect(version(at: 11, own: "9.9.9") == nil)
        #expect(index.context(service: "checkout", environment: "staging", version: nil, at: t0) == nil)
        let context = index.context(service: "checkout", environment: "production", version: nil, at: t0.addingTimeInterval(11 * 3600))
        #expect(context?.commit == "c1.8.3")
        #expect(context?.secondsSinceRollout(at: t0.addingTimeInterval(11 * 3600)) == 3600)
        #expect(index.previousVersion(service: "checkout", environment: "production", before: "1.8.3") == "1.8.2")
    }

    @Test func decodesDeploymentRecords() throws {
        let record = try Deployment.decode(Array(#"{"service":"checkout","version":"1.8.3","commit":"abc","started_at":"2026-11-22T04:00:00Z"}"#.utf8))
        #expect(record.environment == "production" && record.commit == "abc" && record.startedAt == RFC3339.parse("2026-11-22T04:00:00Z"))
        #expect(throws: DecodeError.self) { try Deployment.decode(Array(#"{"service":"checkout","started_at":"2026-11-22T04:00:00Z"}"#.utf8)) }
        #expect(throws: DecodeError.self) { try Deployment.decode(Array(#"{"service":"checkout","version":"1","started_at":"soon"}"#.utf8)) }
    }
}
