import Logging
import Posix
import Synchronization

/// Answers a request; runs on Swift's task pool, never on the event loop.
public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

/// An HTTP/1.1 server: one epoll event loop on a thread of its own, handlers on Swift tasks.
///
/// The loop reads and parses requests, hands each complete request to a task running the
/// handler, and writes the responses in request order. Keep-alive, pipelining, chunked request
/// bodies, `Expect: 100-continue` and `HEAD` are handled here; handlers see whole requests.
///
/// ```swift
/// let server = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0),
///                         handler: { request in .text("hello \(request.path)") }, logger: logger)
/// async let serving: Void = server.run()
/// let port = try await server.waitUntilStarted()
/// …
/// server.beginShutdown()
/// try await serving
/// ```
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    let handler: HTTPHandler
    let logger: Logger

    struct Shared {
        enum Phase { case created, started(port: Int), failed(Error), finished }
        var phase = Phase.created
        var startWaiters: [CheckedContinuation<Int, Error>] = []
        var shutdownRequested = false
        var completions: [(UInt64, HTTPResponse)] = []
        var wakeFD: Int32 = -1
        var wakePending = false
        /// Bound by ``bind()`` ahead of ``run()``.
        var bound: Listener?
    }

    let shared = Mutex(Shared())
    private let openCount = Atomic<Int>(0)
    private let acceptedCount = Atomic<Int>(0)
    private let servedCount = Atomic<Int>(0)

    /// - Parameters:
    ///   - configuration: address, limits and timeouts.
    ///   - handler: answers every request; the application routes (the REST API has its own router).
    ///   - logger: connection-level problems are logged at `debug`, loop failures at `error`.
    public init(configuration: HTTPServerConfiguration, handler: @escaping HTTPHandler, logger: Logger) {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
    }

    /// The connections open now.
    public var openConnections: Int { openCount.load(ordering: .relaxed) }
    /// The connections accepted since start.
    public var acceptedConnections: Int { acceptedCount.load(ordering: .relaxed) }
    /// The responses written since start (parser errors included).
    public var requestsServed: Int { servedCount.load(ordering: .relaxed) }

    /// The bound port once the server listens, else `nil`.
    public var port: Int? {
        shared.withLock { if case .started(let port) = $0.phase { port } else { nil } }
    }

    /// Waits until ``run()`` listens and returns the bound port.
    ///
    /// - Throws: the error that made ``run()`` fail to listen, or ``HTTPServerError/notRunning``
    ///   when it already finished.
    public func waitUntilStarted() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let result: Result<Int, Error>? = shared.withLock { shared in
                switch shared.phase {
                case .created:
                    shared.startWaiters.append(continuation)
                    return nil
                case .started(let port): return .success(port)
                case .failed(let error): return .failure(error)
                case .finished: return .failure(HTTPServerError.notRunning)
                }
            }
            if let result { continuation.resume(with: result) }
        }
    }

    /// Binds and listens now, before ``run()``, which then serves on this listener: a process
    /// learns that its port is taken before it does anything else (such as joining a consumer
    /// group). Returns the bound port; calling it again returns the same.
    ///
    /// - Throws: ``PosixError`` when the address cannot be bound.
    @discardableResult
    public func bind() throws -> Int {
        if let port = shared.withLock({ $0.bound?.port }) { return port }
        let listener = try makeListener()
        shared.withLock { $0.bound = listener }
        return listener.port
    }

    private func makeListener() throws -> Listener {
        raiseOpenFileLimit(logger: logger)
        return try Listener(host: configuration.host, port: configuration.port, backlog: configuration.listenBacklog)
    }

    /// Listens and serves until ``beginShutdown()`` (or cancellation of the calling task) and
    /// the graceful shutdown that follows are complete.
    ///
    /// - Throws: ``PosixError`` when the address cannot be bound.
    public func run() async throws {
        let listener: Listener
        do {
            listener = try shared.withLock { $0.bound.take() } ?? makeListener()
        } catch {
            let waiters = shared.withLock { shared in
                shared.phase = .failed(error)
                defer { shared.startWaiters = [] }
                return shared.startWaiters
            }
            for waiter in waiters { waiter.resume(throwing: error) }
            throw error
        }
        let waiters = shared.withLock { shared in
            shared.phase = .started(port: listener.port)
            shared.wakeFD = listener.wakeFD
            defer { shared.startWaiters = [] }
            return shared.startWaiters
        }
        for waiter in waiters { waiter.resume(returning: listener.port) }
        logger.info("HTTP server listening", metadata: ["host": "\(configuration.host)", "port": "\(listener.port)"])

        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let thread = DedicatedThread(name: "http-loop")
                thread.submit { [self] in
                    let loop = EventLoop(server: self, listener: listener)
                    loop.run()
                    continuation.resume()
                }
                // Lets the loop job run to its end, then ends the thread.
                thread.shutdown()
            }
        } onCancel: {
            beginShutdown()
        }
        shared.withLock { $0.phase = .finished }
        logger.info("HTTP server stopped")
    }

    /// Starts a graceful shutdown and returns at once: the listener closes (new connections are
    /// refused), idle connections close now, in-flight requests finish and their responses carry
    /// `Connection: close`; ``run()`` returns when all are closed or
    /// ``HTTPServerConfiguration/shutdownGrace`` has passed.
    public func beginShutdown() {
        // The eventfd is written under the lock: the loop closes it under the same lock.
        shared.withLock { shared in
            shared.shutdownRequested = true
            if shared.wakeFD >= 0 { wake(shared.wakeFD) }
        }
    }

    // MARK: - Used by the loop and handler tasks

    func post(_ connection: UInt64, _ response: HTTPResponse) {
        shared.withLock { shared in
            shared.completions.append((connection, response))
            if !shared.wakePending && shared.wakeFD >= 0 {
                shared.wakePending = true
                wake(shared.wakeFD)
            }
        }
    }

    func countOpened() {
        openCount.add(1, ordering: .relaxed)
        acceptedCount.add(1, ordering: .relaxed)
    }
    func countClosed() { openCount.subtract(1, ordering: .relaxed) }
    func countServed() { servedCount.add(1, ordering: .relaxed) }
}

/// Errors of ``HTTPServer`` other than system-call failures.
public enum HTTPServerError: Error, CustomStringConvertible {
    case notRunning
    case badAddress(String)

    public var description: String {
        switch self {
        case .notRunning: "the HTTP server is not running"
        case .badAddress(let host): "cannot listen on address \(host)"
        }
    }
}
