import App
import API
import Domain
import Foundation
import HTTPServer
import Logging
import Posix
import Postgres
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// `faultline bench http`: wrk against `GET /v1/insights` of a running Faultline (real
/// PostgreSQL behind it, insights served from memory as in production) and against nginx
/// serving the same response bytes as a static file, in one run.
public struct HTTPBenchmark: Sendable {
    public struct Options: Sendable {
        public var threads = 2
        public var connections = 64
        public var duration = 10
        public var wrk = "/usr/bin/wrk"
        public var nginx = "/usr/sbin/nginx"
        /// nginx's `worker_processes`: `auto` (one per core) or a number.
        public var nginxWorkers = "auto"
        public var directory = "/tmp/faultline-bench-http"
        public init() {}
    }

    struct Measurement {
        let requestsPerSecond: Double
        let p99Milliseconds: Double
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run(progress: @Sendable (String) -> Void) async throws -> String {
        for tool in [options.wrk, options.nginx] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ToolError("\(tool) is missing: apt-get install wrk nginx")
        }
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        let postgres = LocalPostgresCluster(directory: options.directory + "/postgres", fast: true)
        try await offloaded("bench-postgres") {
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: options.directory + "/postgres")
            try postgres.start()
            try postgres.createDatabase("bench", logger: logger)
        }
        defer { try? postgres.stop() }
        let token = "bench-" + UUID().uuidString
        var configuration = FaultlineConfiguration()
        configuration.databaseURL = postgres.url(database: "bench")
        configuration.migrationsDirectory = try ResourceLocator.migrations(configured: nil)
        configuration.adminToken = token
        try await Faultline.migrate(configuration, logger: logger)
        progress("writing 50 insights")
        let url = configuration.databaseURL
        try await offloaded("bench-seed") {
            let connection = try PostgresConnection.connect(.init(url: url), logger: logger)
            try Self.seed(on: connection)
        }

        let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
        let api = Faultline.makeAPI(configuration, pool: pool, producer: nil, readiness: { true }, logger: logger)
        var http = configuration.http
        http.host = "127.0.0.1"
        http.port = 0
        let service = HTTPService(configuration: http, api: api, servesAPI: true, lifecycle: Lifecycle(), logger: logger)
        let serving = Task { try await service.server.run() }
        defer { service.server.beginShutdown() }
        let port = try await service.server.waitUntilStarted()
        // The bytes nginx serves are the very response Faultline gives.
        let response = await api.handle(APIRequest(
            method: "GET", target: "/v1/insights", headers: ["authorization": "Bearer \(token)"], remoteAddress: "127.0.0.1"))
        guard response.status == 200 else { throw ToolError("GET /v1/insights answered \(response.status)") }

        let arguments = ["-t\(options.threads)", "-c\(options.connections)", "-d\(options.duration)s", "--latency",
                         "-H", "Authorization: Bearer \(token)"]
        progress("wrk against faultline for \(options.duration) s")
        let ours = try await wrk(arguments + ["http://127.0.0.1:\(port)/v1/insights"])
        service.server.beginShutdown()
        try await serving.value
        await pool.close()
        progress("wrk against nginx for \(options.duration) s")
        let nginx = try await withNginx(serving: response.body) { port in
            try await wrk(arguments + ["http://127.0.0.1:\(port)/v1/insights"])
        }
        return jsonLine([
            "faultline_rps": ours.requestsPerSecond, "nginx_rps": nginx.requestsPerSecond,
            "ratio": ours.requestsPerSecond / nginx.requestsPerSecond, "p99_ms": ours.p99Milliseconds,
            "nginx_p99_ms": nginx.p99Milliseconds, "body_bytes": response.body.count,
            "nginx_worker_processes": options.nginxWorkers, "connections": options.connections,
            "duration_s": options.duration, "load_average_before": load,
        ])
    }

    /// Fifty insights with their recommended actions, as the analysis writes them.
    static func seed(on connection: PostgresConnection) throws {
        let now = Date()
        for index in 0..<50 {
            let service = ["checkout", "payments", "orders", "search", "inventory"][index % 5]
            let insight = Insight(
                dedupeKey: "bench:\(index)", kind: index % 3 == 0 ? .spike : .newGroup, severity: index % 4 == 0 ? .critical : .warning,
                service: service, environment: "production", fingerprint: String(format: "%016x", index * 7919),
                version: "1.8.\(index % 9)", previousVersion: "1.8.\(max(0, index % 9 - 1))",
                title: "Spike in \(service) errors: \(100 + index)/min vs 6 expected",
                summary: "\(100 + index) errors in the minute against 6 expected. It began 2 min after \(service) 1.8.\(index % 9) was deployed.",
                observed: Double(100 + index), expected: 6, eventCount: 100 + index,
                startedAt: now.addingTimeInterval(-Double(index) * 60),
                recommendations: [Recommendation(
                    ruleID: "rollback-after-deploy", action: "rollback",
                    title: "Roll back \(service) from 1.8.\(index % 9) to 1.8.\(max(0, index % 9 - 1))", confidence: 0.9,
                    evidence: ["spike began 2 min after the deployment", "\(100 + index) errors in 1 min vs 6 expected"])])
            try AnalysisStore.upsertInsight(insight, on: connection)
        }
    }

    /// Runs nginx in the foreground with a configuration of its own around `body`.
    func withNginx<T>(serving bytes: [UInt8], _ body: (Int) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("http-bench-nginx-\(getpid())")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("root/v1"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(bytes).write(to: directory.appendingPathComponent("root/v1/insights"))
        let port = try Loopback.freePort()
        let path = directory.path
        let configuration = """
            worker_processes \(options.nginxWorkers);
            daemon off;
            master_process on;
            pid \(path)/nginx.pid;
            error_log \(path)/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                keepalive_requests 10000000;
                client_body_temp_path \(path)/body;
                proxy_temp_path \(path)/proxy;
                fastcgi_temp_path \(path)/fastcgi;
                uwsgi_temp_path \(path)/uwsgi;
                scgi_temp_path \(path)/scgi;
                server {
                    listen 127.0.0.1:\(port);
                    root \(path)/root;
                    location = /v1/insights { default_type application/json; }
                }
            }
            """
        try configuration.write(toFile: "\(path)/nginx.conf", atomically: true, encoding: .utf8)
        // World-readable, since nginx's worker drops root privileges.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)

        let nginx = Process()
        nginx.executableURL = URL(fileURLWithPath: options.nginx)
        nginx.arguments = ["-c", "\(path)/nginx.conf", "-e", "\(path)/error.log"]
        nginx.standardOutput = FileHandle.nullDevice
        nginx.standardError = FileHandle.nullDevice
        try nginx.run()
        defer {
            nginx.terminate()
            nginx.waitUntilExit()
        }
        for _ in 0..<500 where !canConnect(port) {
            try await Task.sleep(for: .milliseconds(10))
        }
        guard canConnect(port) else { throw ToolError("nginx did not start; see its error log") }
        return try await body(port)
    }

    /// Runs wrk and reads requests per second and the 99th percentile latency from its output.
    func wrk(_ arguments: [String]) async throws -> Measurement {
        let output = try await runCapturing(options.wrk, arguments)
        logger.info("wrk \(arguments.joined(separator: " "))\n\(output)")
        var rps: Double?
        var p99: Double?
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.first == "Requests/sec:", fields.count == 2 { rps = Double(fields[1]) }
            if fields.first == "99%", fields.count == 2 { p99 = Self.milliseconds(String(fields[1])) }
        }
        guard let rps, let p99 else { throw ToolError("cannot read wrk output:\n\(output)") }
        return Measurement(requestsPerSecond: rps, p99Milliseconds: p99)
    }

    /// `"850.00us"`, `"1.23ms"`, `"2.00s"` → milliseconds.
    static func milliseconds(_ text: String) -> Double? {
        for (unit, factor) in [("us", 0.001), ("ms", 1.0), ("m", 60_000.0), ("s", 1000.0)] where text.hasSuffix(unit) {
            return Double(text.dropLast(unit.count)).map { $0 * factor }
        }
        return nil
    }

    func runCapturing(_ executable: String, _ arguments: [String]) async throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("http-bench-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: file)
        process.standardError = process.standardOutput
        // Waiting through the termination handler keeps the task pool's threads free for handlers.
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        let output = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        guard status == 0 else { throw ToolError("\(executable) exited with \(status):\n\(output)") }
        return output
    }

    func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
