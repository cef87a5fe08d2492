/// A parsed JSON value. Objects keep their members in order, as a small array: event
/// objects have a few dozen keys at most, and a linear search beats hashing them.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as written, so integers stay exact.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    public var isNull: Bool { if case .null = self { true } else { false } }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: [(key: String, value: JSONValue)]? { if case .object(let o) = self { o } else { nil } }

    /// A short name of the type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Compact JSON text, keys in the order given.
    public var text: String {
        var out: [UInt8] = []
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func write(to out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let n): out += Array(n.utf8)
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [92, 34]
            case 92: out += [92, 92]
            case 10: out += [92, UInt8(ascii: "n")]
            case 13: out += [92, UInt8(ascii: "r")]
            case 9: out += [92, UInt8(ascii: "t")]
            case 0: out += Array("\\ufffd".utf8)  // PostgreSQL's jsonb cannot hold \u0000
            case 1..<32:
                let hex = Array("0123456789abcdef".utf8)
                out += [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes with a nesting limit.
public struct JSONParser {
    public struct Failure: Error, Sendable {
        public let reason: String
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private let maxDepth: Int

    /// Parses one JSON document that fills `bytes` (surrounding white space allowed).
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int = 64) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
        parser.skipSpace()
        let value = try parser.value(depth: 1)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.fail("unexpected text after the JSON value") }
        return value
    }

    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 64) throws(Failure) -> JSONValue {
        let array = Array(bytes)
        do {
            return try array.withUnsafeBufferPointer { buffer in try parse(buffer, maxDepth: maxDepth) }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(reason: "\(error)")
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private func fail(_ reason: String) -> Failure {
        index >= bytes.count ? Failure(reason: "truncated JSON") : Failure(reason: "\(reason) at byte \(index)")
    }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 32, 9, 10, 13: index += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) throws(Failure) -> JSONValue {
        guard index < bytes.count else { throw fail("value expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth <= maxDepth else { throw Failure(reason: "JSON nested deeper than \(maxDepth) levels") }
            return try object(depth: depth)
        case UInt8(ascii: "["):
            guard depth <= maxDepth else { throw Failure(reason: "JSON nested deeper than \(maxDepth) levels") }
            return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), 48...57: return .number(try number())
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("truncated literal") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw fail("invalid literal")
        }
        index += count
    }

    private mutating func object(depth: Int) throws(Failure) -> JSONValue {
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        // Positions of the keys once there are many, so a repeated key is found in constant
        // time: a linear search per key made 80,000 keys take 13 s.
        var positions: [String: Int]?
        // One bit per (length, first byte, last byte) class of the plain ASCII keys seen: such a
        // key whose bit is clear is new without comparing it to the others. Once a key is
        // escaped or not ASCII (Swift compares strings by canonical equivalence: "\u212A" is
        // "K"), every later key is compared as before.
        var seen: UInt64 = 0
        var compareAll = false
        skipSpace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("object key expected") }
            let keyStart = index + 1
            let key = try string()
            let keyEnd = index - 1
            var bit: UInt64 = 1
            if keyEnd > keyStart {
                var or: UInt8 = 0
                var escaped = false
                for offset in keyStart..<keyEnd {
                    or |= bytes[offset]
                    escaped = escaped || bytes[offset] == 92
                }
                if or >= 0x80 || escaped { compareAll = true }
                bit <<= (UInt64(keyEnd - keyStart) &* 31 &+ UInt64(bytes[keyStart]) &* 7 &+ UInt64(bytes[keyEnd - 1])) & 63
            }
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("':' expected") }
            index += 1
            skipSpace()
            let value = try value(depth: depth + 1)
            // A repeated key: the last one wins, as in most parsers.
            if let existing = positions?[key]
                ?? (positions == nil && (compareAll || seen & bit != 0) ? members.firstIndex(where: { $0.key == key }) : nil) {
                members[existing].value = value
            } else {
                positions?[key] = members.count
                seen |= bit
                members.append((key, value))
                if positions == nil && members.count == 16 {
                    positions = Dictionary(members.enumerated().map { ($0.element.key, $0.offset) }) { first, _ in first }
                }
            }
            skipSpace()
            guard index < bytes.count else { throw fail("'}' expected") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw fail("',' or '}' expected")
        }
    }

    private mutating func array(depth: Int) throws(Failure) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipSpace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard index < bytes.count else { throw fail("']' expected") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            throw fail("',' or ']' expected")
        }
    }

    private mutating func number() throws(Failure) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits() -> Int {
            let begin = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            return index - begin
        }
        guard index < bytes.count else { throw fail("digits expected") }
        if bytes[index] == 48 {
            index += 1
        } else if digits() == 0 {
            throw fail("digits expected")
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw fail("digits expected after '.'") }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard digits() > 0 else { throw fail("digits expected in exponent") }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    /// Moves `index` to the next `"`, `\\` or control byte (or the end), eight bytes at a
    /// time (``ByteScan``).
    private mutating func skipPlain() {
        let count = bytes.count
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index + 8 <= count {
                let chunk = ByteScan.load(raw, index)
                let flags = ByteScan.equal(chunk, UInt8(ascii: "\"")) | ByteScan.equal(chunk, 92) | ByteScan.below(chunk, 32)
                if flags != 0 {
                    index += flags.trailingZeroBitCount >> 3
                    return
                }
                index += 8
            }
        }
        while index < count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") || byte == 92 || byte < 32 { return }
            index += 1
        }
    }

    private mutating func string() throws(Failure) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        skipPlain()
        if index < bytes.count && bytes[index] == UInt8(ascii: "\"") {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            index += 1
            return text
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if byte < 32 { throw fail("control character in a string") }
            if byte != 92 {
                let run = index
                skipPlain()
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<index]))
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): out.append(34)
            case 92: out.append(92)
            case UInt8(ascii: "/"): out.append(47)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A surrogate pair.
                    guard index + 6 <= bytes.count, bytes[index] == 92, bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate")
                    }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("lone surrogate")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default: throw fail("invalid escape")
            }
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case 48...57: digit = UInt32(c - 48)
            case 97...102: digit = UInt32(c - 87)
            case 65...70: digit = UInt32(c - 55)
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}

/// Literals, for documents built in code (webhook messages): `["type": "divider"]`. Objects keep
/// the order their keys are written in.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements.map { (key: $0.0, value: $0.1) }) }
    public init(nilLiteral: ()) { self = .null }

    /// A number: a whole one without a fraction, any other as Swift writes it shortest; `null`
    /// when it is not finite (JSON has no infinity).
    public static func numeric(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .null }
        if value == value.rounded(), abs(value) < 1e15 { return .number(String(Int64(value))) }
        return .number(String(value))
    }

    public static func numeric(_ value: Int) -> JSONValue { .number(String(value)) }
    public static func numeric(_ value: Int64) -> JSONValue { .number(String(value)) }

    /// A string, or `null`.
    public static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
}
