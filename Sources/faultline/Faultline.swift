import App
import ArgumentParser
import Foundation
import Kafka
import Logging
import Postgres
import ServiceLifecycle
import UnixSignals

@main
struct FaultlineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faultline",
        abstract: "Error analysis for microservices: Kafka in, insights and alerts out.",
        discussion: "Settings come from FAULTLINE_* environment variables (see docs/configuration.md); flags override them.",
        version: "0.1.0",
        subcommands: [Serve.self, Migrate.self, Demo.self, Produce.self, Simulate.self, Analyze.self, Eval.self, Bench.self, DevKafka.self,
                      DevPostgres.self, Config.self, Keys.self])
}

/// Flags that override the environment.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: "PostgreSQL URL (FAULTLINE_DATABASE_URL).") var databaseURL: String?
    @Option(help: "Kafka bootstrap servers (FAULTLINE_KAFKA_BROKERS).") var kafkaBrokers: String?
    @Option(help: "Topic of error events (FAULTLINE_KAFKA_TOPIC).") var kafkaTopic: String?
    @Option(help: "Kafka consumer group (FAULTLINE_KAFKA_GROUP).") var kafkaGroup: String?
    @Option(help: "HTTP port (FAULTLINE_HTTP_PORT).") var httpPort: String?
    @Option(help: "Log level (FAULTLINE_LOG_LEVEL).") var logLevel: String?
    @Option(help: "Log format, json or text (FAULTLINE_LOG_FORMAT).") var logFormat: String?

    /// The environment with the flags laid over it, validated; a bad value ends the process
    /// with a message naming the variable or flag.
    func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FaultlineConfiguration {
        var environment = environment
        let overrides: [(String, String?)] = [
            ("FAULTLINE_DATABASE_URL", databaseURL), ("FAULTLINE_KAFKA_BROKERS", kafkaBrokers),
            ("FAULTLINE_KAFKA_TOPIC", kafkaTopic), ("FAULTLINE_KAFKA_GROUP", kafkaGroup),
            ("FAULTLINE_HTTP_PORT", httpPort), ("FAULTLINE_LOG_LEVEL", logLevel), ("FAULTLINE_LOG_FORMAT", logFormat),
        ]
        for case let (name, value?) in overrides { environment[name] = value }
        return try loadConfiguration(environment: environment)
    }
}

/// Reads and validates the configuration, then sets up logging as it says.
func loadConfiguration(environment: [String: String]) throws -> FaultlineConfiguration {
        var warnings: [String] = []
        do {
            let configuration = try FaultlineConfiguration.fromEnvironment(environment) { warnings.append($0) }
            Logging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
            let logger = Logger(label: "faultline")
            for warning in warnings { logger.warning("\(warning)") }
            return configuration
        } catch {
            throw ValidationError("configuration: \(error)")
        }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service until SIGTERM.")
    @OptionGroup var options: ConfigurationOptions
    @Flag(help: "Do not apply database migrations at start (FAULTLINE_MIGRATE=false).") var noMigrate = false
    @Option(help: "Roles to run, comma-separated: ingest, api, analyze (FAULTLINE_ROLES; default all).") var role: String?

    func run() async throws {
        var configuration = try options.load()
        if let role {
            do { configuration.roles = try FaultlineConfiguration.Role.parse("--role", role) } catch {
                throw ValidationError("\(error)")
            }
        }
        if noMigrate { configuration.migrateOnStart = false }
        FaultlineMetrics.bootstrap()
        try await Faultline.serve(configuration, logger: Logger(label: "faultline"))
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the database migrations and exit.")
    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let configuration = try options.load()
        let report = try await Faultline.migrate(configuration, logger: Logger(label: "faultline"))
        print("applied \(report.applied.count) migration(s), \(report.alreadyApplied) already applied")
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start an embedded Kafka cluster and a private PostgreSQL, run the service on them, and simulate traffic the analysis finds.",
        discussion: """
            Back-fills hours of past-dated history, then in real time: checkout 1.8.3 rolls out a new error, \
            payments-db times out for three services, a memory leak grows; a local webhook receiver checks and logs the alerts. \
            The service's log goes to <directory>/faultline.log unless FAULTLINE_LOG_LEVEL is set. \
            The database of an earlier run is replaced. SIGINT or SIGTERM stops everything; the exit status is then 0.
            """)
    @Option(help: "Folder for the demo's database, service log and webhook log.") var directory = ".faultline/demo"
    @Option(help: "Kafka brokers in the embedded cluster.") var brokers = 3
    @Option(help: "Partitions of the errors topic.") var partitions = 6
    @Option(help: "Simulated background errors per second (0: no simulation).") var rate: Double = 20
    @Option(help: "Minutes of history back-filled before the scenarios (new errors and patterns need 60 of baseline).") var historyMinutes = 180
    @Option(help: "Seconds after the history is in until checkout 1.8.3 rolls out.") var deploymentAfter = 60
    @Option(help: "Seconds after the history is in until payments-db starts timing out.") var outageAfter = 120
    @Option(help: "Seconds the payments-db outage lasts.") var outageLength = 120
    @Option(help: "Seconds between status lines.") var statusEvery = 10

    func validate() throws {
        guard (1...16).contains(brokers) else { throw ValidationError("--brokers must be 1 to 16") }
        guard (1...1024).contains(partitions) else { throw ValidationError("--partitions must be 1 to 1024") }
        guard rate >= 0 && rate <= 10_000 else { throw ValidationError("--rate must be 0 to 10000") }
        guard (0...1440).contains(historyMinutes) else { throw ValidationError("--history-minutes must be 0 to 1440") }
        guard (0...86_400).contains(deploymentAfter), (0...86_400).contains(outageAfter), (1...86_400).contains(outageLength) else {
            throw ValidationError("--deployment-after and --outage-after must be 0 to 86400, --outage-length 1 to 86400")
        }
        guard (1...3600).contains(statusEvery) else { throw ValidationError("--status-every must be 1 to 3600") }
    }

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["FAULTLINE_LOG_FORMAT"] = environment["FAULTLINE_LOG_FORMAT"] ?? "text"
        // The demo's key is printed: the service answers on loopback only unless told otherwise.
        environment["FAULTLINE_HTTP_HOST"] = environment["FAULTLINE_HTTP_HOST"] ?? "127.0.0.1"
        var warnings: [String] = []
        let configuration: FaultlineConfiguration
        do {
            configuration = try FaultlineConfiguration.fromEnvironment(environment) { warnings.append($0) }
        } catch {
            throw ValidationError("configuration: \(error)")
        }
        var options = DemoRun.Options()
        options.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        // The terminal is for the demo's progress; the service's log goes to a file unless a
        // log level was asked for.
        if environment["FAULTLINE_LOG_LEVEL"] == nil {
            let file = options.directory + "/faultline.log"
            do {
                try Logging.bootstrap(format: configuration.logFormat, level: .info, file: file)
            } catch {
                throw ValidationError("\(error)")
            }
            options.logFile = file
        } else {
            Logging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        }
        let logger = Logger(label: "faultline")
        for warning in warnings { logger.warning("\(warning)") }
        options.brokers = brokers
        options.partitions = partitions
        options.rate = rate
        options.history = .seconds(historyMinutes * 60)
        options.deploymentAfter = .seconds(deploymentAfter)
        options.outageAfter = .seconds(outageAfter)
        options.outageLength = .seconds(outageLength)
        options.statusEvery = .seconds(statusEvery)
        FaultlineMetrics.bootstrap()
        try await DemoRun.run(configuration, options: options, logger: logger)
    }
}

struct DevKafka: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-kafka",
        abstract: "Serve an embedded Kafka cluster on 127.0.0.1 until stopped.",
        discussion: "Prints the bootstrap servers as the first line on stdout; any Kafka client can connect.")
    @Option(help: "Number of brokers.") var brokers = 3
    @Option(help: "Partitions per topic.") var partitions = 6
    @Option(help: "Topic to create (repeatable).") var topic: [String] = ["errors"]

    func validate() throws {
        guard (1...16).contains(brokers) else { throw ValidationError("--brokers must be 1 to 16") }
        guard (1...1024).contains(partitions) else { throw ValidationError("--partitions must be 1 to 1024") }
    }

    func run() async throws {
        Logging.bootstrap(format: .json, level: .warning)
        let cluster = try KafkaMockCluster(brokers: brokers, logger: Logger(label: "faultline.dev-kafka"))
        for name in topic {
            try cluster.createTopic(name, partitions: partitions, replicationFactor: min(3, brokers))
        }
        print(cluster.bootstrapServers)
        fflush(nil)  // all streams: the address must reach a pipe reader now
        for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { break }
    }
}

struct DevPostgres: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-postgres",
        abstract: "Manage a private PostgreSQL server in a folder (for development and tests).",
        discussion: "start prints the database URL; when run as root the server runs as the postgres user.")

    enum Action: String, ExpressibleByArgument, CaseIterable { case start, stop, restart, url }

    @Argument(help: "start, stop, restart or url.") var action: Action
    @Option(help: "The server's folder.") var directory = ".build/postgres"
    @Option(help: "Database to create on start.") var database = "faultline"
    @Flag(help: "Keep fsync on (for benchmarks).") var durable = false

    func run() async throws {
        Logging.bootstrap(format: .text, level: .warning)
        let cluster = LocalPostgresCluster(directory: directory, fast: !durable)
        switch action {
        case .start:
            try cluster.start()
            try cluster.createDatabase(database, logger: Logger(label: "faultline.dev-postgres"))
            print(cluster.url(database: database))
        case .stop: try cluster.stop()
        case .restart: try cluster.restart()
        case .url: print(cluster.url(database: database))
        }
    }
}

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the configuration reference (markdown), generated from the code.")

    func run() async throws {
        print(ConfigurationReference.markdown(), terminator: "")
    }
}

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a file to Kafka, one message per line (NDJSON), and wait until all are delivered.")
    @OptionGroup var options: ConfigurationOptions
    @Option(help: "The file to send ('-' for standard input).") var file: String
    @Option(help: "Topic (default: FAULTLINE_KAFKA_TOPIC).") var topic: String?
    @Option(help: "Compression: none, gzip, snappy, lz4 or zstd.") var compression = "zstd"
    @Option(help: "content-type header for every message.") var contentType: String?

    func run() async throws {
        var configuration = try options.load()
        configuration.kafkaProperties["compression.type"] = compression
        let logger = Logger(label: "faultline.produce")
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        let target = topic ?? configuration.kafkaTopic
        let handle: FileHandle
        if file == "-" {
            handle = .standardInput
        } else {
            guard let opened = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
            handle = opened
        }
        let failures = Counter()
        var sent = 0
        let headers = contentType.map { [KafkaHeader(name: "content-type", string: $0)] } ?? []
        var pending: [UInt8] = []
        var lines: [[UInt8]] = []
        var finished = false
        while !finished || !lines.isEmpty {
            if lines.isEmpty {
                let chunk = handle.readData(ofLength: 1 << 20)
                if chunk.isEmpty {
                    finished = true
                    if !pending.isEmpty { lines.append(pending); pending = [] }
                } else {
                    pending += chunk
                    var pieces = pending.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                    pending = Array(pieces.removeLast())  // an unfinished line waits for the next chunk
                    lines = pieces.map(Array.init)
                }
                lines.reverse()  // taken from the end below
                continue
            }
            let line = lines.removeLast()
            guard !line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) else { continue }
            let message = KafkaOutgoingMessage(topic: target, value: line, headers: headers)
            try await producer.enqueue(message) { if case .failure = $0 { failures.increment() } }
            sent += 1
        }
        try await producer.flush(timeout: .seconds(120))
        let failed = failures.value
        print("sent \(sent - failed) message(s) to \(target)\(failed > 0 ? ", \(failed) failed" : "")")
        if failed > 0 { throw ExitCode(1) }
    }
}

import Synchronization

final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce realistic error traffic: background errors with a daily shape, a bad deployment, a dependency outage.")
    @OptionGroup var options: ConfigurationOptions
    @Option(help: "Background errors per second.") var rate: Double = 20
    @Option(help: "Seconds until checkout 1.8.3 rolls out with a new error.") var deploymentAfter: Int = 60
    @Option(help: "Seconds until payments-db starts timing out.") var outageAfter: Int = 150
    @Option(help: "Seconds the outage lasts.") var outageLength: Int = 60
    @Option(help: "Stop after this many seconds (default: run until stopped).") var duration: Int?

    func validate() throws {
        guard rate > 0 && rate <= 100_000 else { throw ValidationError("--rate must be above 0 and at most 100000") }
    }

    func run() async throws {
        let configuration = try options.load()
        let logger = Logger(label: "faultline.simulate")
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        var scenario = Simulator.Scenario()
        scenario.rate = rate
        scenario.deploymentAt = .seconds(deploymentAfter)
        scenario.outageAt = .seconds(outageAfter)
        scenario.outageLength = .seconds(outageLength)
        scenario.duration = duration.map { .seconds($0) }
        let simulator = Simulator(producer: producer, topic: configuration.kafkaTopic, deploymentsTopic: configuration.kafkaDeploymentsTopic, logger: logger)
        let task = Task { try await simulator.run(scenario) }
        let signals = Task {
            for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { task.cancel(); break }
        }
        try await task.value
        signals.cancel()
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks; each prints a final JSON line.",
        subcommands: [BenchIngest.self, BenchTemplates.self, BenchKMeans.self, BenchAlertLatency.self, BenchHTTP.self])
}

/// Prints lines as they are, or a tool's error as one line on stderr with exit status 1.
func report(_ body: () throws -> [String]) throws {
    do {
        for line in try body() { print(line) }
    } catch let error as ToolError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

func report(_ body: () async throws -> [String]) async throws {
    do {
        for line in try await body() { print(line) }
    } catch let error as ToolError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct Analyze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one analysis on a file.", subcommands: [AnalyzeTemplates.self, AnalyzeSpikes.self])
}

struct AnalyzeTemplates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Mine message templates from a CSV column: writes each row's group id and template (<*> for variables), in input order.")
    @Option(help: "Input CSV with a header row.") var input: String
    @Option(help: "The column holding the messages.") var column = "Content"
    @Option(help: "Output CSV: [LineId,]group_id,template.") var output: String

    func run() async throws {
        try report { ["\(try TemplateTool.analyze(input: input, column: column, output: output)) rows written to \(output)"] }
    }
}

struct AnalyzeSpikes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spikes",
        abstract: "Score a time series: input timestamp,value; output timestamp,value,anomaly_score (0–1, causal).")
    @Option(help: "Input CSV: timestamp,value.") var input: String
    @Option(help: "Output CSV: timestamp,value,anomaly_score.") var output: String

    func run() async throws {
        try report { ["\(try SpikeTool.analyze(input: input, output: output)) rows written to \(output)"] }
    }
}

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the analysis on labelled data; one JSON object per line, the summary last.",
        subcommands: [EvalTemplates.self, EvalSpikes.self])
}

struct EvalTemplates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Grouping and parsing accuracy (GA, FGA, PA, FTA) on Loghub-2k systems, per system and their mean.")
    @Argument(help: "Folder of <System>/<System>_2k.log_structured_corrected.csv (e.g. ../shared/data/loghub2k).") var directory: String

    func run() async throws { try report { try TemplateTool.evaluate(directory: directory) } }
}

struct EvalSpikes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spikes",
        abstract: "NAB scores (standard, reward low FP, reward low FN) of the spike detector on a NAB corpus.")
    @Argument(help: "Folder with windows.json and the series it names (e.g. ../shared/data/nab).") var directory: String

    func run() async throws { try report { try SpikeTool.evaluate(directory: directory) } }
}

struct BenchTemplates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Template mining speed: the same messages through Faultline's miner and Drain3 (pip install drain3), one core each.")
    @Option(help: "Loghub-2k folder whose messages are mined.") var data = "../shared/data/loghub2k"
    @Option(help: "Messages mined (the data is repeated to reach it).") var messages = 300_000
    @Option(help: "Runs on each side, taking turns; the median counts.") var runs = 5

    func run() async throws {
        try report { try TemplateTool.bench(directory: data, minimumMessages: max(1, messages), runs: max(1, runs)) }
    }
}

struct BenchHTTP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "wrk against GET /v1/insights of Faultline (a private PostgreSQL behind it) and against nginx serving the same bytes (apt-get install wrk nginx).")
    @Option(help: "wrk connections.") var connections = 64
    @Option(help: "Seconds each side is loaded.") var duration = 10
    @Option(help: "nginx worker_processes: auto (one per core) or a number.") var nginxWorkers = "auto"
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-bench-http"

    func validate() throws {
        guard (1...10_000).contains(connections), (1...600).contains(duration) else {
            throw ValidationError("--connections must be 1 to 10000 and --duration 1 to 600")
        }
    }

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        // Requests are counted and timed as in production.
        FaultlineMetrics.bootstrap()
        var options = HTTPBenchmark.Options()
        options.connections = connections
        options.duration = duration
        options.nginxWorkers = nginxWorkers
        options.directory = directory
        let benchmark = HTTPBenchmark(options: options, logger: Logger(label: "faultline.bench"))
        try await report {
            [try await benchmark.run { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }]
        }
    }
}

struct BenchKMeans: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmeans",
        abstract: "k-means speed and inertia against scikit-learn on the same data and initial centroids (pip install scikit-learn threadpoolctl).")
    @Option(help: "Points.") var n = 100_000
    @Option(help: "Dimensions.") var d = 64
    @Option(help: "Clusters.") var k = 32
    @Option(help: "Seed of the data and the initial centroids.") var seed: UInt64 = 42
    @Option(help: "Fits on each side; the fastest counts.") var repeats = 3

    func validate() throws {
        guard (1...10_000_000).contains(n), (1...4096).contains(d), (1...n).contains(k) else {
            throw ValidationError("need 1 ≤ k ≤ n ≤ 10,000,000 and 1 ≤ d ≤ 4096")
        }
    }

    func run() async throws {
        try report { try KMeansBench.run(n: n, d: d, k: k, seed: seed, repeats: max(1, repeats)) }
    }
}

struct BenchIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Ingest events through the real pipeline and compare with psql \\copy of the same rows (use a release build).")
    @Option(help: "Number of events.") var events = 1_000_000
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-bench"

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        let result = try await IngestBenchmark.run(events: events, directory: directory, logger: Logger(label: "faultline.bench")) {
            FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
        }
        print(result.json)
    }
}

struct BenchAlertLatency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alert-latency",
        abstract: "Time from the first event of a spike entering Kafka to its webhook arriving, over several runs.")
    @Option(help: "Number of spikes measured.") var runs = 5
    @Option(help: "The analysis interval (FAULTLINE_ANALYSIS_INTERVAL), e.g. 15s.") var interval = "15s"
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-bench-alerts"

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        let interval = try FaultlineConfiguration.fromEnvironment(["FAULTLINE_ANALYSIS_INTERVAL": interval]).analysisInterval
        let result = try await AlertLatencyBenchmark.run(
            runs: max(1, runs), interval: interval, directory: directory, logger: Logger(label: "faultline.bench")
        ) { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
        print(result.json)
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage REST API keys in the database (FAULTLINE_DATABASE_URL).",
        subcommands: [KeysCreate.self, KeysList.self, KeysRevoke.self])
}

/// Prints a key tool's lines, or its error as one line on stderr with exit status 1.
func reportKeys(_ body: () async throws -> [String]) async throws {
    do {
        for line in try await body() { print(line) }
    } catch let error as ToolError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct KeysCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a key and print it (shown only now; only its SHA-256 is stored).")
    @OptionGroup var options: ConfigurationOptions
    @Option(help: "A name people recognise (e.g. the CD pipeline).") var name: String
    @Option(help: "read, write or admin (repeatable; write implies read, admin both).") var scope: [String] = ["read"]
    @Option(help: "Limit the key to services whose names start with this.") var servicePrefix: String?

    func run() async throws {
        let configuration = try options.load()
        try await reportKeys {
            try await KeyTool.create(configuration, name: name, scopes: scope, servicePrefix: servicePrefix,
                                     logger: Logger(label: "faultline.keys"))
        }
    }
}

struct KeysList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the keys, one JSON object a line (no secrets).")
    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let configuration = try options.load()
        try await reportKeys { try await KeyTool.list(configuration, logger: Logger(label: "faultline.keys")) }
    }
}

struct KeysRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key by its id.")
    @OptionGroup var options: ConfigurationOptions
    @Argument(help: "The key's id (from keys list).") var id: Int64

    func run() async throws {
        let configuration = try options.load()
        try await reportKeys { try await KeyTool.revoke(configuration, id: id, logger: Logger(label: "faultline.keys")) }
    }
}
