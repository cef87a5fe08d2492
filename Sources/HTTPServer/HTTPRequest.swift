/// A complete request, as handlers see it.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target exactly as sent, e.g. `/v1/items/a%20b?limit=10`.
    public var target: String
    /// The path part of the target, still percent-encoded (`/v1/items/a%20b`).
    public var path: String
    /// The query parameters in order, percent-decoded (`+` is a space).
    public var query: [(name: String, value: String)]
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// Trailer fields of a chunked body (usually empty).
    public var trailers: HTTPHeaders
    public var body: [UInt8]
    /// The peer's address, `"127.0.0.1:51234"` or `"[::1]:51234"`.
    public var remoteAddress: String

    public init(
        method: String, target: String, version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = HTTPHeaders(), trailers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = [], remoteAddress: String = ""
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.trailers = trailers
        self.body = body
        self.remoteAddress = remoteAddress
        let (path, query) = Self.split(target: target)
        self.path = path
        self.query = query.map(Self.parseQuery) ?? []
    }

    /// The path with percent-escapes decoded; `nil` when an escape is invalid or the result
    /// is not UTF-8.
    public var decodedPath: String? { percentDecode(Substring(path), plusIsSpace: false) }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    static func split(target: String) -> (path: String, query: Substring?) {
        var rest = Substring(target)
        // Absolute form: drop "scheme://authority".
        if !rest.hasPrefix("/"), let scheme = rest.range(of: "://") {
            rest = rest[scheme.upperBound...]
            rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let mark = rest.firstIndex(of: "?") {
            return (String(rest[..<mark]), rest[rest.index(after: mark)...])
        }
        return (String(rest), nil)
    }

    static func parseQuery(_ query: Substring) -> [(name: String, value: String)] {
        query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecode(parts[0], plusIsSpace: true) ?? String(parts[0])
            let value = parts.count > 1 ? (percentDecode(parts[1], plusIsSpace: true) ?? String(parts[1])) : ""
            return (name: name, value: value)
        }
    }
}

/// Decodes `%XX` escapes; `nil` for a broken escape or bytes that are not UTF-8.
func percentDecode(_ text: Substring, plusIsSpace: Bool) -> String? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        switch byte {
        case 0x25:
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(UInt8(high << 4 | low))
        case 0x2B where plusIsSpace:
            bytes.append(0x20)
        default:
            bytes.append(byte)
        }
    }
    return String(validating: bytes, as: UTF8.self)
}
