import App
import Foundation
import Ingest
import Kafka
import Logging
import Posix
import Postgres
import Storage
import ServiceLifecycle

/// `faultline bench ingest`: the real pipeline against `psql \copy` of the same rows into the
/// same table, on a private, durable (fsync on) PostgreSQL.
public enum IngestBenchmark {
    public struct Result: Sendable {
        public var events: Int
        public var seconds: Double
        public var copySeconds: Double
        /// The `events` partitions with their indexes and TOAST, per stored event.
        public var eventBytesPerEvent: Double = 0
        /// The whole database (groups, counts, offsets, the catalog too), per stored event.
        public var databaseBytesPerEvent: Double = 0
        /// The pipeline's own clocks: decoding, enriching and fingerprinting, then writing.
        public var decodeSeconds: Double = 0
        public var writeSeconds: Double = 0
        public var eventsPerSecond: Double { Double(events) / seconds }
        public var copyEventsPerSecond: Double { Double(events) / copySeconds }
        public var ratio: Double { eventsPerSecond / copyEventsPerSecond }

        public var json: String {
            func round(_ value: Double) -> String { String(format: "%.3f", value) }
            return #"{"benchmark":"ingest","events":\#(events),"seconds":\#(round(seconds)),"events_per_sec":\#(Int(eventsPerSecond)),"copy_seconds":\#(round(copySeconds)),"copy_events_per_sec":\#(Int(copyEventsPerSecond)),"ratio":\#(round(ratio)),"event_bytes_per_event":\#(Int(eventBytesPerEvent)),"database_bytes_per_event":\#(Int(databaseBytesPerEvent)),"decode_seconds":\#(round(decodeSeconds)),"write_seconds":\#(round(writeSeconds)),"cores":\#(ProcessInfo.processInfo.activeProcessorCount)}"#
        }
    }

    public static func run(events: Int, directory: String, logger: Logger, progress: @Sendable (String) -> Void) async throws -> Result {
        let postgres = LocalPostgresCluster(directory: directory + "/postgres", fast: false)
        try await offloaded("bench-postgres") {
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: directory + "/postgres")
            try postgres.start()
            try postgres.createDatabase("bench", logger: logger)
            try postgres.createDatabase("reference", logger: logger)
        }
        defer { try? postgres.stop() }

        var configuration = FaultlineConfiguration()
        configuration.databaseURL = postgres.url(database: "bench")
        configuration.migrationsDirectory = try ResourceLocator.migrations(configured: nil)
        let kafka = try KafkaMockCluster(brokers: 1, logger: logger)
        // Many partitions keep each under the mock broker's 5 MiB per-partition retention.
        try kafka.createTopic("errors", partitions: 32)
        try kafka.createTopic("deployments", partitions: 1)
        try kafka.createTopic("errors.dlq", partitions: 1)
        configuration.kafkaBrokers = kafka.bootstrapServers
        try await Faultline.migrate(configuration, logger: logger)
        var reference = configuration
        reference.databaseURL = postgres.url(database: "reference")
        try await Faultline.migrate(reference, logger: logger)

        progress("producing \(events) events")
        var producerConfiguration = configuration.kafka
        producerConfiguration.properties["compression.type"] = "zstd"
        producerConfiguration.properties["linger.ms"] = "20"
        producerConfiguration.properties["queue.buffering.max.messages"] = "1000000"
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        var generator = TrafficGenerator(seed: 7)
        let base = Date().addingTimeInterval(-3600)
        for n in 0..<events {
            let message = KafkaOutgoingMessage(
                topic: "errors", partition: Int32(n % 32),
                value: Array(generator.backgroundEvent(at: base.addingTimeInterval(Double(n % 3600)), sequence: n).utf8))
            try await producer.enqueue(message)
        }
        try await producer.flush(timeout: .seconds(600))

        // The clock starts when the consumer owns the partitions: it measures ingest, not
        // the producer or the consumer group's start-up.
        progress("ingesting")
        let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
        let role = IngestRole(configuration: configuration.ingest, pool: pool, producer: producer, logger: logger)
        let service = role.ingest
        let group = ServiceGroup(configuration: .init(services: role.services.map { .init(service: $0) }, logger: logger))
        let running = Task { try await group.run() }
        while service.status.assignedPartitions < 32 { try await Task.sleep(for: .milliseconds(5)) }
        let started = ContinuousClock.now
        var lastReport = ContinuousClock.now
        while service.status.eventsInserted < events {
            try await Task.sleep(for: .milliseconds(20))
            if ContinuousClock.now - lastReport > .seconds(5) {
                progress("ingested \(service.status.eventsInserted)")
                lastReport = .now
            }
            if ContinuousClock.now - started > .seconds(3600) { throw PostgresError(.localServer, "ingest did not finish", operation: "bench") }
        }
        let seconds = (ContinuousClock.now - started).seconds
        let (decode, write) = service.status.stageTimes
        progress("stage times: decode \(decode), write \(write)")
        await group.triggerGracefulShutdown()
        try await running.value
        await pool.close()

        progress("psql \\copy of the same rows")
        let file = directory + "/postgres/events.copy"
        let (copySeconds, eventBytes, databaseBytes) = try await offloaded("bench-copy") {
            let source = try PostgresConnection.connect(.init(url: postgres.url(database: "bench")), logger: logger)
            let eventBytes = try source.query(
                "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint FROM pg_inherits WHERE inhparent = 'events'::regclass"
            ).first!.int(0)
            let databaseBytes = try source.query("SELECT pg_database_size(current_database())").first!.int(0)
            try source.query("COPY (SELECT * FROM events) TO '\(file)'")
            let target = try PostgresConnection.connect(.init(url: postgres.url(database: "reference")), logger: logger)
            let days = Set(try source.query("SELECT DISTINCT date_trunc('day', occurred_at) FROM events").rows.map { try $0.date(0) })
            try PartitionManager.ensure(days: days, on: target)
            let psql = try LocalPostgresCluster.binDirectory() + "/psql"
            let clock = ContinuousClock.now
            let status = try Subprocess.run(
                psql, [postgres.url(database: "reference"), "-v", "ON_ERROR_STOP=1", "-c", "\\copy events FROM '\(file)'"],
                outputPath: directory + "/copy.log")
            let elapsed = (ContinuousClock.now - clock).seconds
            guard status == 0 else { throw PostgresError(.localServer, "psql \\copy failed; see \(directory)/copy.log", operation: "bench") }
            let copied = try target.query("SELECT count(*) FROM events").first!.int(0)
            guard copied == events else { throw PostgresError(.localServer, "psql copied \(copied) rows", operation: "bench") }
            return (elapsed, eventBytes, databaseBytes)
        }
        var result = Result(events: events, seconds: seconds, copySeconds: copySeconds)
        result.eventBytesPerEvent = Double(eventBytes) / Double(events)
        result.databaseBytesPerEvent = Double(databaseBytes) / Double(events)
        result.decodeSeconds = decode.seconds
        result.writeSeconds = write.seconds
        return result
    }
}
