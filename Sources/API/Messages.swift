import Domain
import Foundation

/// An HTTP request as the API sees it, independent of the server that received it.
public struct APIRequest: Sendable {
    /// `GET`, `POST`, … (upper case).
    public var method: String
    /// The path without the query (`/v1/groups/abc`), still percent-encoded.
    public var path: String
    /// Query parameters, each with every value it was given, percent-decoded.
    public var query: [String: [String]]
    /// Header values by lower-cased name.
    public var headers: [String: String]
    public var body: [UInt8]
    public var remoteAddress: String

    public init(method: String, path: String, query: [String: [String]] = [:], headers: [String: String] = [:],
                body: [UInt8] = [], remoteAddress: String = "") {
        self.init(method: method, path: path, query: query,
                  lowercasedHeaders: Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last }),
                  body: body, remoteAddress: remoteAddress)
    }

    /// A request whose header names are lower case already (as an HTTP server's are once it
    /// has joined repeated fields).
    public init(method: String, path: String, query: [String: [String]], lowercasedHeaders: [String: String],
                body: [UInt8], remoteAddress: String) {
        self.method = method.uppercased()
        self.path = path
        self.query = query
        self.headers = lowercasedHeaders
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// A request from a request target, with header names in lower case already.
    public init(method: String, target: String, lowercasedHeaders: [String: String], body: [UInt8], remoteAddress: String) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.init(method: method, path: String(parts.first ?? ""), query: parts.count > 1 ? Self.parseQuery(String(parts[1])) : [:],
                  lowercasedHeaders: lowercasedHeaders, body: body, remoteAddress: remoteAddress)
    }

    /// A request from a request target such as `/v1/groups?service=checkout&limit=10`.
    public init(method: String, target: String, headers: [String: String] = [:], body: [UInt8] = [], remoteAddress: String = "") {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.init(method: method, path: String(parts.first ?? ""), query: parts.count > 1 ? Self.parseQuery(String(parts[1])) : [:],
                  headers: headers, body: body, remoteAddress: remoteAddress)
    }

    /// Parses `a=1&b=x%20y&b=z` (`+` is a space).
    public static func parseQuery(_ text: String) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for pair in text.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let spaced = s.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            result[decode(parts[0]), default: []].append(parts.count > 1 ? decode(parts[1]) : "")
        }
        return result
    }
}

/// An HTTP response: status, headers in order, body.
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The pattern of the route that answered (`/v1/groups/{id}`); `nil` when none matched.
    public var route: String?

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header (case-insensitive name).
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    static func json(_ status: Int, _ text: String) -> APIResponse {
        APIResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(text.utf8))
    }

    static func json(_ status: Int, _ value: JSONValue) -> APIResponse {
        json(status, value.text)
    }

    static func text(_ status: Int, _ text: String, contentType: String) -> APIResponse {
        APIResponse(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
    }
}

/// A failure to report to the client as `application/problem+json` (RFC 9457). `detail` is
/// shown to the client: it never holds SQL, stack traces or secrets.
public struct APIProblem: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var detail: String
    public var headers: [(String, String)]

    public init(_ status: Int, _ detail: String, headers: [(String, String)] = []) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    public var description: String { "\(status) \(Self.title(status)): \(detail)" }

    static func badRequest(_ detail: String) -> APIProblem { APIProblem(400, detail) }
    static func notFound(_ detail: String) -> APIProblem { APIProblem(404, detail) }
    static func forbidden(_ detail: String) -> APIProblem { APIProblem(403, detail) }

    /// The reason phrase of a status, the problem's title.
    public static func title(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Error"
        }
    }

    func response(instance: String) -> APIResponse {
        let body = JSONValue.object([
            ("type", .string("about:blank")), ("title", .string(Self.title(status))), ("status", .number("\(status)")),
            ("detail", .string(detail)), ("instance", .string(instance)),
        ])
        return APIResponse(status: status, headers: [("Content-Type", "application/problem+json")] + headers, body: Array(body.text.utf8))
    }
}

// MARK: - JSON building

extension JSONValue {
    static func string(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    static func int(_ value: Int) -> JSONValue { .number(String(value)) }
    static func int(_ value: Int64) -> JSONValue { .number(String(value)) }
}

/// base64url without padding (RFC 4648 §5).
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 == 45 || $0 == 95 || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) })
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
