import API
import Foundation
import HTTPServer
import Logging
import ServiceLifecycle
import Synchronization

/// What Faultline answers over HTTP: the REST API, the dashboard, health and metrics. A replica
/// without the `api` role answers only health and metrics (for its probes and Prometheus).
public final class HTTPService: Service {
    /// The paths every role serves.
    static let operationalPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    public let server: HTTPServer
    private let lifecycle: Lifecycle

    /// - Parameters:
    ///   - lifecycle: told when shutdown begins, so `/readyz` turns 503 at once.
    public init(configuration: HTTPServerConfiguration, api: FaultlineAPI, servesAPI: Bool, lifecycle: Lifecycle, logger: Logger) {
        self.lifecycle = lifecycle
        self.server = HTTPServer(configuration: configuration, handler: { request in
            guard servesAPI || Self.operationalPaths.contains(request.path) else {
                return HTTPResponse(status: 404, headers: ["Content-Type": "application/problem+json"], body: Array(
                    #"{"type":"about:blank","title":"Not Found","status":404,"detail":"this replica serves only /healthz, /readyz and /metrics (it has no api role)"}"#.utf8))
            }
            return Self.response(await api.handle(Self.apiRequest(request)))
        }, logger: logger)
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: { [server, lifecycle] in
            lifecycle.beginShutdown()
            server.beginShutdown()
        }
    }

    static func apiRequest(_ request: HTTPRequest) -> APIRequest {
        var headers: [String: String] = [:]
        for (name, value) in request.headers {
            let key = name.lowercased()
            headers[key] = headers[key].map { $0 + ", " + value } ?? value
        }
        return APIRequest(method: request.method, target: request.target, headers: headers, body: request.body,
                          remoteAddress: request.remoteAddress)
    }

    static func response(_ response: APIResponse) -> HTTPResponse {
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        return HTTPResponse(status: response.status, headers: headers, body: response.body)
    }
}

/// Whether the process is shutting down: readiness turns 503 as soon as it begins.
public final class Lifecycle: Sendable {
    private let stopping = Atomic<Bool>(false)

    public init() {}

    public var isShuttingDown: Bool { stopping.load(ordering: .relaxed) }
    public func beginShutdown() { stopping.store(true, ordering: .relaxed) }
}
