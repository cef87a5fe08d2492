import Foundation
import HTTPServer
import Logging
import Posix
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A server on a free loopback port, with short timeouts, serving the test routes.
struct RunningServer {
    let server: HTTPServer
    let port: Int
    let serving: Task<Void, Error>
    let gate: Gate

    var base: String { "http://127.0.0.1:\(port)" }

    static func start(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.headerTimeout = .seconds(1)
        configuration.bodyTimeout = .seconds(1)
        configuration.idleTimeout = .seconds(1)
        configuration.writeTimeout = .seconds(2)
        configuration.shutdownGrace = .seconds(10)
        configure(&configuration)
        let gate = Gate()
        let openConnections = ServerBox()
        // The routes by path and method; HEAD is answered as GET (the server drops the body).
        let routes: [String: [String: HTTPHandler]] = [
            "/hello": ["GET": { _ in .text("hello") }],
            // As large as the dashboard's script.
            "/big": ["GET": { _ in HTTPResponse(status: 200, body: Array(repeating: UInt8(ascii: "b"), count: 62 * 1024)) }],
            "/echo": [
                "POST": { request in
                    var response = HTTPResponse(status: 200, body: request.body)
                    response.headers["X-Trailer-Digest"] = request.trailers["Digest"] ?? "none"
                    return response
                },
                "PUT": { request in HTTPResponse(status: 200, body: request.body) },
            ],
            "/gated": ["GET": { _ in
                await gate.wait()
                return .text("gated done")
            }],
            "/open": ["GET": { _ in .text("\(openConnections.server?.openConnections ?? -1)") }],
        ]
        let handler: HTTPHandler = { request in
            guard let path = request.decodedPath else { return .text("Bad Request\n", status: 400) }
            if path.hasPrefix("/path/"), request.method == "GET" || request.method == "HEAD" {
                return .text("path \(path.dropFirst("/path/".count))")
            }
            guard let methods = routes[path] else { return .text("Not Found\n", status: 404) }
            if let route = methods[request.method] ?? (request.method == "HEAD" ? methods["GET"] : nil) {
                return await route(request)
            }
            var response = HTTPResponse.text("Method Not Allowed\n", status: 405)
            let allowed = methods.keys + (methods["GET"] == nil ? [] : ["HEAD"])
            response.headers.add(name: "Allow", value: allowed.sorted().joined(separator: ", "))
            return response
        }
        // `/now/…` is answered on the event loop, without a task; the rest goes to the handler.
        let immediate: HTTPImmediateHandler = { request in
            guard request.target.hasPrefix("/now/") else { return nil }
            var response = HTTPResponse.text("now \(request.target.dropFirst("/now/".count))")
            response.headers.add(name: "X-Answered", value: "immediately")
            return response
        }
        let server = HTTPServer(
            configuration: configuration, handler: handler, immediate: immediate,
            logger: Logger(label: "http-test", factory: { _ in SwiftLogNoOpLogHandler() }))
        openConnections.server = server
        let serving = Task { try await server.run() }
        let port = try await server.waitUntilStarted()
        return RunningServer(server: server, port: port, serving: serving, gate: gate)
    }

    func stop() async throws {
        gate.open()
        server.beginShutdown()
        try await serving.value
    }
}

/// Lets a route reach the server it runs in.
final class ServerBox: Sendable {
    private let stored = Mutex<HTTPServer?>(nil)
    var server: HTTPServer? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}

/// A one-shot barrier: `wait()` suspends until `open()`; also tells whether someone waits.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiting: Int, waiters: [CheckedContinuation<Void, Never>])>((false, 0, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state in
                if state.open { return true }
                state.waiting += 1
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    var waiting: Int { state.withLock { $0.waiting } }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs a program to its end without blocking a thread of the task pool.
func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil) async throws -> ProcessResult {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("http-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let out = directory.appendingPathComponent("out"), err = directory.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    if let stdin {
        let input = directory.appendingPathComponent("in")
        try Data(stdin.utf8).write(to: input)
        process.standardInput = try FileHandle(forReadingFrom: input)
    } else {
        process.standardInput = FileHandle.nullDevice
    }
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    return ProcessResult(
        status: status,
        stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
}

/// Runs a Python 3 script; arguments follow it as `sys.argv[1:]`.
func runPython(_ script: String, _ arguments: [String]) async throws -> ProcessResult {
    try await runProcess("/usr/bin/env", ["python3", "-c", script] + arguments)
}

/// A blocking loopback TCP client for raw bytes. Each client's calls run on a thread of its own,
/// so one that blocks (a send into a server that applies backpressure) holds up no other.
final class RawClient: Sendable {
    let thread: DedicatedThread
    let fd: Int32

    /// Connects to 127.0.0.1:`port`; throws `PosixError` (e.g. ECONNREFUSED).
    init(port: Int) async throws {
        let thread = DedicatedThread(name: "raw-client")
        self.thread = thread
        fd = try await thread.run {
            let fd = try blockingSyscall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if result != 0 {
                let code = errno
                close(fd)
                throw PosixError(code: code, operation: "connect")
            }
            return fd
        }
    }

    deinit {
        close(fd)
        thread.shutdown()
    }

    func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) async throws {
        let fd = self.fd
        try await thread.run {
            var offset = 0
            while offset < bytes.count {
                let sent = try bytes.withUnsafeBytes { raw in
                    try blockingSyscall("send") {
                        Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    }
                }
                offset += sent
            }
        }
    }

    /// Reads until the server closes (or a 10 s receive timeout); returns the bytes and whether
    /// the connection was closed by the server.
    func readToEnd() async throws -> (text: String, closed: Bool) {
        let fd = self.fd
        return try await thread.run {
            var all: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 { all += buffer[0..<count]; continue }
                if count == 0 { return (String(decoding: all, as: UTF8.self), true) }
                if errno == EINTR { continue }
                // A reset after the response still counts as closed; a timeout does not.
                return (String(decoding: all, as: UTF8.self), errno == ECONNRESET)
            }
        }
    }

    /// Reads until `marker` has been seen `count` times, the connection ends, or 10 s pass.
    func read(until marker: String, count: Int = 1) async throws -> String {
        let fd = self.fd
        return try await thread.run {
            var all: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while String(decoding: all, as: UTF8.self).components(separatedBy: marker).count - 1 < count {
                let received = recv(fd, &buffer, buffer.count, 0)
                if received > 0 { all += buffer[0..<received] } else if received < 0 && errno == EINTR { continue } else { break }
            }
            return String(decoding: all, as: UTF8.self)
        }
    }
}

/// Runs `body` with a server started for it, and stops it afterwards.
func withServer(
    _ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    _ body: (RunningServer) async throws -> Void
) async throws {
    let server = try await RunningServer.start(configure)
    do {
        try await body(server)
    } catch {
        try? await server.stop()
        throw error
    }
    try await server.stop()
}
