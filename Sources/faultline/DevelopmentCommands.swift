import App
import DevTools
import ArgumentParser
import Foundation
import Kafka
import Logging
import Postgres
import UnixSignals

struct DevKafka: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-kafka",
        abstract: "Serve an embedded Kafka cluster on 127.0.0.1 until stopped.",
        discussion: "Prints the bootstrap servers as the first line on stdout; any Kafka client can connect.")
    @Option(help: "Number of brokers.") var brokers = 3
    @Option(help: "Partitions per topic.") var partitions = 6
    @Option(help: "Topic to create (repeatable; default: errors, errors.dlq and deployments, what faultline serve uses).")
    var topic: [String] = ["errors", "errors.dlq", "deployments"]

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
