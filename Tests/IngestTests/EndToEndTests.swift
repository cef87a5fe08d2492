import App
import Domain
import Foundation
import TestSupport
import Ingest
import Kafka
import Postgres
import Testing

@Suite struct EndToEndTests {
    @Test func everyFormatFromAnExternalClientLandsEnrichedAndGroupedAndReplaysAddNothing() async throws {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        for (topic, partitions) in [("errors", 3), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: partitions)
        }
        let now = Date()
        let v182 = now.addingTimeInterval(-7200)
        let v183 = now.addingTimeInterval(-1800)
        let directory = NSTemporaryDirectory() + "ingest-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

        try """
            {"service":"checkout","environment":"production","version":"1.8.2","commit":"aaa111","region":"eu-west-1","started_at":"\(rfc3339(v182))"}
            {"service":"checkout","environment":"production","version":"1.8.3","commit":"bbb222","region":"eu-west-1","started_at":"\(rfc3339(v183))"}
            """.write(toFile: directory + "/deployments.ndjson", atomically: true, encoding: .utf8)
        try await kcatProduce(cluster.bootstrapServers, topic: "deployments", file: directory + "/deployments.ndjson")
        // Let the deployments be stored before the events that need them arrive.
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000", "FAULTLINE_INGEST_BATCH_DELAY": "100ms",
            "FAULTLINE_INGEST_MAX_MESSAGE_BYTES": "65536",
        ])

        // Native: 6 events of one group after v1.8.3, 2 of another before it; an array of 2.
        var lines: [String] = []
        for n in 0..<6 {
            lines.append(#"{"event_id":"\#(UUID().uuidString)","timestamp":"\#(rfc3339(now.addingTimeInterval(-600 + Double(n))))","service":"checkout","environment":"production","error_type":"TimeoutError","message":"upstream payments timed out after \#(n + 30)s","http_status":504}"#)
        }
        for n in 0..<2 {
            lines.append(#"{"timestamp":"\#(rfc3339(now.addingTimeInterval(-3600 + Double(n))))","service":"checkout","error_type":"KeyError","message":"cart \#(1000 + n) missing","version":"1.8.2"}"#)
        }
        lines.append(#"[{"timestamp":"\#(rfc3339(now))","service":"search","message":"index stale"},{"timestamp":"\#(rfc3339(now))","service":"search","message":"index stale"}]"#)
        // A NUL escape in attributes: jsonb cannot hold it, so it is stored as U+FFFD.
        lines.append(#"{"timestamp":"\#(rfc3339(now))","service":"search","message":"index stale","attributes":{"q":"a\u0000b"}}"#)
        // OTLP: one error record and one INFO record (skipped).
        lines.append(#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments"}},{"key":"service.version","value":{"stringValue":"2.0.0"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"\#(UInt64(now.timeIntervalSince1970 * 1e9))","severityNumber":17,"body":{"stringValue":"card declined"},"attributes":[{"key":"exception.type","value":{"stringValue":"DeclinedError"}}]},{"timeUnixNano":"\#(UInt64(now.timeIntervalSince1970 * 1e9))","severityNumber":9,"body":{"stringValue":"ok"}}]}]}]}"#)
        // CLEF.
        lines.append(#"{"@t":"\#(rfc3339(now))","@mt":"Order {OrderId} failed","@l":"Error","OrderId":77,"Application":"orders","@x":"System.InvalidOperationException: bad state"}"#)
        // Bad input, each with its own reason.
        lines.append("this is not json")
        lines.append(#"{"timestamp":"\#(rfc3339(now))","service":"checkout","message":"trunc"#)
        lines.append(#"{"timestamp":"\#(rfc3339(now))","message":"no service"}"#)
        lines.append(#"{"timestamp":"2001-01-01T00:00:00Z","service":"old","message":"ancient"}"#)
        lines.append(#"{"timestamp":"\#(rfc3339(now))","service":["checkout"],"message":"wrong type"}"#)
        lines.append(String(repeating: "[", count: 40) + String(repeating: "]", count: 40))
        try lines.joined(separator: "\n").write(toFile: directory + "/events.ndjson", atomically: true, encoding: .utf8)

        try await withIngest(configuration) { status async throws in
            #expect(try await eventually { try count(url, "SELECT count(*) FROM deployments") == 2 })
            try await kcatProduce(cluster.bootstrapServers, topic: "errors", file: directory + "/events.ndjson")
            // Binary and oversized values, from our own producer (kcat reads lines).
            let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
            _ = try await producer.send(KafkaOutgoingMessage(topic: "errors", key: [9], value: [0xFF, 0xFE, 0x00, 0x80],
                                                            headers: [KafkaHeader(name: "origin", string: "test")]))
            _ = try await producer.send(KafkaOutgoingMessage(topic: "errors", value: Array(repeating: UInt8(ascii: "x"), count: 100_000)))
            var random = SystemRandomNumberGenerator()
            for length in [1, 17, 512] {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                _ = try await producer.send(KafkaOutgoingMessage(topic: "errors", value: bytes))
            }

            #expect(try await eventually { try count(url, "SELECT count(*) FROM events") == 13 && count(url, "SELECT count(*) FROM dead_letters") == 11 })
            #expect(try await eventually { status.eventsInserted == 13 })
            // The watermark: every partition, caught up, is complete in event time up to a
            // moment after the last event (those it never read from included).
            #expect(try await eventually {
                try count(url, "SELECT count(*) FROM ingest_progress WHERE topic = 'errors' AND complete_until >= '\(rfc3339(now))'") == 3
            })
        }

        // Exactly the expected rows, groups and enrichment.
        #expect(try count(url, "SELECT count(*) FROM events") == 13)
        let groups = try query(url, "SELECT service, error_type, template, event_count FROM groups ORDER BY service, event_count DESC")
        #expect(groups.rows.map { "\($0.optionalString(0)!)|\($0.optionalString(1) ?? "-")|\($0.optionalString(2)!)|\($0.optionalString(3)!)" } == [
            "checkout|TimeoutError|upstream payments timed out after <*>|6",
            "checkout|KeyError|cart <*> missing|2",
            "orders|System.InvalidOperationException|Order <*> failed|1",
            "payments|DeclinedError|card declined|1",
            "search|-|index stale|3",
        ])
        let recent = try query(url, "SELECT DISTINCT version, commit_sha, region, seconds_since_deploy BETWEEN 1150 AND 1250 FROM events WHERE error_type = 'TimeoutError'")
        #expect(recent.count == 1)
        #expect(recent.first?.values == ["1.8.3", "bbb222", "eu-west-1", "t"])
        let older = try query(url, "SELECT DISTINCT version, commit_sha FROM events WHERE error_type = 'KeyError'")
        #expect(older.first?.values == ["1.8.2", "aaa111"])
        #expect(try count(url, "SELECT count(*) FROM events WHERE format = 'otlp' AND version = '2.0.0'") == 1)
        #expect(try count(url, "SELECT count(*) FROM events WHERE attributes ->> 'q' = 'a' || chr(65533) || 'b'") == 1)
        #expect(try count(url, "SELECT count(*) FROM events WHERE format = 'clef' AND message = 'Order 77 failed'") == 1)
        #expect(try count(url, "SELECT sum(count) FROM event_counts") == 13)

        // Every bad message is in the table and on the topic, with its reason.
        let reasons = try query(url, "SELECT reason FROM dead_letters ORDER BY source_partition, source_offset").rows.map { $0.optionalString(0)! }
        for expected in ["not JSON", "malformed or truncated JSON", "missing required field service", "older than the accepted 30 days",
                         "not valid UTF-8", "more than the limit of 65536", "service must be a string, not an array",
                         "nested deeper than 32 levels"] {
            #expect(reasons.contains { $0.contains(expected) }, "no dead letter says \(expected): \(reasons)")
        }
        let dlq = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(kafka: configuration.kafka, groupID: "dlq-check", topics: ["errors.dlq"], sessionTimeout: .seconds(6)),
            logger: logger)
        var letters: [KafkaMessage] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while letters.count < 11 && ContinuousClock.now < deadline {
            letters += try await dlq.poll(maxMessages: 100, timeout: .milliseconds(200))
        }
        try await dlq.close()
        #expect(letters.count == 11)
        #expect(letters.allSatisfy { $0.header(DeadLetterHeaders.reason) != nil && $0.header(DeadLetterHeaders.sourceOffset) != nil })
        let binary = letters.first { $0.value == [0xFF, 0xFE, 0x00, 0x80] }
        #expect(binary?.key == [9] && binary?.header("origin")?.stringValue == "test")

        // Replay: a new group reads everything again from the start; nothing new is stored.
        var replay = configuration
        replay.kafkaGroup = "replay"
        try await withIngest(replay) { status async throws in
            #expect(try await eventually { status.duplicates == 13 })
        }
        #expect(try count(url, "SELECT count(*) FROM events") == 13)
        #expect(try count(url, "SELECT sum(event_count) FROM groups") == 13)
        #expect(try count(url, "SELECT sum(count) FROM event_counts") == 13)
        #expect(try count(url, "SELECT count(*) FROM dead_letters") == 11)
    }
}
