import App
import Foundation
import Kafka
import Logging
import Posix
import Postgres
import Storage

/// `faultline bench isolation`: how much a flood of API requests slows ingest. `faultline
/// serve --role ingest,api` ingests the same events four times, each into a fresh database
/// with a fresh consumer group: with no API load, while wrk sends `/healthz` from 64
/// connections, while it sends `/v1/insights` with made-up keys, and while it sends the list
/// endpoints with a valid key. A probe asks `/healthz` every 100 ms on a connection of its own
/// throughout. Ingest time runs from the first event stored to the last.
public enum IsolationBenchmark {
    public struct Options: Sendable {
        public var events = 200_000
        public var connections = 64
        public var directory = "/tmp/faultline-isolation"
        public var binary: String
        public var wrk = "/usr/bin/wrk"

        public init(binary: String) { self.binary = binary }
    }

    public struct Scenario: Sendable {
        public var name: String
        public var seconds = 0.0
        public var loadRequestsPerSecond = 0.0
        public var healthzP99ms = 0.0
        public var healthzMaxms = 0.0
        public var healthzFailures = 0
    }

    public struct Result: Sendable {
        public var events: Int
        public var connections: Int
        public var scenarios: [Scenario] = []

        func seconds(_ name: String) -> Double { scenarios.first { $0.name == name }?.seconds ?? .nan }

        public var json: String {
            func round(_ value: Double) -> String { value.isFinite ? String(format: "%.3f", value) : "null" }
            let fields = scenarios.map { s in
                let key = s.name.replacingOccurrences(of: "-", with: "_")
                return #""\#(key)_seconds":\#(round(s.seconds)),"\#(key)_load_rps":\#(Int(s.loadRequestsPerSecond)),"\#(key)_healthz_p99_ms":\#(round(s.healthzP99ms)),"\#(key)_healthz_max_ms":\#(round(s.healthzMaxms)),"\#(key)_healthz_failures":\#(s.healthzFailures)"#
            }
            let healthz = seconds("healthz")
            return #"{"benchmark":"isolation","events":\#(events),"connections":\#(connections),\#(fields.joined(separator: ",")),"random_keys_ratio":\#(round(seconds("random-keys") / healthz)),"valid_keys_ratio":\#(round(seconds("valid-keys") / healthz)),"healthz_ratio":\#(round(healthz / seconds("none"))),"cores":\#(ProcessInfo.processInfo.activeProcessorCount)}"#
        }
    }

    static let scenarios = ["none", "healthz", "random-keys", "valid-keys"]

    public static func run(_ options: Options, logger: Logger, progress: @escaping @Sendable (String) -> Void) async throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: options.wrk) else { throw ToolError("\(options.wrk) is missing: apt-get install wrk") }
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        let postgres = LocalPostgresCluster(directory: options.directory + "/postgres", fast: false)
        try await offloaded("isolation-postgres") {
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: options.directory + "/postgres")
            try postgres.start()
            for name in scenarios { try postgres.createDatabase(database(name), logger: logger) }
        }
        defer { try? postgres.stop() }
        let kafka = try KafkaMockCluster(brokers: 1, logger: logger)
        // Many partitions keep each under the mock broker's 5 MiB per-partition retention.
        try kafka.createTopic("errors", partitions: 32)
        try kafka.createTopic("deployments", partitions: 1)
        try kafka.createTopic("errors.dlq", partitions: 1)

        var configuration = FaultlineConfiguration()
        configuration.migrationsDirectory = try ResourceLocator.migrations(configured: nil)
        configuration.kafkaBrokers = kafka.bootstrapServers
        progress("producing \(options.events) events")
        var producerConfiguration = configuration.kafka
        producerConfiguration.properties["compression.type"] = "zstd"
        producerConfiguration.properties["linger.ms"] = "20"
        producerConfiguration.properties["queue.buffering.max.messages"] = "1000000"
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        var generator = TrafficGenerator(seed: 7)
        let base = Date().addingTimeInterval(-3600)
        for n in 0..<options.events {
            try await producer.enqueue(KafkaOutgoingMessage(
                topic: "errors", partition: Int32(n % 32),
                value: Array(generator.backgroundEvent(at: base.addingTimeInterval(Double(n % 3600)), sequence: n).utf8)))
        }
        try await producer.flush(timeout: .seconds(600))

        var result = Result(events: options.events, connections: options.connections)
        for name in scenarios {
            var scenario = configuration
            scenario.databaseURL = postgres.url(database: database(name))
            try await Faultline.migrate(scenario, logger: logger)
            let postgresConfiguration = scenario.postgres
            let key = try await offloaded("isolation-key") { () -> String in
                let connection = try PostgresConnection.connect(postgresConfiguration, logger: logger)
                return try APIKeyStore.create(name: "bench", scopes: ["read"], servicePrefix: nil, on: connection).key
            }
            progress("\(name): ingesting with \(name == "none" ? "no API load" : "\(options.connections) connections of \(name)")")
            result.scenarios.append(try await measure(name, options: options, databaseURL: scenario.databaseURL,
                                                      brokers: kafka.bootstrapServers, key: key, logger: logger, progress: progress))
        }
        return result
    }

    static func database(_ scenario: String) -> String { "isolation_" + scenario.replacingOccurrences(of: "-", with: "_") }

    static func measure(_ name: String, options: Options, databaseURL: String, brokers: String, key: String, logger: Logger,
                        progress: @escaping @Sendable (String) -> Void) async throws -> Scenario {
        var scenario = Scenario(name: name)
        let port = try Loopback.freePort()
        let log = options.directory + "/serve-\(name).log"
        let environment: [String: String] = [
            "FAULTLINE_DATABASE_URL": databaseURL, "FAULTLINE_KAFKA_BROKERS": brokers, "FAULTLINE_KAFKA_GROUP": "isolation-\(name)",
            "FAULTLINE_ROLES": "ingest,api", "FAULTLINE_HTTP_HOST": "127.0.0.1", "FAULTLINE_HTTP_PORT": "\(port)",
            "FAULTLINE_LOG_LEVEL": "warning", "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ]
        let server = Supervisor(binary: options.binary, environment: environment, log: log)
        try server.start()
        defer { server.stop() }
        guard try await SoakBenchmark.waitUntilListening(port, timeout: .seconds(60)) else {
            throw ToolError("faultline serve did not listen on \(port); see \(log)")
        }

        // The load starts before ingest has stored anything, and lasts until it is done.
        var wrk: Process?
        if name != "none" {
            let script = options.directory + "/\(name).lua"
            try Self.script(name, key: key).write(toFile: script, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: options.wrk)
            process.arguments = ["-t", "2", "-c", "\(options.connections)", "-d", "3600s", "-s", script, "http://127.0.0.1:\(port)/"]
            let output = options.directory + "/wrk-\(name).log"
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            process.standardError = process.standardOutput
            try process.run()
            wrk = process
        }
        let probe = APILoad(port: port, key: "", clients: 1, paths: ["/healthz"], pause: .milliseconds(100))
        probe.start()
        defer {
            probe.stop()
            // SIGKILL: wrk started from here has SIGTERM blocked (a child inherits the signal
            // mask of the thread that spawned it), and one left running loads the next scenario.
            if let wrk, wrk.isRunning {
                kill(wrk.processIdentifier, SIGKILL)
                wrk.waitUntilExit()
            }
        }

        let requestsBefore = try await servedRequests(port)
        let events = options.events
        scenario.seconds = try await offloaded("isolation-count") { () -> Double in
            let connection = try PostgresConnection.connect(.init(url: databaseURL), logger: logger)
            var firstStored: ContinuousClock.Instant?
            let started = ContinuousClock.now
            var lastReport = ContinuousClock.now
            while true {
                let stored = try connection.query("SELECT count(*) FROM events").first?.int(0) ?? 0
                let now = ContinuousClock.now
                if stored > 0, firstStored == nil { firstStored = now }
                if stored >= events { return (now - (firstStored ?? now)).seconds }
                if now - lastReport > .seconds(5) {
                    progress("\(name): \(stored) stored")
                    lastReport = now
                }
                if now - started > .seconds(1800) { throw ToolError("\(name): ingest did not finish in 30 minutes; see \(log)") }
                usleep(100_000)
            }
        }
        let requestsAfter = try await servedRequests(port)
        scenario.loadRequestsPerSecond = Double(requestsAfter - requestsBefore) / max(scenario.seconds, 0.001)
        let latencies = probe.latencies.sorted()
        scenario.healthzFailures = probe.errors
        if !latencies.isEmpty {
            scenario.healthzP99ms = latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))] * 1000
            scenario.healthzMaxms = latencies.last! * 1000
        }
        progress("\(name): \(options.events) events in \(String(format: "%.2f", scenario.seconds)) s, /healthz p99 \(String(format: "%.1f", scenario.healthzP99ms)) ms, max \(String(format: "%.1f", scenario.healthzMaxms)) ms")
        return scenario
    }

    /// The requests the server answered since it started (`faultline_http_requests_total`).
    static func servedRequests(_ port: Int) async throws -> Int {
        let text = try await offloaded("isolation-metrics") { () -> String in
            let probe = APILoad(port: port, key: "", clients: 0)
            return probe.get("/metrics") ?? ""
        }
        return text.split(separator: "\n").filter { $0.hasPrefix("faultline_http_requests_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) }
    }

    /// A wrk script per load. Every request is made before the run (in `init`) and `request`
    /// only hands the next one out, so wrk spends the same on each load. The made-up keys look
    /// like real ones (`flt_` and 43 base64url characters), so each is hashed and looked up.
    static func script(_ name: String, key: String) -> String {
        let requests: String
        switch name {
        case "healthz":
            requests = """
                  requests[1] = wrk.format("GET", "/healthz")
                """
        case "random-keys":
            requests = """
                  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                  for i = 1, 4096 do
                    local chars = {}
                    for c = 1, 43 do
                      local k = math.random(1, 64)
                      chars[c] = alphabet:sub(k, k)
                    end
                    requests[i] = wrk.format("GET", "/v1/insights", { ["Authorization"] = "Bearer flt_" .. table.concat(chars) })
                  end
                """
        default:
            requests = """
                  for i, path in ipairs({ "/v1/insights", "/v1/groups?limit=50", "/v1/services", "/v1/spikes" }) do
                    requests[i] = wrk.format("GET", path, { ["Authorization"] = "Bearer \(key)" })
                  end
                """
        }
        return """
            local requests = {}
            local n = 0
            init = function(args)
              math.randomseed(7)
            \(requests)
            end
            request = function()
              n = n + 1
              return requests[n % #requests + 1]
            end
            """
    }
}
