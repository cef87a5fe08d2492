import App
import Domain
import Foundation
import Ingest
import Kafka
import Postgres
import Testing
import TestSupport

/// The order the whole ingest design rests on, observed from outside: a batch's offsets are
/// committed only after its events are in PostgreSQL, and only after its dead letters were
/// acknowledged by the broker. Each test holds one step back and watches the group's committed
/// offsets (read by an observer that never joins the group) stay where they were.
@Suite struct OrderingTests {
    let partition = KafkaTopicPartition(topic: "errors", partition: 0)

    func setUp() throws -> (url: String, cluster: KafkaMockCluster, configuration: FaultlineConfiguration, observer: KafkaConsumer) {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        for (topic, partitions) in [("errors", 1), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: partitions)
        }
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_INGEST_BATCH_DELAY": "100ms", "FAULTLINE_KAFKA_GROUP": "ordering",
        ])
        let observer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(kafka: configuration.kafka, groupID: "ordering", topics: []), logger: logger)
        return (url, cluster, configuration, observer)
    }

    func produce(_ producer: KafkaProducer, _ lines: [String]) async throws {
        for line in lines { try await producer.enqueue(KafkaOutgoingMessage(topic: "errors", partition: 0, value: Array(line.utf8))) }
        try await producer.flush(timeout: .seconds(30))
    }

    func events(_ range: Range<Int>, prefix: String) -> [String] {
        let now = rfc3339(Date())
        return range.map { n in
            let id = StableHash.uuid("\(prefix)/\(n)").uuidString
            return #"{"event_id":"\#(id)","timestamp":"\#(now)","service":"svc","message":"event \#(n)"}"#
        }
    }

    func committed(_ observer: KafkaConsumer) async throws -> Int64? {
        try await observer.committed([partition])[partition] ?? nil
    }

    /// The test holds a lock that stops writes to `events`: the batch read meanwhile is
    /// decoded and its write waits, and the committed offset must not move until the lock is
    /// released; then it moves exactly to the batch's end, with every event stored.
    @Test func offsetsAreCommittedOnlyAfterTheBatchIsWritten() async throws {
        let setup = try setUp()
        let url = setup.url
        let configuration = setup.configuration
        let observer = setup.observer
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        try await produce(producer, events(0..<10, prefix: "ordering/first"))
        try await withIngest(configuration) { _ async throws in
            // A first batch creates today's partition and commits.
            #expect(try await eventually(.seconds(120)) { try await committed(observer) == 10 })

            let lock = try TableLock(url: url, table: "events")
            try await produce(producer, events(10..<30, prefix: "ordering/second"))
            // A positive signal that the write is under way and waiting: its lock request.
            let waiting = try await lock.waitForAWaitingWriter()
            #expect(waiting, "the batch's write never waited for the lock")
            for _ in 0..<5 {
                #expect(try await committed(observer) == 10, "offsets moved before the batch was written")
                try await Task.sleep(for: .milliseconds(200))
            }
            try lock.release()
            #expect(try await eventually(.seconds(30)) { try await committed(observer) == 30 })
            #expect(try count(url, "SELECT count(*) FROM events") == 30)
        }
        #expect(try await committed(observer) == 30)
    }

    /// A message that cannot be decoded goes to the dead-letter topic before its offset is
    /// committed: while the broker refuses every produce request, nothing is committed; once it
    /// accepts them, the dead letter is on `errors.dlq` and the offset moves past it.
    @Test func deadLettersAreAcknowledgedBeforeTheCommit() async throws {
        let setup = try setUp()
        let url = setup.url
        let cluster = setup.cluster
        let configuration = setup.configuration
        let observer = setup.observer
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        try await produce(producer, ["not json at all"] + events(1..<4, prefix: "ordering/dlq"))
        // From now on every produce request (only the dead letter's) fails with a retriable
        // error (NOT_LEADER_FOR_PARTITION) until the errors are cleared below: far more errors
        // than librdkafka's retries can use up in the time the test watches, however slow.
        cluster.pushRequestErrors(.produce, Array(repeating: 6, count: 100_000))
        try await withIngest(configuration) { status async throws in
            // The batch is decoded: its dead letter is being sent.
            #expect(try await eventually(.seconds(60)) { status.stageTimes.decode > .zero })
            for _ in 0..<6 {
                #expect(try await committed(observer) == nil, "offsets committed before the dead letter was acknowledged")
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(try count(url, "SELECT count(*) FROM dead_letters") == 0)
            cluster.clearRequestErrors(.produce)
            #expect(try await eventually(.seconds(60)) { try await committed(observer) == 4 })
        }
        #expect(try count(url, "SELECT count(*) FROM dead_letters") == 1)
        #expect(try count(url, "SELECT count(*) FROM events") == 3)
        // The dead letter is on the topic, with its reason.
        let reader = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(kafka: configuration.kafka, groupID: "ordering-dlq-reader", topics: ["errors.dlq"]),
            logger: logger)
        var letters: [KafkaMessage] = []
        _ = try await eventually(.seconds(30)) {
            letters += try await reader.poll(maxMessages: 10, timeout: .milliseconds(500))
            return !letters.isEmpty
        }
        #expect(letters.count == 1)
        #expect(letters.first?.header(DeadLetterHeaders.reason)?.stringValue == "not JSON")
        #expect(letters.first.map { String(decoding: $0.value, as: UTF8.self) } == "not json at all")
        try await reader.close()
    }
}

/// A transaction that holds `LOCK TABLE … IN SHARE MODE` (reads go on, writes wait) until
/// released.
final class TableLock: @unchecked Sendable {
    // Unchecked: the connection is used by one test, one call at a time.
    private let connection: PostgresConnection

    init(url: String, table: String) throws {
        connection = try PostgresConnection.connect(.init(url: url), logger: logger)
        try connection.execute("BEGIN")
        try connection.execute("LOCK TABLE \(table) IN SHARE MODE")
    }

    /// Waits (at most 30 s) until another session waits for this lock: the positive signal
    /// that a write is under way and held.
    func waitForAWaitingWriter() async throws -> Bool {
        for _ in 0..<150 {
            let waiting = try connection.query("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
            if try waiting.first?.int(0) ?? 0 > 0 { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    func release() throws {
        try connection.execute("COMMIT")
    }
}
