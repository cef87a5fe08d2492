import App
import Foundation
import TestSupport
import Ingest
import Kafka
import Postgres
import Testing

@Suite struct RefusedEventTests {
    /// An event PostgreSQL refuses (here: a check constraint the test adds) goes to the
    /// dead-letter topic and table with its original bytes; the rest of its batch is stored.
    @Test func oneRefusedEventDoesNotBlockItsBatch() async throws {
        let url = try migratedDatabaseURL()
        try PostgresConnection.connect(.init(url: url), logger: logger)
            .execute("ALTER TABLE events ADD CONSTRAINT no_poison CHECK (message <> 'poison')")
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        for (topic, partitions) in [("errors", 1), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: partitions)
        }
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_INGEST_BATCH_DELAY": "500ms",
        ])
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        let now = rfc3339(Date())
        for n in 0..<20 {
            let message = n == 7 ? "poison" : "fine \(n)"
            try await producer.enqueue(KafkaOutgoingMessage(
                topic: "errors", key: Array("k\(n)".utf8),
                value: Array(#"{"timestamp":"\#(now)","service":"svc","message":"\#(message)"}"#.utf8)))
        }
        try await producer.flush(timeout: .seconds(30))

        try await withIngest(configuration) { status async throws in
            #expect(try await eventually(.seconds(120)) { status.eventsInserted == 19 && status.deadLetters == 1 },
                    "\(status.eventsInserted) stored, \(status.deadLetters) dead letters")
        }
        #expect(try count(url, "SELECT count(*) FROM events") == 19)
        #expect(try count(url, "SELECT sum(event_count) FROM groups") == 19)
        let letter = try #require(try query(url, "SELECT source_offset, reason, convert_from(message_value, 'UTF8') FROM dead_letters").first)
        #expect(try letter.int(0) == 7)
        #expect(try letter.string(1).contains("refused by the database"))
        #expect(try letter.string(2).contains("\"poison\""))
    }
}
