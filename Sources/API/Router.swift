/// One endpoint: method, path pattern, who may call it, and its handler.
struct Route: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    let method: String
    let pattern: String
    let segments: [Segment]
    /// `nil`: no key needed.
    let scope: Scope?
    /// Keys limited to a service prefix may not call it (it spans every service or the
    /// configuration).
    let allServices: Bool
    let handler: @Sendable (FaultlineAPI, RequestContext) async throws -> APIResponse

    init(_ method: String, _ pattern: String, _ scope: Scope?, allServices: Bool = false,
         _ handler: @escaping @Sendable (FaultlineAPI, RequestContext) async throws -> APIResponse) {
        self.method = method
        self.pattern = pattern
        self.segments = Route.split(pattern).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(part)
        }
        self.scope = scope
        self.allServices = allServices
        self.handler = handler
    }

    static func split(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
    }

    /// The path parameters when `path` matches, percent-decoded.
    func match(_ parts: [String]) -> [String: String]? {
        guard parts.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let text): guard text == part else { return nil }
            case .parameter(let name):
                guard !part.isEmpty, let decoded = part.removingPercentEncoding else { return nil }
                parameters[name] = decoded
            }
        }
        return parameters
    }
}

/// Finds the route of a request: a match, or 404, or 405 with the methods the path allows.
struct Router: Sendable {
    let routes: [Route]

    enum Outcome {
        case found(Route, [String: String])
        case notFound
        case methodNotAllowed(allowed: [String])
    }

    func resolve(method: String, path: String) -> Outcome {
        let parts = path == "/" ? [""] : Route.split(path)
        var allowed: [String] = []
        for route in routes {
            guard let parameters = route.match(parts) else { continue }
            if route.method == method { return .found(route, parameters) }
            allowed.append(route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }
}

import Foundation
