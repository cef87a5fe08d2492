@testable import Domain
import Testing

/// Fast paths of the decoder equal their definitions.
@Suite struct FastPathTests {
    /// The one-pass test equals its definition: no library prefix at the start, and none of
    /// `librarySegments` anywhere.
    @Test func isAppEqualsItsDefinition() {
        let pieces = StackTraceParser.libraryPrefixes.map { String(decoding: $0, as: UTF8.self) }
            + ["/", "//", "app", "src/", "main.", "x", "internal", ".", "é", " "]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let name = Array((0..<Int.random(in: 0...5, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined().utf8)
            let byDefinition = !StackTraceParser.libraryPrefixes.contains { name.starts(with: $0) }
                && !StackTraceParser.librarySegments.contains { segment in
                    segment.count <= name.count && (0...(name.count - segment.count)).contains { name[$0..<$0 + segment.count].elementsEqual(segment) }
                }
            #expect(StackTraceParser.isApp(name[...]) == byDefinition, "\(String(decoding: name, as: UTF8.self))")
        }
    }

    /// The hex digits written in place equal the standard library's, zero-padded to 16.
    @Test func hexDigitsEqualTheirDefinition() {
        var generator = SystemRandomNumberGenerator()
        let values: [UInt64] = [0, 1, 0xF, 0x10, 0xABC, UInt64.max, UInt64.max >> 4, 1 << 63]
            + (0..<20_000).map { _ in UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator) }
        for value in values {
            let digits = String(value, radix: 16)
            #expect(StableHash.hex(value) == String(repeating: "0", count: 16 - digits.count) + digits)
        }
    }

    @Test func linesAreTheTrimmedNonEmptyLines() {
        let pieces = ["a", "\n", "\n\n", " ", "\t", "\r", "at x", "é"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let text = (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let bytes = Array(text.utf8)
            let expected = bytes.split(separator: 10).map { slice -> [UInt8] in
                var trimmed = slice
                while let first = trimmed.first, first == 32 || first == 9 || first == 13 { trimmed = trimmed.dropFirst() }
                while let last = trimmed.last, last == 32 || last == 9 || last == 13 { trimmed = trimmed.dropLast() }
                return Array(trimmed)
            }
            #expect(StackTraceParser.lines(bytes).map(Array.init) == expected, "\(bytes)")
        }
    }

    @Test func controlBytesAreFoundAnywhere() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var bytes = (0..<Int.random(in: 0...24, using: &generator)).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            if Bool.random(using: &generator), !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = [0, 9, 10, 0x1F, 0x7F].randomElement(using: &generator)!
            }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(hasControlBytes(text) == text.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "\(bytes)")
        }
        #expect(!hasControlBytes("plain ascii and UTF-8 é 😀 text, longer than eight bytes"))
    }

    /// The lowest flag marks the first matching byte, and there is a flag exactly when a byte
    /// matches.
    @Test func byteScanFlagsTheFirstMatch() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50_000 {
            // Bytes near the bounds tested, and some anywhere.
            let bytes = (0..<8).map { _ in
                Bool.random(using: &generator) ? [0, 1, 0x1F, 0x20, 0x21, 0x22, 0x5C, 0x7F, 0x80, 0xFF].randomElement(using: &generator)!
                    : UInt8.random(in: 0...255, using: &generator)
            }
            let chunk = bytes.withUnsafeBytes { ByteScan.load($0.baseAddress!, 0) }
            let cases: [(flags: UInt64, first: Int?)] = [
                (ByteScan.below(chunk, 0x21), bytes.firstIndex { $0 < 0x21 }),
                (ByteScan.below(chunk, 0x80), bytes.firstIndex { $0 < 0x80 }),
                (ByteScan.equal(chunk, 0x22), bytes.firstIndex(of: 0x22)),
                (ByteScan.equal(chunk, 0), bytes.firstIndex(of: 0)),
            ]
            for (flags, first) in cases {
                #expect((flags == 0 ? nil : flags.trailingZeroBitCount >> 3) == first, "\(bytes)")
            }
        }
    }

    /// The ASCII fast path agrees with the standard library on well-formed and broken UTF-8,
    /// with the first non-ASCII byte at every offset of a chunk.
    @Test func utf8ValidationEqualsTheStandardLibrarys() {
        let pieces: [[UInt8]] = [[0x61], [0x20], [0x7F], Array("é".utf8), Array("€".utf8), Array("😀".utf8),
                                 [0x80], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80]]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<30_000 {
            let prefix = [UInt8](repeating: 0x41, count: Int.random(in: 0...17, using: &generator))
            let bytes = prefix + (0..<Int.random(in: 0...4, using: &generator)).flatMap { _ in pieces.randomElement(using: &generator)! }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(bytes.withUnsafeBufferPointer(isValidUTF8) == expected, "\(bytes)")
        }
    }

    /// A repeated key is found whatever its spelling, so the last value wins: written the same,
    /// escaped, or (as Swift compares strings) a canonically equal non-ASCII form.
    @Test func repeatedKeysAreFoundBehindTheFilter() throws {
        let cases: [(json: String, key: String, value: String, count: Int)] = [
            (#"{"service":"a","version":"1","service":"b"}"#, "service", "b", 2),
            (#"{"service":"a","\u0073ervice":"b"}"#, "service", "b", 1),
            (#"{"a":"x","b":"y","a":"z"}"#, "a", "z", 2),
            (#"{"K":"a","\u212A":"b"}"#, "K", "b", 1),
            (#"{"\u212A":"a","x":"c","K":"b"}"#, "\u{212A}", "b", 2),
            (#"{"ab":"1","ba":"2","abc":"3"}"#, "ab", "1", 3),
        ]
        for (json, key, value, count) in cases {
            let parsed = try JSONParser.parse(Array(json.utf8))
            #expect(parsed.objectValue?.count == count, "\(json)")
            #expect(parsed[key]?.stringValue == value, "\(json)")
        }
        // Many keys of one (length, first, last) class, each different: all kept.
        let keys = (0..<15).map { "k\(Character(UnicodeScalar(UInt8(97 + $0))))z" }
        let object = try JSONParser.parse(Array(("{" + keys.map { #""\#($0)":1"# }.joined(separator: ",") + "}").utf8))
        #expect(object.objectValue?.map(\.key) == keys)
    }
}
