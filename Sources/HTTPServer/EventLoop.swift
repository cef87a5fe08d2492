import CLinuxShims
import Logging
import Posix

#if canImport(Glibc)
import Glibc
#endif

/// One connection's state. Lives on the loop thread only.
final class Connection {
    enum Queued {
        case request(HTTPRequest, keepAlive: Bool)
        case failure(status: Int, message: String)
    }

    struct InFlight {
        let isHead: Bool
        let keepAlive: Bool
    }

    let id: UInt64
    let fd: Int32
    let remoteAddress: String
    /// The client's address without the port: what the per-client connection cap counts.
    let clientAddress: String
    var parser: HTTPRequestParser
    /// The request whose head arrived and whose body is still being received.
    var receiving: (head: HTTPRequestHead, body: [UInt8])?
    /// Complete requests (and parser failures) waiting for their turn, oldest first.
    var queue: [Queued] = []
    var inFlight: InFlight?
    var output = OutputQueue()
    var registered: UInt32 = 0
    /// Nothing more will be read as a request: the client asked to close, sent garbage or
    /// half-closed.
    var noMoreRequests = false
    var peerClosed = false
    var closeAfterFlush = false
    var draining = false
    var drainDeadline: ContinuousClock.Instant?
    /// A `100 Continue` is due once the responses before it are written.
    var continueOwed = false
    var idleSince: ContinuousClock.Instant?
    var headStartedAt: ContinuousClock.Instant?
    var bodyStartedAt: ContinuousClock.Instant?
    var writeStalledSince: ContinuousClock.Instant?
    /// The descriptor is closed (and may already belong to another connection): touch it no more.
    var closed = false

    init(id: UInt64, fd: Int32, remoteAddress: String, clientAddress: String, limits: HTTPParserLimits) {
        self.id = id
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.clientAddress = clientAddress
        self.parser = HTTPRequestParser(limits: limits)
    }

    var hasPendingOutput: Bool { !output.isEmpty }

    /// `192.0.2.1` of `192.0.2.1:5000`, `2001:db8::1` of `[2001:db8::1]:5000`.
    static func host(of address: String) -> String {
        if address.hasPrefix("["), let end = address.firstIndex(of: "]") {
            return String(address[address.index(after: address.startIndex)..<end])
        }
        if let colon = address.lastIndex(of: ":") { return String(address[..<colon]) }
        return address
    }

    /// No request is partly read, waiting, running or being written.
    var isIdle: Bool {
        inFlight == nil && queue.isEmpty && !hasPendingOutput && !parser.isReadingHead
            && !parser.isReadingBody && !closeAfterFlush && !draining
    }
}

/// One epoll loop. Created and run on its own thread; nothing here is touched by another thread
/// except through its ``LoopInbox``. The first loop also accepts the connections of all.
final class EventLoop {
    static let listenerToken: UInt64 = 0
    static let wakeToken: UInt64 = 1
    static let maxQueuedRequests = 16
    static let maxBufferedOutput = 1 << 20
    static let sweepInterval = Duration.milliseconds(100)

    let server: HTTPServer
    let index: Int
    /// This loop's.
    let inbox: LoopInbox
    /// Every loop's, this one's at ``index``.
    let inboxes: [LoopInbox]
    let configuration: HTTPServerConfiguration
    let limits: HTTPParserLimits
    let logger: Logger
    let epollFD: Int32
    let wakeFD: Int32
    var listenFD: Int32
    var listenerPaused = false
    var acceptResumeAt: ContinuousClock.Instant?
    var connections: [UInt64: Connection] = [:]
    var nextID: UInt64 = 2
    /// Where the accepting loop's search for the least busy loop starts, turn by turn.
    var nextLoop = 0
    var now = ContinuousClock.now
    var lastSweep = ContinuousClock.now
    var shuttingDown = false
    var shutdownDeadline: ContinuousClock.Instant?
    var dates = DateCache()
    /// Owned by the loop; freed in `deinit`.
    let readBuffer: UnsafeMutableBufferPointer<UInt8>
    var events: [CLinuxShims_event]

    let readable = CLinuxShims_EPOLLIN | CLinuxShims_EPOLLRDHUP
    let writable = CLinuxShims_EPOLLOUT

    init(server: HTTPServer, index: Int, inboxes: [LoopInbox], descriptors: LoopDescriptors, listenFD: Int32) {
        self.server = server
        self.index = index
        self.inbox = inboxes[index]
        self.inboxes = inboxes
        self.configuration = server.configuration
        self.limits = server.configuration.parserLimits
        self.logger = server.logger
        self.epollFD = descriptors.epollFD
        self.wakeFD = descriptors.wakeFD
        self.listenFD = listenFD
        self.readBuffer = .allocate(capacity: 64 * 1024)
        self.events = Array(repeating: CLinuxShims_event(), count: 256)
    }

    deinit {
        readBuffer.deallocate()
    }

    func run() {
        if listenFD >= 0 {
            _ = CLinuxShims_epoll_ctl(epollFD, CLinuxShims_epoll_ctl_add(), listenFD, CLinuxShims_EPOLLIN, Self.listenerToken)
        }
        _ = CLinuxShims_epoll_ctl(epollFD, CLinuxShims_epoll_ctl_add(), wakeFD, CLinuxShims_EPOLLIN, Self.wakeToken)
        drainInbox()
        while !(shuttingDown && connections.isEmpty) {
            let count = events.withUnsafeMutableBufferPointer { buffer in
                CLinuxShims_epoll_wait(epollFD, buffer.baseAddress, Int32(buffer.count), 100)
            }
            now = .now
            if count < 0 && errno != EINTR {
                logger.error("epoll_wait failed", metadata: ["error": "\(PosixError(code: errno, operation: "epoll_wait"))"])
                break
            }
            for index in 0..<max(0, Int(count)) {
                let event = events[index]
                switch event.data {
                case Self.listenerToken: acceptConnections()
                case Self.wakeToken: drainInbox()
                default: handle(event.events, connection: event.data)
                }
            }
            if now - lastSweep >= Self.sweepInterval {
                lastSweep = now
                sweep()
            }
            if let shutdownDeadline, now >= shutdownDeadline {
                logger.warning("shutdown grace period over; closing connections", metadata: ["open": "\(connections.count)"])
                for connection in Array(connections.values) { close(connection) }
            }
        }
        closeListener()
        // Connections handed over after the last look: their loop is done, so they close unread.
        for accepted in inbox.close() {
            Glibc.close(accepted.fd)
            server.release(client: accepted.clientAddress)
        }
        Glibc.close(epollFD)
    }

    // MARK: - Listener

    func acceptConnections() {
        for _ in 0..<1024 {
            guard listenFD >= 0 else { return }
            if server.openConnections >= configuration.maxConnections {
                pauseListener(until: nil)
                return
            }
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let result: SyscallResult<Int32>
            do {
                result = try withUnsafeMutablePointer(to: &address) { pointer in
                    try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                        try syscall("accept4") { CLinuxShims_accept4(listenFD, raw, &length) }
                    }
                }
            } catch let error as PosixError {
                switch error.code {
                case ECONNABORTED, EPROTO, EPERM:
                    continue
                case EINVAL:
                    // Shut down by beginShutdown(): the loop closes it when it reads its inbox.
                    pauseListener(until: nil)
                    return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    logger.warning("cannot accept; pausing", metadata: ["error": "\(error)"])
                    pauseListener(until: now + .milliseconds(100))
                    return
                default:
                    logger.error("accept failed", metadata: ["error": "\(error)"])
                    pauseListener(until: now + .milliseconds(100))
                    return
                }
            } catch {
                return
            }
            guard case .value(let fd) = result else { return }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let remoteAddress = socketAddressText(address)
            let accepted = LoopInbox.Accepted(fd: fd, remoteAddress: remoteAddress, clientAddress: Connection.host(of: remoteAddress))
            guard server.admit(client: accepted.clientAddress) else {
                refuseTooMany(fd, client: accepted.clientAddress)
                continue
            }
            let target = leastBusyLoop()
            if target == index {
                register(accepted)
            } else if !inboxes[target].hand(accepted) {
                // That loop has ended: the server is stopping.
                Glibc.close(fd)
                server.release(client: accepted.clientAddress)
            }
        }
    }

    /// The loop with the fewest open connections; ties go round in turn.
    func leastBusyLoop() -> Int {
        guard inboxes.count > 1 else { return 0 }
        nextLoop = (nextLoop + 1) % inboxes.count
        var best = nextLoop
        var fewest = inboxes[best].open.load(ordering: .relaxed)
        for step in 1..<inboxes.count {
            let candidate = (nextLoop + step) % inboxes.count
            let open = inboxes[candidate].open.load(ordering: .relaxed)
            if open < fewest {
                best = candidate
                fewest = open
            }
        }
        // Counted now, so a burst of connections spreads before the loops take them.
        inboxes[best].open.add(1, ordering: .relaxed)
        return best
    }

    /// Starts serving a connection accepted (and counted in ``LoopInbox/open``) for this loop.
    func register(_ accepted: LoopInbox.Accepted) {
        let connection = Connection(
            id: nextID, fd: accepted.fd, remoteAddress: accepted.remoteAddress, clientAddress: accepted.clientAddress,
            limits: limits)
        nextID += 1
        connection.idleSince = now
        guard CLinuxShims_epoll_ctl(epollFD, CLinuxShims_epoll_ctl_add(), accepted.fd, readable, connection.id) == 0 else {
            Glibc.close(accepted.fd)
            inbox.open.subtract(1, ordering: .relaxed)
            server.release(client: accepted.clientAddress)
            return
        }
        connection.registered = readable
        connections[connection.id] = connection
        if shuttingDown { close(connection) }
    }

    /// Answers a connection over the per-client cap with a 503 and closes it. The answer is
    /// written at once (it fits any socket buffer); what the client sent is read and dropped
    /// first, so that the close does not turn into a reset that loses the answer.
    func refuseTooMany(_ fd: Int32, client: String) {
        var scratch = [UInt8](repeating: 0, count: 4096)
        _ = read(fd, &scratch, scratch.count)
        _ = Self.tooManyConnections.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        _ = shutdown(fd, Int32(SHUT_WR))
        Glibc.close(fd)
        configuration.onRefused?(503)
        let last = refusedClients[client]
        if last.map({ now - $0 >= .seconds(60) }) ?? true {
            if refusedClients.count > 1_000 { refusedClients.removeAll() }
            refusedClients[client] = now
            logger.warning(
                "connection refused: too many open connections from one client",
                metadata: ["client": "\(client)", "limit": "\(configuration.maxConnectionsPerClient)"])
        }
    }

    /// When each refused client was last logged (at most once a minute each).
    var refusedClients: [String: ContinuousClock.Instant] = [:]

    static let tooManyConnections: [UInt8] = {
        let body = #"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"too many open connections from this address; close idle ones or try again shortly"}"#
        return Array((
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\n"
            + "Connection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body).utf8)
    }()

    func pauseListener(until resume: ContinuousClock.Instant?) {
        acceptResumeAt = resume
        guard !listenerPaused, listenFD >= 0 else { return }
        listenerPaused = true
        server.acceptPaused.store(true, ordering: .relaxed)
        _ = CLinuxShims_epoll_ctl(epollFD, CLinuxShims_epoll_ctl_mod(), listenFD, 0, Self.listenerToken)
    }

    func resumeListenerIfPossible() {
        guard listenerPaused, listenFD >= 0, server.openConnections < configuration.maxConnections else { return }
        if let acceptResumeAt, now < acceptResumeAt { return }
        listenerPaused = false
        server.acceptPaused.store(false, ordering: .relaxed)
        acceptResumeAt = nil
        _ = CLinuxShims_epoll_ctl(epollFD, CLinuxShims_epoll_ctl_mod(), listenFD, CLinuxShims_EPOLLIN, Self.listenerToken)
    }

    func closeListener() {
        guard listenFD >= 0 else { return }
        _ = CLinuxShims_epoll_ctl(epollFD, CLinuxShims_epoll_ctl_del(), listenFD, 0, 0)
        // Under the server's lock: beginShutdown() shuts the socket down under it.
        server.shared.withLock { shared in
            shared.listenFD = -1
            Glibc.close(listenFD)
        }
        listenFD = -1
    }

    // MARK: - Inbox

    func drainInbox() {
        var counter: UInt64 = 0
        _ = read(wakeFD, &counter, 8)
        let contents = inbox.take()
        if contents.shutdownRequested && !shuttingDown { startShutdown() }
        for accepted in contents.accepted { register(accepted) }
        resumeListenerIfPossible()
        for (id, response) in contents.completions {
            guard let connection = connections[id] else { continue }  // closed meanwhile
            complete(connection, response)
        }
    }

    func startShutdown() {
        shuttingDown = true
        shutdownDeadline = now + configuration.shutdownGrace
        closeListener()
        for connection in Array(connections.values) {
            if connection.isIdle {
                close(connection)
            }
        }
        logger.info("HTTP server shutting down", metadata: ["in-flight connections": "\(connections.count)"])
    }

    // MARK: - Connections

    func handle(_ events: UInt32, connection id: UInt64) {
        guard let connection = connections[id] else { return }
        if events & CLinuxShims_EPOLLERR != 0 {
            close(connection)
            return
        }
        if events & CLinuxShims_EPOLLOUT != 0 {
            flush(connection)
            guard connections[id] != nil else { return }
        }
        if events & (CLinuxShims_EPOLLIN | CLinuxShims_EPOLLRDHUP | CLinuxShims_EPOLLHUP) != 0 {
            if connection.registered & CLinuxShims_EPOLLIN == 0 {
                // Not reading, yet hung up: both directions are gone.
                if events & CLinuxShims_EPOLLHUP != 0 { close(connection) }
                return
            }
            readFrom(connection)
        }
    }

    func wantsRead(_ connection: Connection) -> Bool {
        connection.draining
            || (!connection.noMoreRequests && connection.queue.count < Self.maxQueuedRequests
                && connection.output.pending < Self.maxBufferedOutput)
    }

    func readFrom(_ connection: Connection) {
        for _ in 0..<4 {
            guard !connection.closed else { return }
            guard wantsRead(connection) else { break }
            let result: SyscallResult<Int>
            do {
                result = try syscall("read") { read(connection.fd, readBuffer.baseAddress, readBuffer.count) }
            } catch {
                logger.debug("read failed", metadata: ["error": "\(error)", "peer": "\(connection.remoteAddress)"])
                close(connection)
                return
            }
            guard case .value(let count) = result else { break }
            if count == 0 {
                peerClosed(connection)
                return
            }
            if connection.draining { continue }
            let events: [HTTPParserEvent]
            do {
                events = try connection.parser.feed(UnsafeBufferPointer(rebasing: readBuffer[0..<count]))
            } catch {
                logger.error("parser state error", metadata: ["error": "\(error)"])
                close(connection)
                return
            }
            for event in events { apply(event, to: connection) }
            if count < readBuffer.count { break }
        }
        process(connection)
    }

    func peerClosed(_ connection: Connection) {
        connection.peerClosed = true
        connection.noMoreRequests = true
        // A request cut short cannot be answered; finished ones still are.
        if connection.draining || (connection.inFlight == nil && connection.queue.isEmpty) {
            close(connection)
        } else {
            connection.receiving = nil
            update(connection)
        }
    }

    func apply(_ event: HTTPParserEvent, to connection: Connection) {
        switch event {
        case .head(let head):
            connection.receiving = (head, [])
            if head.expectsContinue && head.hasBody {
                if connection.inFlight == nil && connection.queue.isEmpty {
                    appendContinue(connection)
                } else {
                    connection.continueOwed = true
                }
            }
        case .body(let bytes):
            connection.receiving?.body.append(contentsOf: bytes)
        case .end(let trailers):
            guard let (head, body) = connection.receiving else { return }
            connection.receiving = nil
            connection.continueOwed = false
            let request = HTTPRequest(
                method: head.method, target: head.target, version: head.version, headers: head.headers,
                trailers: trailers, body: body, remoteAddress: connection.remoteAddress)
            connection.queue.append(.request(request, keepAlive: head.keepAlive && !shuttingDown))
            if !head.keepAlive || shuttingDown { connection.noMoreRequests = true }
        case .failure(let error):
            connection.receiving = nil
            connection.continueOwed = false
            connection.queue.append(.failure(status: error.status, message: error.description))
            connection.noMoreRequests = true
            logger.debug("bad request", metadata: ["error": "\(error)", "peer": "\(connection.remoteAddress)"])
        }
    }

    /// Whether the connection's unsent output is at its limit: its queued requests wait (and
    /// nothing more is read) until the client reads, so a client that pipelines requests and
    /// never reads holds at most about that much of the server's memory.
    func isBackedUp(_ connection: Connection) -> Bool {
        connection.output.pending >= Self.maxBufferedOutput
    }

    /// Starts the next queued request if none is running, then writes what is ready.
    func process(_ connection: Connection) {
        guard !connection.closed else { return }
        while connection.inFlight == nil && !connection.closeAfterFlush && !connection.queue.isEmpty && !isBackedUp(connection) {
            switch connection.queue.removeFirst() {
            case .request(let request, let keepAlive):
                let inFlight = Connection.InFlight(isHead: request.method == "HEAD", keepAlive: keepAlive)
                if let immediate = server.immediate, let response = immediate(request) {
                    respond(connection, inFlight, response)
                    continue
                }
                connection.inFlight = inFlight
                let handler = server.handler
                let inbox = self.inbox
                let id = connection.id
                Task {
                    let response = await handler(request)
                    inbox.post(id, response)
                }
            case .failure(let status, let message):
                configuration.onRefused?(status)
                appendResponse(.text(message + "\n", status: status), to: connection, isHead: false, close: true)
            }
        }
        if connection.continueOwed && connection.inFlight == nil && connection.queue.isEmpty
            && !connection.closeAfterFlush
        {
            connection.continueOwed = false
            appendContinue(connection)
        }
        flush(connection)
    }

    func complete(_ connection: Connection, _ response: HTTPResponse) {
        guard let inFlight = connection.inFlight else { return }
        connection.inFlight = nil
        respond(connection, inFlight, response)
        process(connection)
    }

    /// Queues the response to the request `inFlight` describes (which is no longer in flight).
    func respond(_ connection: Connection, _ inFlight: Connection.InFlight, _ response: HTTPResponse) {
        let close =
            !inFlight.keepAlive || shuttingDown
            || (response.headers.contains("connection") && response.headers.tokens(for: "connection").contains("close"))
            || (connection.peerClosed && connection.queue.isEmpty)
        appendResponse(response, to: connection, isHead: inFlight.isHead, close: close)
    }

    func appendContinue(_ connection: Connection) {
        connection.output.append(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
    }

    func appendResponse(_ response: HTTPResponse, to connection: Connection, isHead: Bool, close: Bool) {
        server.countServed()
        let bodyAllowed = !(100...199).contains(response.status) && response.status != 204 && response.status != 304
        let sendsBody = bodyAllowed && !isHead && !response.body.isEmpty
        let inlineBody = sendsBody && response.body.count <= OutputQueue.inlineBodyLimit
        var out: [UInt8] = []
        out.reserveCapacity(512 + (inlineBody ? response.body.count : 0))
        out.append(contentsOf: Self.statusLine(response.status))
        var declaredLength: String?
        for (name, value) in response.headers {
            switch Self.disposition(name, value) {
            case .write:
                out.append(contentsOf: name.utf8)
                out.append(0x3A)
                out.append(0x20)
                out.append(contentsOf: value.utf8)
                out.append(0x0D)
                out.append(0x0A)
            case .contentLength:
                declaredLength = value
            case .drop:
                continue
            }
        }
        out.append(contentsOf: "Date: ".utf8)
        out.append(contentsOf: dates.current())
        out.append(contentsOf: "\r\nServer: faultline\r\n".utf8)
        if bodyAllowed {
            out.append(contentsOf: "Content-Length: ".utf8)
            if isHead && response.body.isEmpty {
                // A HEAD handler may declare the length of the GET body it did not produce.
                out.append(contentsOf: (declaredLength ?? "0").utf8)
            } else {
                out.append(contentsOf: String(response.body.count).utf8)  // a small string: no allocation
            }
            out.append(0x0D)
            out.append(0x0A)
        }
        out.append(contentsOf: (close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n").utf8)
        if inlineBody { out.append(contentsOf: response.body) }
        connection.output.append(out)
        // A large body is queued as it is: written from the handler's array, not copied.
        if sendsBody && !inlineBody { connection.output.append(response.body) }
        if close {
            connection.closeAfterFlush = true
            connection.noMoreRequests = true
            connection.queue.removeAll()
            connection.continueOwed = false
        }
    }

    /// Headers the server writes itself; a handler's are dropped.
    static let serverOwned = ["connection", "date", "server", "transfer-encoding"]

    enum HeaderDisposition { case write, drop, contentLength }

    /// What becomes of a handler's header: dropped when its name is not a token or its value
    /// holds a CR, LF or NUL (which would let it split the response), or when the server writes
    /// that header itself; `Content-Length` is the server's too, but a HEAD answer may declare it.
    static func disposition(_ name: String, _ value: String) -> HeaderDisposition {
        var name = name
        var value = value
        let valid = name.withUTF8 { bytes in bytes.allSatisfy(isTokenByte) }
            && value.withUTF8 { bytes in !bytes.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 } }
        guard valid else { return .drop }
        switch name.utf8.count {
        case 14 where HTTPHeaders.equalNames(name, "content-length"): return .contentLength
        case 4, 6, 10, 17: return serverOwned.contains { HTTPHeaders.equalNames(name, $0) } ? .drop : .write
        default: return .write
        }
    }

    /// `HTTP/1.1 200 OK\r\n`, made once per status.
    static func statusLine(_ status: Int) -> [UInt8] {
        (100...599).contains(status) ? statusLines[status - 100] : makeStatusLine(status)
    }

    static let statusLines: [[UInt8]] = (100...599).map(makeStatusLine)

    private static func makeStatusLine(_ status: Int) -> [UInt8] {
        Array("HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(status))\r\n".utf8)
    }

    func flush(_ connection: Connection) {
        guard !connection.closed else { return }
        while connection.hasPendingOutput {
            let result: SyscallResultCount
            do {
                result = try connection.output.write(to: connection.fd)
            } catch {
                logger.debug("write failed", metadata: ["error": "\(error)", "peer": "\(connection.remoteAddress)"])
                close(connection)
                return
            }
            switch result {
            case .wouldBlock:
                if connection.writeStalledSince == nil { connection.writeStalledSince = now }
                update(connection)
                return
            case .written:
                connection.writeStalledSince = nil
            }
        }
        connection.writeStalledSince = nil
        connection.output.removeAll()
        if connection.closeAfterFlush && !connection.draining {
            startDraining(connection)
            return
        }
        if connection.inFlight == nil && !connection.queue.isEmpty {
            // Requests that waited for the output to drain (process flushes again).
            process(connection)
            return
        }
        update(connection)
    }

    /// Half-closes and keeps reading for a while: closing with unread bytes would send a reset,
    /// and the client could lose the response it has not read yet.
    func startDraining(_ connection: Connection) {
        if connection.peerClosed {
            close(connection)
            return
        }
        _ = shutdown(connection.fd, Int32(SHUT_WR))
        connection.draining = true
        connection.drainDeadline = now + configuration.lingerTimeout
        update(connection)
    }

    /// Brings the epoll interest and the timers in line with the connection's state.
    func update(_ connection: Connection) {
        guard !connection.closed else { return }
        var wanted: UInt32 = wantsRead(connection) ? readable : 0
        if connection.hasPendingOutput { wanted |= writable }
        if wanted != connection.registered {
            _ = CLinuxShims_epoll_ctl(epollFD, CLinuxShims_epoll_ctl_mod(), connection.fd, wanted, connection.id)
            connection.registered = wanted
        }
        connection.headStartedAt = connection.parser.isReadingHead ? (connection.headStartedAt ?? now) : nil
        connection.bodyStartedAt = connection.parser.isReadingBody ? (connection.bodyStartedAt ?? now) : nil
        connection.idleSince = connection.isIdle ? (connection.idleSince ?? now) : nil
        if shuttingDown && connection.isIdle { close(connection) }
    }

    func close(_ connection: Connection) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        connection.closed = true
        Glibc.close(connection.fd)  // also removes it from the epoll set
        inbox.open.subtract(1, ordering: .relaxed)
        server.release(client: connection.clientAddress)
        if index == 0 {
            resumeListenerIfPossible()
        } else if server.acceptPaused.load(ordering: .relaxed) {
            inboxes[0].nudge()
        }
    }

    // MARK: - Timeouts

    func sweep() {
        resumeListenerIfPossible()
        for connection in Array(connections.values) {
            if connection.draining {
                if let deadline = connection.drainDeadline, now >= deadline { close(connection) }
            } else if let since = connection.writeStalledSince, now - since >= configuration.writeTimeout {
                logger.debug("write timeout", metadata: ["peer": "\(connection.remoteAddress)"])
                close(connection)
            } else if let since = connection.headStartedAt, now - since >= configuration.headerTimeout {
                timeOut(connection, "header timeout")
            } else if let since = connection.bodyStartedAt, now - since >= configuration.bodyTimeout {
                timeOut(connection, "body timeout")
            } else if connection.isIdle, let since = connection.idleSince, now - since >= configuration.idleTimeout {
                close(connection)
            }
        }
    }

    func timeOut(_ connection: Connection, _ what: String) {
        logger.debug("\(what)", metadata: ["peer": "\(connection.remoteAddress)"])
        connection.parser = HTTPRequestParser(limits: limits)
        connection.receiving = nil
        connection.noMoreRequests = true
        connection.headStartedAt = nil
        connection.bodyStartedAt = nil
        connection.queue.append(.failure(status: 408, message: what))
        process(connection)
    }
}
