import Logging
import Posix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Answers a request; runs on Swift's task pool, never on an event loop.
public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

/// Answers a request at once from memory, on the event loop's own thread, or returns `nil` to
/// pass it to the ``HTTPHandler``. It must not block, wait or do much work: every connection of
/// its loop waits while it runs.
public typealias HTTPImmediateHandler = @Sendable (HTTPRequest) -> HTTPResponse?

/// An HTTP/1.1 server: epoll event loops on threads of their own (one per core by default),
/// handlers on Swift tasks.
///
/// The first loop accepts connections and gives each to the loop with the fewest open. A loop
/// reads and parses its connections' requests, answers those the immediate handler can answer
/// from memory on the spot, hands the others to a task running the handler, and writes the
/// responses in request order. Keep-alive, pipelining, chunked request bodies,
/// `Expect: 100-continue` and `HEAD` are handled here; handlers see whole requests.
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
    let immediate: HTTPImmediateHandler?
    let logger: Logger

    struct Shared {
        enum Phase { case created, started(port: Int), failed(Error), finished }
        var phase = Phase.created
        var startWaiters: [CheckedContinuation<Int, Error>] = []
        var shutdownRequested = false
        /// One per loop while ``run()`` runs; the first is the accepting loop's.
        var inboxes: [LoopInbox] = []
        /// The listening socket while it is open (the accepting loop closes it under this lock).
        var listenFD: Int32 = -1
        /// Bound by ``bind()`` ahead of ``run()``.
        var bound: Listener?
    }

    let shared = Mutex(Shared())
    /// Open connections per client address (``Connection/clientAddress``), over every loop.
    private let clients = Mutex<[String: Int]>([:])
    /// The accepting loop stopped accepting at ``HTTPServerConfiguration/maxConnections``: a loop
    /// that closes a connection wakes it.
    let acceptPaused = Atomic<Bool>(false)
    private let openCount = Atomic<Int>(0)
    private let acceptedCount = Atomic<Int>(0)
    private let servedCount = Atomic<Int>(0)

    /// - Parameters:
    ///   - configuration: address, limits and timeouts.
    ///   - handler: answers every request; the application routes (the REST API has its own router).
    ///   - immediate: answers what it can from memory on the loop's thread, without a task;
    ///     `nil` for requests the handler answers. Default: none.
    ///   - logger: connection-level problems are logged at `debug`, loop failures at `error`.
    public init(configuration: HTTPServerConfiguration, handler: @escaping HTTPHandler,
                immediate: HTTPImmediateHandler? = nil, logger: Logger) {
        self.configuration = configuration
        self.handler = handler
        self.immediate = immediate
        self.logger = logger
    }

    /// The connections open now.
    public var openConnections: Int { openCount.load(ordering: .relaxed) }
    /// The connections accepted since start.
    public var acceptedConnections: Int { acceptedCount.load(ordering: .relaxed) }
    /// The connections open on each event loop now (empty when not running).
    public var openConnectionsPerLoop: [Int] {
        shared.withLock { $0.inboxes }.map { $0.open.load(ordering: .relaxed) }
    }
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
        var descriptors: [LoopDescriptors] = []
        do {
            listener = try shared.withLock { $0.bound.take() } ?? makeListener()
            do {
                for _ in 0..<max(1, configuration.eventLoops) { descriptors.append(try LoopDescriptors()) }
            } catch {
                for made in descriptors { made.close() }
                Glibc.close(listener.fd)
                throw error
            }
        } catch {
            let waiters = shared.withLock { shared in
                shared.phase = .failed(error)
                defer { shared.startWaiters = [] }
                return shared.startWaiters
            }
            for waiter in waiters { waiter.resume(throwing: error) }
            throw error
        }
        let inboxes = descriptors.map { LoopInbox(wakeFD: $0.wakeFD) }
        let (waiters, shutdownRequested) = shared.withLock { shared in
            shared.phase = .started(port: listener.port)
            shared.inboxes = inboxes
            shared.listenFD = shared.shutdownRequested ? -1 : listener.fd
            defer { shared.startWaiters = [] }
            return (shared.startWaiters, shared.shutdownRequested)
        }
        if shutdownRequested { for inbox in inboxes { inbox.requestShutdown() } }
        for waiter in waiters { waiter.resume(returning: listener.port) }
        logger.info("HTTP server listening", metadata: [
            "host": "\(configuration.host)", "port": "\(listener.port)", "event_loops": "\(inboxes.count)"])

        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                for (index, loopDescriptors) in descriptors.enumerated() {
                    group.addTask { [self] in
                        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                            let thread = DedicatedThread(name: "http-loop-\(index)")
                            thread.submit { [self] in
                                let loop = EventLoop(server: self, index: index, inboxes: inboxes, descriptors: loopDescriptors,
                                                     listenFD: index == 0 ? listener.fd : -1)
                                loop.run()
                                continuation.resume()
                            }
                            // Lets the loop job run to its end, then ends the thread.
                            thread.shutdown()
                        }
                    }
                }
            }
        } onCancel: {
            beginShutdown()
        }
        shared.withLock { shared in
            shared.phase = .finished
            shared.inboxes = []
        }
        logger.info("HTTP server stopped")
    }

    /// Starts a graceful shutdown and returns at once: the listener closes (new connections are
    /// refused), idle connections close now, in-flight requests finish and their responses carry
    /// `Connection: close`; ``run()`` returns when all are closed or
    /// ``HTTPServerConfiguration/shutdownGrace`` has passed.
    public func beginShutdown() {
        let inboxes = shared.withLock { shared in
            shared.shutdownRequested = true
            // New connections are refused from now on, not once the accepting loop gets to it:
            // a listening socket shut down for reading stops listening (its descriptor stays
            // the loop's to close).
            if shared.listenFD >= 0 {
                _ = Glibc.shutdown(shared.listenFD, Int32(SHUT_RD))
                shared.listenFD = -1
            }
            return shared.inboxes
        }
        for inbox in inboxes { inbox.requestShutdown() }
    }

    // MARK: - Used by the loops

    /// Counts a new connection from `client`, or refuses it (`false`) when that client has
    /// ``HTTPServerConfiguration/maxConnectionsPerClient`` open already.
    func admit(client: String) -> Bool {
        let admitted = clients.withLock { clients in
            let open = clients[client, default: 0]
            guard open < configuration.maxConnectionsPerClient else { return false }
            clients[client] = open + 1
            return true
        }
        if admitted {
            openCount.add(1, ordering: .relaxed)
            acceptedCount.add(1, ordering: .relaxed)
        }
        return admitted
    }

    /// Counts a connection of `client` closed (on whichever loop held it).
    func release(client: String) {
        clients.withLock { clients in
            let remaining = clients[client, default: 1] - 1
            clients[client] = remaining > 0 ? remaining : nil
        }
        openCount.subtract(1, ordering: .relaxed)
    }
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
