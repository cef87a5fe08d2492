import App
import DevTools
import ArgumentParser
import Foundation
import Logging

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
