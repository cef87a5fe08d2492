/// Answers a request; runs on Swift's task pool, never on the event loop.
public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

/// Dispatches requests by method and path pattern.
///
/// Patterns are literal segments and `{name}` segments, each matching one whole path segment
/// (percent-decoded into ``HTTPRequest/pathParameters``). An unknown path gets 404, a known path
/// with another method 405 with an `Allow` header; `HEAD` falls back to the `GET` route (the
/// server drops the body). Routes are tried in the order added.
///
/// ```swift
/// var router = Router()
/// router.add("GET", "/v1/issues/{id}") { request in
///     .text("issue \(request.pathParameters["id"]!)")
/// }
/// let server = HTTPServer(configuration: .init(), handler: router.handler, logger: logger)
/// ```
public struct Router: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    struct Route: Sendable {
        let method: String
        let segments: [Segment]
        let handler: HTTPHandler
    }

    private var routes: [Route] = []

    public init() {}

    /// Adds a route for `method` (case-sensitive, e.g. `"GET"`) and `pattern` (e.g. `"/v1/x/{id}"`).
    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping HTTPHandler) {
        routes.append(Route(method: method, segments: Self.parse(pattern), handler: handler))
    }

    /// The handler that routes requests.
    public var handler: HTTPHandler {
        let routes = self.routes
        return { request in await Self.route(request, routes) }
    }

    static func parse(_ pattern: String) -> [Segment] {
        pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { part in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count >= 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
    }

    static func match(_ segments: [Segment], _ path: [Substring]) -> [String: String]? {
        guard segments.count == path.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, path) {
            guard let decoded = percentDecode(part, plusIsSpace: false) else { return nil }
            switch segment {
            case .literal(let literal):
                guard literal == decoded else { return nil }
            case .parameter(let name):
                guard !decoded.isEmpty else { return nil }
                parameters[name] = decoded
            }
        }
        return parameters
    }

    static func route(_ request: HTTPRequest, _ routes: [Route]) async -> HTTPResponse {
        guard request.path.hasPrefix("/") else { return .text("Not Found\n", status: 404) }
        let path = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var allowed: [String] = []
        var fallback: (Route, [String: String])?
        for route in routes {
            guard let parameters = match(route.segments, Array(path)) else { continue }
            if route.method == request.method {
                var request = request
                request.pathParameters = parameters
                return await route.handler(request)
            }
            if request.method == "HEAD" && route.method == "GET" && fallback == nil {
                fallback = (route, parameters)
            }
            allowed.append(route.method)
        }
        if let (route, parameters) = fallback {
            var request = request
            request.pathParameters = parameters
            return await route.handler(request)
        }
        guard !allowed.isEmpty else { return .text("Not Found\n", status: 404) }
        if allowed.contains("GET") { allowed.append("HEAD") }
        var response = HTTPResponse.text("Method Not Allowed\n", status: 405)
        response.headers.add(name: "Allow", value: Set(allowed).sorted().joined(separator: ", "))
        return response
    }
}
