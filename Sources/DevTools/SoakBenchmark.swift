import App
import Domain
import Foundation
import Kafka
import Logging
import Posix
import Postgres
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `faultline bench soak`: `faultline serve` (every role, a child process restarted if it
/// dies) for some minutes at a steady rate, with 1 % hostile messages mixed in (the fuzz
/// corpora's refused inputs and crafted shapes: huge numbers, many keys, pathological
/// templates), the API under load from keep-alive clients, and a webhook receiver that
/// flaps between answering, failing and dropping connections. At the end every produced
/// message is accounted for: stored (one or more events) or dead-lettered.
public enum SoakBenchmark {
    public struct Options: Sendable {
        public var minutes: Double = 10
        /// Messages per second (each valid one holds one event).
        public var rate = 200
        public var hostileFraction = 0.01
        public var apiClients = 4
        public var directory = "/tmp/faultline-soak"
        /// Extra inputs: every file under these folders that the decoder refuses is a hostile message.
        public var corpora: [String] = []
        public var binary: String

        public init(binary: String) { self.binary = binary }
    }

    public struct Result: Sendable {
        public var minutes: Double
        public var produced = 0
        public var hostile = 0
        public var stored = 0
        public var deadLettered = 0
        public var rssFirstMiB = 0.0
        public var rssLastMiB = 0.0
        public var restarts = 0
        public var apiRequests = 0
        public var apiErrors = 0
        public var apiP99ms = 0.0
        public var webhookRequests = 0

        public var json: String {
            func round(_ value: Double) -> String { String(format: "%.1f", value) }
            return #"{"benchmark":"soak","minutes":\#(round(minutes)),"produced":\#(produced),"hostile":\#(hostile),"stored":\#(stored),"dead_lettered":\#(deadLettered),"accounted":\#(produced == stored + deadLettered),"rss_first_mib":\#(round(rssFirstMiB)),"rss_last_mib":\#(round(rssLastMiB)),"restarts":\#(restarts),"api_requests":\#(apiRequests),"api_errors":\#(apiErrors),"api_p99_ms":\#(round(apiP99ms)),"webhook_requests":\#(webhookRequests)}"#
        }
    }

    public static func run(_ options: Options, logger: Logger, progress: @escaping @Sendable (String) -> Void) async throws -> Result {
        var result = Result(minutes: options.minutes)
        let hostile = hostileMessages(corpora: options.corpora)
        progress("\(hostile.count) hostile messages, each refused by the decoder")

        let postgres = LocalPostgresCluster(directory: options.directory + "/postgres")
        try await offloaded("soak-postgres") {
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: options.directory + "/postgres")
            try postgres.start()
            try postgres.createDatabase("soak", logger: logger)
        }
        defer { try? postgres.stop() }
        let kafka = try KafkaMockCluster(brokers: 1, logger: logger)
        for (topic, partitions) in [("errors", 4), ("deployments", 1), ("errors.dlq", 1)] {
            try kafka.createTopic(topic, partitions: partitions)
        }
        var configuration = FaultlineConfiguration()
        configuration.databaseURL = postgres.url(database: "soak")
        configuration.migrationsDirectory = try ResourceLocator.migrations(configured: nil)
        configuration.kafkaBrokers = kafka.bootstrapServers
        try await Faultline.migrate(configuration, logger: logger)

        let receiver = try BenchReceiver()
        defer { receiver.stop() }
        let postgresConfiguration = configuration.postgres
        let key = try await offloaded("soak-setup") { () -> String in
            let connection = try PostgresConnection.connect(postgresConfiguration, logger: logger)
            _ = try WebhookStore.create(WebhookInput(
                url: "http://127.0.0.1:\(receiver.port)/hook", secret: "soak-secret", format: "generic",
                filtersJSON: #"{"cooldown": 0, "throttle": 0, "digest_window": 0}"#, enabled: true), on: connection)
            return try APIKeyStore.create(name: "soak", scopes: ["read"], servicePrefix: nil, on: connection).key
        }

        let port = try Loopback.freePort()
        let log = options.directory + "/serve.log"
        let environment: [String: String] = [
            "FAULTLINE_DATABASE_URL": configuration.databaseURL, "FAULTLINE_KAFKA_BROKERS": kafka.bootstrapServers,
            "FAULTLINE_HTTP_HOST": "127.0.0.1", "FAULTLINE_HTTP_PORT": "\(port)",
            "FAULTLINE_MIGRATIONS_DIR": configuration.migrationsDirectory ?? "migrations",
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000", "FAULTLINE_ANALYSIS_INTERVAL": "10s",
            "FAULTLINE_WEBHOOK_ALLOW_PRIVATE": "true", "FAULTLINE_WEBHOOK_TIMEOUT": "2s", "FAULTLINE_LOG_LEVEL": "notice",
        ]
        let supervisor = Supervisor(binary: options.binary, environment: environment, log: log)
        try supervisor.start()
        defer { supervisor.stop() }
        guard try await waitUntilListening(port, timeout: .seconds(60)) else {
            throw ToolError("faultline serve did not listen on \(port); see \(log)")
        }

        progress("running \(options.minutes) min at \(options.rate) messages/s, \(Int(options.hostileFraction * 100)) % hostile")
        var producerConfiguration = configuration.kafka
        producerConfiguration.properties["linger.ms"] = "20"
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let load = APILoad(port: port, key: key, clients: options.apiClients)
        load.start()
        defer { load.stop() }

        // checkout 1.9.0 rolls out as the soak starts; every minute it shows an error never
        // seen before, so the analysis raises insights and the flapping receiver is sent alerts.
        let rollout = #"{"service":"checkout","environment":"production","version":"1.9.0","commit":"soak","started_at":"\#(RFC3339.format(Date()))"}"#
        _ = try await producer.send(KafkaOutgoingMessage(topic: "deployments", value: Array(rollout.utf8)))
        var generator = TrafficGenerator(seed: 17)
        var random = SplitMix64(seed: 23)
        let started = ContinuousClock.now
        let duration = Duration.seconds(options.minutes * 60)
        var second = 0
        var lastStatus = ContinuousClock.now
        while ContinuousClock.now - started < duration {
            // The receiver flaps every 20 s: answers, fails with 503, drops connections.
            receiver.mode = [.answering, .failing, .dropping][(second / 20) % 3]
            for n in 0..<options.rate {
                let sequence = second * options.rate + n
                let value: [UInt8]
                if !hostile.isEmpty && Double(random.next() % 1_000_000) / 1_000_000 < options.hostileFraction {
                    value = hostile[Int(random.next() % UInt64(hostile.count))]
                    result.hostile += 1
                } else if second % 60 == 30 && n < 20 {
                    let id = StableHash.uuid("soak/new/\(second)/\(n)").uuidString
                    value = Array(#"{"event_id":"\#(id)","timestamp":"\#(RFC3339.format(Date()))","service":"checkout","version":"1.9.0","error_type":"SoakError\#(second / 60)","message":"step \#(second / 60) broke for cart \#(n)"}"#.utf8)
                } else {
                    value = Array(generator.backgroundEvent(at: Date(), sequence: sequence, checkoutVersion: "1.9.0").utf8)
                }
                try await producer.enqueue(KafkaOutgoingMessage(topic: "errors", partition: Int32(sequence % 4), value: value))
                result.produced += 1
            }
            second += 1
            if second == 30 { result.rssFirstMiB = supervisor.residentMiB() ?? 0 }
            if ContinuousClock.now - lastStatus >= .seconds(30) {
                progress("\(second) s: produced \(result.produced), restarts \(supervisor.restarts), rss \(supervisor.residentMiB() ?? 0) MiB")
                lastStatus = .now
            }
            let next = started + .seconds(second)
            if next > .now { try await Task.sleep(until: next, clock: .continuous) }
        }
        try await producer.flush(timeout: .seconds(60))
        result.rssLastMiB = supervisor.residentMiB() ?? 0
        load.stop()
        receiver.mode = .answering

        // Every message stored or dead-lettered; wait for ingest to drain.
        progress("waiting for every message to be stored or dead-lettered")
        let produced = result.produced
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            let (stored, dead) = try await offloaded("soak-count") { () -> (Int, Int) in
                let connection = try PostgresConnection.connect(postgresConfiguration, logger: logger)
                let stored = try connection.query("SELECT count(*) FROM (SELECT DISTINCT source_partition, source_offset FROM events) m").first?.int(0) ?? 0
                let dead = try connection.query("SELECT count(*) FROM dead_letters").first?.int(0) ?? 0
                return (stored, dead)
            }
            result.stored = stored
            result.deadLettered = dead
            if stored + dead >= produced || ContinuousClock.now > deadline { break }
            try await Task.sleep(for: .seconds(1))
        }
        result.restarts = supervisor.restarts
        let latencies = load.latencies.sorted()
        result.apiRequests = latencies.count
        result.apiErrors = load.errors
        result.apiP99ms = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))] * 1000
        result.webhookRequests = receiver.requestCount
        return result
    }

    /// Messages the decoder refuses: the crafted shapes below, and every corpus file that is
    /// refused (a corpus file the decoder accepts is left out, so that the count of stored
    /// and dead-lettered messages adds up exactly).
    static func hostileMessages(corpora: [String]) -> [[UInt8]] {
        let time = RFC3339.format(Date())
        var crafted: [String] = [
            #"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":1e30,"severityNumber":17,"body":{"stringValue":"b"}}]}]}]}"#,
            #"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":-1e30,"severityNumber":17,"body":{"stringValue":"b"}}]}]}]}"#,
            #"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}}]},"scopeLogs":[{"logRecords":[{"observedTimeUnixNano":1e400,"severityNumber":17,"body":{"stringValue":"b"}}]}]}]}"#,
            #"{"timestamp":"\#(time)","service":"a","message":"m","http_status":1e400}"#,
            #"{"timestamp":"0000-01-01T00:00:00Z","service":"a","message":"m"}"#,
            #"{"timestamp":"\#(time)","service":"\#(String(repeating: "s", count: 300))","message":"m"}"#,
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
            #"{"@t":"\#(time)","@l":"Error","@mt":"\#(String(repeating: "{P}", count: 5_000))","P":"\#(String(repeating: "x", count: 50_000))"}"#,
            "not json at all",
        ]
        var keys = #"{"timestamp":"\#(time)","message":"m""#
        for n in 0..<60_000 { keys += ",\"k\(n)\":\(n)" }
        crafted.append(keys + "}")  // no service: refused, after reading 60,000 keys
        var messages = crafted.map { Array($0.utf8) }
        messages.append(Array(repeating: 0xFF, count: 64))
        let decoder = EventDecoder()
        let origin = MessageOrigin(topic: "errors", partition: 0, offset: 0)
        for corpus in corpora {
            guard let files = FileManager.default.enumerator(atPath: corpus) else { continue }
            for case let file as String in files {
                guard let data = FileManager.default.contents(atPath: corpus + "/" + file), !data.isEmpty, data.count < 1 << 20 else { continue }
                messages.append([UInt8](data))
            }
        }
        return messages.filter { (try? decoder.decode($0, origin: origin)) == nil }
    }

    static func waitUntilListening(_ port: Int, timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if Loopback.isListening(port: port) { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}

/// Runs `faultline serve` and starts it again whenever it ends on its own.
final class Supervisor: @unchecked Sendable {
    // Unchecked: `process` and `stopping` are guarded by `lock`.
    private let lock = NSLock()
    private var process: Process?
    private var stopping = false
    private var restartCount = 0
    private let binary: String
    private let environment: [String: String]
    private let log: String

    init(binary: String, environment: [String: String], log: String) {
        self.binary = binary
        self.environment = environment
        self.log = log
    }

    var restarts: Int { lock.withLock { restartCount } }

    func start() throws {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = handle
        process.standardError = handle
        process.terminationHandler = { [weak self] _ in
            guard let self else { return }
            let again = self.lock.withLock { () -> Bool in
                guard !self.stopping else { return false }
                self.restartCount += 1
                return true
            }
            if again { try? self.start() }
        }
        try process.run()
        lock.withLock { self.process = process }
    }

    func stop() {
        let process = lock.withLock { () -> Process? in
            stopping = true
            return self.process
        }
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// The resident memory of the running process, in MiB.
    func residentMiB() -> Double? {
        guard let pid = lock.withLock({ process?.processIdentifier }),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return nil }
        return kib / 1024
    }
}

/// Keep-alive clients that GET the API's list endpoints one request after another, each on a
/// thread of its own, recording every latency.
final class APILoad: @unchecked Sendable {
    // Unchecked: the counters are behind `state`; the threads only read `port` and `key`.
    private let port: Int
    private let key: String
    private let clients: Int
    private let paths: [String]
    private let pause: Duration
    private let state = Mutex<(latencies: [Double], errors: Int, running: Bool)>(([], 0, false))

    /// - Parameters:
    ///   - paths: requested in turn by each client.
    ///   - pause: how long a client waits after each answer (none: one request after another).
    init(port: Int, key: String, clients: Int,
         paths: [String] = ["/v1/insights", "/v1/groups?limit=50", "/v1/services", "/v1/spikes", "/healthz"],
         pause: Duration = .zero) {
        self.port = port
        self.key = key
        self.clients = clients
        self.paths = paths
        self.pause = pause
    }

    var latencies: [Double] { state.withLock { $0.latencies } }
    var errors: Int { state.withLock { $0.errors } }

    func start() {
        state.withLock { $0.running = true }
        let pauseMicroseconds = useconds_t(pause.seconds * 1_000_000)
        for client in 0..<clients {
            let thread = Thread { [self] in
                var n = client
                var socket: Int32 = -1
                while state.withLock({ $0.running }) {
                    if socket < 0 { socket = connectLoopback(port) }
                    if socket < 0 {
                        state.withLock { $0.errors += 1 }
                        usleep(100_000)
                        continue
                    }
                    let path = paths[n % paths.count]
                    n += 1
                    let started = ContinuousClock.now
                    if exchange(socket, path: path) {
                        let elapsed = (ContinuousClock.now - started).seconds
                        state.withLock { $0.latencies.append(elapsed) }
                    } else {
                        close(socket)
                        socket = -1
                        state.withLock { $0.errors += 1 }
                    }
                    if pauseMicroseconds > 0 { usleep(pauseMicroseconds) }
                }
                if socket >= 0 { close(socket) }
            }
            thread.start()
        }
    }

    func stop() { state.withLock { $0.running = false } }

    /// One request and its whole answer (headers and Content-Length body); false when the
    /// connection failed or the status was not 2xx.
    private func exchange(_ socket: Int32, path: String) -> Bool {
        exchangeBody(socket, path: path) != nil
    }

    /// The body of a 2xx answer to one request, on a connection of its own.
    func get(_ path: String) -> String? {
        let socket = connectLoopback(port)
        guard socket >= 0 else { return nil }
        defer { close(socket) }
        return exchangeBody(socket, path: path).map { String(decoding: $0, as: UTF8.self) }
    }

    private func exchangeBody(_ socket: Int32, path: String) -> ArraySlice<UInt8>? {
        let authorization = key.isEmpty ? "" : "Authorization: Bearer \(key)\r\n"
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(authorization)\r\n".utf8)
        guard request.withUnsafeBytes({ write(socket, $0.baseAddress, $0.count) }) == request.count else { return nil }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = firstIndex(of: [13, 10, 13, 10], in: buffer) {
                let head = String(decoding: buffer[..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if buffer.count >= end + 4 + length {
                    return head.hasPrefix("http/1.1 2") ? buffer[(end + 4)..<(end + 4 + length)] : nil
                }
            }
            let count = chunk.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
            if count <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    private func connectLoopback(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 {
            close(fd)
            return -1
        }
        return fd
    }

}
