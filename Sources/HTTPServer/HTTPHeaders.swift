// Standard library only: this file is also compiled into the parser fuzz target.

/// The header fields of a request or response: order kept, names compared case-insensitively.
///
/// ```swift
/// var headers = HTTPHeaders()
/// headers.add(name: "Cache-Control", value: "no-store")
/// headers["content-type"] = "application/json"
/// headers["Content-Type"]  // "application/json"
/// ```
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    /// The fields in the order they were added, names as given.
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    /// Appends a field, keeping any others of the same name.
    public mutating func add(name: String, value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field called `name` with one field (added at the place of the first).
    public mutating func set(name: String, value: String) {
        if let first = fields.firstIndex(where: { Self.equalNames($0.name, name) }) {
            fields[first] = (name: name, value: value)
            var index = fields.index(after: first)
            while index < fields.endIndex {
                if Self.equalNames(fields[index].name, name) {
                    fields.remove(at: index)
                } else {
                    index += 1
                }
            }
        } else {
            fields.append((name: name, value: value))
        }
    }

    /// Removes every field called `name`.
    public mutating func remove(name: String) {
        fields.removeAll { Self.equalNames($0.name, name) }
    }

    /// The first value of the field called `name`; setting replaces all of them, `nil` removes them.
    public subscript(name: String) -> String? {
        get { fields.first { Self.equalNames($0.name, name) }?.value }
        set {
            if let newValue { set(name: name, value: newValue) } else { remove(name: name) }
        }
    }

    /// Every value of the field called `name`, in order.
    public func values(for name: String) -> [String] {
        fields.filter { Self.equalNames($0.name, name) }.map(\.value)
    }

    /// Whether `name` is present.
    public func contains(_ name: String) -> Bool {
        fields.contains { Self.equalNames($0.name, name) }
    }

    /// The comma-separated tokens of every `name` field, lowercased and trimmed
    /// (as for `Connection` or `Transfer-Encoding`).
    public func tokens(for name: String) -> [String] {
        var result: [String] = []
        for value in values(for: name) {
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                result.append(asciiLowercased(trimmingOWS(Substring(part))))
            }
        }
        return result
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// ASCII case-insensitive comparison; field names are tokens, so ASCII is all that matters.
    static func equalNames(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else { return false }
                for i in 0..<x.count where x[i] != y[i] {
                    if asciiLower(x[i]) != asciiLower(y[i]) { return false }
                }
                return true
            }
        }
    }
}

@inline(__always)
func asciiLower(_ byte: UInt8) -> UInt8 {
    byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
}

func asciiLowercased(_ text: Substring) -> String {
    String(decoding: text.utf8.map(asciiLower), as: UTF8.self)
}

/// Drops spaces and horizontal tabs at both ends (HTTP's "optional whitespace").
func trimmingOWS(_ text: Substring) -> Substring {
    var start = text.startIndex
    var end = text.endIndex
    while start < end, text[start] == " " || text[start] == "\t" { start = text.index(after: start) }
    while end > start {
        let before = text.index(before: end)
        guard text[before] == " " || text[before] == "\t" else { break }
        end = before
    }
    return text[start..<end]
}
