import API
import Foundation
import HTTPServer
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// What Faultline answers over HTTP: the REST API, the dashboard, health and metrics. A replica
/// without the `api` role answers only health and metrics (for its probes and Prometheus).
public final class HTTPService: Service {
    /// The paths every role serves.
    static let operationalPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    public let server: HTTPServer
    private let lifecycle: Lifecycle
    private let drain: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - lifecycle: told when shutdown begins, so `/readyz` turns 503 at once.
    ///   - drain: how long the server goes on serving after that (with `/readyz` at 503, so load
    ///     balancers stop sending requests) before it refuses new connections.
    public init(configuration: HTTPServerConfiguration, api: FaultlineAPI, servesAPI: Bool, lifecycle: Lifecycle,
                drain: Duration = .zero, logger: Logger) {
        self.lifecycle = lifecycle
        self.drain = drain
        self.logger = logger
        let metrics = RequestMetrics()
        var configuration = configuration
        configuration.onRefused = { status in metrics.recordRefused(status: status) }
        self.server = HTTPServer(configuration: configuration, handler: { request in
            let started = ContinuousClock.now
            guard servesAPI || Self.operationalPaths.contains(request.path) else {
                metrics.record(route: nil, method: request.method, status: 404, elapsed: ContinuousClock.now - started)
                var headers: HTTPHeaders = ["Content-Type": "application/problem+json"]
                for (name, value) in Self.securityHeaders { headers.add(name: name, value: value) }
                return HTTPResponse(status: 404, headers: headers, body: Array(
                    #"{"type":"about:blank","title":"Not Found","status":404,"detail":"this replica serves only /healthz, /readyz and /metrics (it has no api role)"}"#.utf8))
            }
            let response = await api.handle(Self.apiRequest(request))
            metrics.record(route: response.route, method: request.method, status: response.status, elapsed: ContinuousClock.now - started)
            return Self.response(response)
        }, immediate: { request in
            // Reads answered a moment ago, and the liveness probe, are answered on the event loop,
            // with no task. Every such read carries a key: other requests (the dashboard's files,
            // readiness, metrics) are not converted here only to be converted again.
            guard request.method == "GET",
                  request.path == "/healthz" || (servesAPI && request.headers.contains("authorization"))
            else { return nil }
            let started = ContinuousClock.now
            guard let response = api.answerFromMemory(Self.apiRequest(request)) else { return nil }
            metrics.record(route: response.route, method: request.method, status: response.status, elapsed: ContinuousClock.now - started)
            return Self.response(response)
        }, logger: logger)
    }

    /// Serves until graceful shutdown: then `/readyz` turns 503 at once, the server goes on
    /// answering for the drain period, and then it stops as ``HTTPServer/beginShutdown()`` says
    /// (no new connections, in-flight requests finish).
    public func run() async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { [server] in
                try await server.run()  // cancellation shuts it down too
                return true
            }
            group.addTask { [server, lifecycle, drain, logger] in
                do { try await gracefulShutdown() } catch { return false }  // cancelled
                lifecycle.beginShutdown()
                logger.info("shutting down: /readyz answers 503", metadata: ["drain": "\(drain)"])
                if drain > .zero { try? await Task.sleep(for: drain) }
                server.beginShutdown()
                return false
            }
            while let serverEnded = try await group.next() {
                if serverEnded {
                    group.cancelAll()
                    return
                }
            }
        }
    }

    static func apiRequest(_ request: HTTPRequest) -> APIRequest {
        var headers: [String: String] = [:]
        headers.reserveCapacity(request.headers.count)
        for (name, value) in request.headers {
            // Field names are tokens: ASCII.
            let key = String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
            headers[key] = headers[key].map { $0 + ", " + value } ?? value
        }
        return APIRequest(method: request.method, target: request.target, lowercasedHeaders: headers, body: request.body,
                          remoteAddress: request.remoteAddress)
    }

    static func response(_ response: APIResponse) -> HTTPResponse {
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        for (name, value) in securityHeaders where headers[name] == nil { headers.add(name: name, value: value) }
        return HTTPResponse(status: response.status, headers: headers, body: response.body)
    }

    /// On every answer: the dashboard loads nothing from elsewhere and may not be framed; no
    /// type is sniffed; no referrer leaves (dashboard links carry no key, but URLs may).
    /// No inline script or style runs: the dashboard's are files of their own.
    static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]
}

/// Requests by route pattern, method and status, and their latency by route. Labels are
/// bounded: routes are the API's patterns (or `unmatched`, or `refused` for what the server
/// answers by itself), methods the standard ones (or `other`), statuses what the server answers.
final class RequestMetrics: Sendable {
    private struct Key: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Metrics.Timer]>([:])

    /// A request the server answered by itself (malformed, too large, too slow): counted under
    /// the route `refused`; its method may not even be known.
    func recordRefused(status: Int) {
        counter(Key(route: "refused", method: "other", status: status)).increment()
    }

    private func counter(_ key: Key) -> Counter {
        counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "faultline_http_requests_total",
                                  dimensions: [("route", key.route), ("method", key.method), ("status", "\(key.status)")])
            counters[key] = counter
            return counter
        }
    }

    func record(route: String?, method: String, status: Int, elapsed: Duration) {
        let key = Key(route: route ?? "unmatched", method: Self.methods.contains(method) ? method : "other", status: status)
        counter(key).increment()
        let timer = timers.withLock { timers in
            if let timer = timers[key.route] { return timer }
            let timer = Metrics.Timer(label: "faultline_http_request_duration_seconds", dimensions: [("route", key.route)])
            timers[key.route] = timer
            return timer
        }
        timer.record(duration: elapsed)
    }
}

/// Whether the process is shutting down: readiness turns 503 as soon as it begins.
public final class Lifecycle: Sendable {
    private let stopping = Atomic<Bool>(false)

    public init() {}

    public var isShuttingDown: Bool { stopping.load(ordering: .relaxed) }
    public func beginShutdown() { stopping.store(true, ordering: .relaxed) }
}
