import Domain
import Foundation
import Kafka
import Postgres
import Storage
import Synchronization
import Testing
import TestSupport

import Ingest

#if canImport(Glibc)
import Glibc
#endif

/// How a batch is decoded after a member stopped mid-decode: pure decisions, no broker.
@Suite struct DecodePlanTests {
    let me = UUID()
    let dead = UUID()

    func messages(_ offsets: ClosedRange<Int64>, partition: Int32 = 0) -> [KafkaMessage] {
        offsets.map { KafkaMessage(topic: "errors", partition: partition, offset: $0, key: nil, value: [], headers: [], timestamp: nil) }
    }

    @Test func claimsOneRangePerPartition() {
        let claims = DecodePlan.claims(for: messages(5...9) + messages(3...4, partition: 1) + messages(10...12), owner: me)
        #expect(claims == [DecodingRecord(topic: "errors", partition: 0, first: 5, last: 12, owner: me),
                           DecodingRecord(topic: "errors", partition: 1, first: 3, last: 4, owner: me)])
    }

    @Test func nothingLeftOverIsAPlainBatch() {
        #expect(DecodePlan(messages: messages(0...9), leftovers: [], owner: me).isPlain)
    }

    @Test func aRangeLeftByTheDeadIsDecodedOneAtATime() {
        let left = DecodingRecord(topic: "errors", partition: 0, first: 4, last: 7, owner: dead)
        let plan = DecodePlan(messages: messages(2...9) + messages(0...1, partition: 1), leftovers: [left], owner: me)
        #expect(plan.crashed.isEmpty)
        #expect(plan.careful.map { $0.messages.map(\.offset) } == [[4, 5, 6, 7]])
        #expect(plan.careful.first?.record == DecodingRecord(topic: "errors", partition: 0, first: 4, last: 7, owner: me))
        // Before the range (decoded before without harm), after it, and the other partition.
        #expect(Set(plan.batch.map { "\($0.partition)/\($0.offset)" }) == ["1/0", "1/1", "0/2", "0/3", "0/8", "0/9"])
        #expect(plan.batchRecords == [DecodingRecord(topic: "errors", partition: 0, first: 2, last: 9, owner: me)])
        #expect(plan.deferred.isEmpty && plan.removed.isEmpty)
    }

    @Test func theMessageBeingDecodedAloneAtASecondDeathIsSetAside() {
        let left = DecodingRecord(topic: "errors", partition: 0, first: 4, last: 7, current: 6, owner: dead)
        let plan = DecodePlan(messages: messages(4...7), leftovers: [left], owner: me)
        #expect(plan.crashed.map(\.offset) == [6])
        #expect(plan.careful.map { $0.messages.map(\.offset) } == [[7]])
        // 4 and 5 were decoded alone before, without harm.
        #expect(plan.batch.map(\.offset) == [4, 5])
        #expect(plan.deferred.isEmpty)
    }

    @Test func aRangeThatGoesOnPastTheBatchIsLeftToTheNextReader() {
        let left = DecodingRecord(topic: "errors", partition: 0, first: 4, last: 20, current: 15, owner: dead)
        let plan = DecodePlan(messages: messages(2...9), leftovers: [left], owner: me)
        #expect(plan.crashed.isEmpty && plan.careful.isEmpty)
        #expect(plan.batch.map(\.offset) == Array(2...9))
        #expect(plan.deferred == [DecodingRecord(topic: "errors", partition: 0, first: 10, last: 20, current: 15, owner: DecodingLedger.unowned)])
        #expect(plan.batchRecords == [DecodingRecord(topic: "errors", partition: 0, first: 2, last: 20, current: 15, owner: me)])
    }

    @Test func aSuspectRangeWithNothingElseRemovesItsRecord() {
        let left = DecodingRecord(topic: "errors", partition: 0, first: 4, last: 5, owner: DecodingLedger.unowned)
        let plan = DecodePlan(messages: messages(4...5), leftovers: [left], owner: me)
        #expect(plan.careful.map { $0.messages.map(\.offset) } == [[4, 5]])
        #expect(plan.batch.isEmpty && plan.removed == [KafkaTopicPartition(topic: "errors", partition: 0)])
    }

    @Test func aMessageAlreadySetAsideIsSetAsideAgainWithoutAnyRecord() {
        let setAside: Set<DecodingLedger.Position> = [.init(topic: "errors", partition: 0, offset: 5)]
        let plan = DecodePlan(messages: messages(3...7), leftovers: [], setAside: setAside, owner: me)
        #expect(!plan.isPlain)
        #expect(plan.crashed.map(\.offset) == [5])
        #expect(plan.batch.map(\.offset) == [3, 4, 6, 7] && plan.careful.isEmpty)
    }

    @Test func ourOwnStaleRecordIsNoCrash() {
        let left = DecodingRecord(topic: "errors", partition: 0, first: 0, last: 3, owner: me)
        let plan = DecodePlan(messages: messages(0...3), leftovers: [left], owner: me)
        #expect(plan.crashed.isEmpty && plan.careful.isEmpty && plan.batch.count == 4)
        #expect(plan.batchRecords == [DecodingRecord(topic: "errors", partition: 0, first: 0, last: 3, owner: me)])
    }
}

/// What the supervisors of restarted replicas share.
final class Supervision: Sendable {
    let crashes = Mutex(0)
    let stop = Mutex(false)
    /// The end of each dead replica's log, for the failure message.
    let deaths = Mutex<[String]>([])
}

@Suite struct PoisonMessageTests {
    /// Two `faultline serve` replicas, each restarted when it dies (as Kubernetes restarts a
    /// pod), share 4,000 events and one message that stops any process decoding it (the
    /// debug build's `decode-trap` failpoint). Every event is stored once, the trap message is
    /// dead-lettered as `crashed-decoder`, and there are at most two crashes in all.
    @Test func aMessageThatKillsTheDecoderKillsAtMostTwoProcesses() async throws {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        let partitions: Int32 = 4
        for (topic, count) in [("errors", Int(partitions)), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: count)
        }
        let trap = "poison-\(UUID().uuidString.prefix(8))"
        let replicas = Replicas(environment: [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000", "FAULTLINE_LOG_LEVEL": "info", "FAULTLINE_ROLES": "ingest",
            "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_HTTP_HOST": "127.0.0.1", "FAULTLINE_INGEST_BATCH_SIZE": "500",
            "FAULTLINE_FAILPOINTS": "decode-trap=\(trap)",
        ])
        let supervision = Supervision()
        // A supervisor per replica: start it, and start it again whenever it dies.
        let supervisors = (0..<2).map { _ in
            Task.detached {
                while !supervision.stop.withLock({ $0 }) {
                    let replica = try replicas.start()
                    while replica.process.isRunning && !supervision.stop.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(100)) }
                    if supervision.stop.withLock({ $0 }) { break }
                    _ = try await waitForExit(replica.process, .seconds(5))
                    if replica.process.terminationStatus != 0 || replica.process.terminationReason == .uncaughtSignal {
                        supervision.crashes.withLock { $0 += 1 }
                        let log = (try? String(contentsOfFile: replica.log, encoding: .utf8)) ?? ""
                        try? log.write(toFile: NSTemporaryDirectory() + "poison-death-\(replica.pid).log", atomically: true, encoding: .utf8)
                        let telling = log.split(separator: "\n").filter {
                            ["Fatal", "decod", "assigned", "revoked", "dead", "crash"].contains(where: $0.contains)
                        }
                        let tail = "pid \(replica.pid) status \(replica.process.terminationStatus):\n" + telling.suffix(10).joined(separator: "\n")
                        supervision.deaths.withLock { $0.append(tail) }
                    }
                }
            }
        }
        defer {
            supervision.stop.withLock { $0 = true }
            for supervisor in supervisors { supervisor.cancel() }
        }

        let now = Date()
        var events = backgroundEvents(0..<4000, seed: "poison", now: now)
        let poisonLine = eventLine(id: UUID().uuidString, at: now, service: "checkout", errorType: "Trap", message: trap, version: "1.0.0")
        events.insert((id: "poison", line: poisonLine), at: 1234)
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        let deliveries = Deliveries()
        try await deliveries.produce(producer, events, partitions: partitions)
        try await producer.flush(timeout: .seconds(30))
        #expect(deliveries.failures.withLock { $0 } == 0)

        let done = try await eventually(.seconds(150)) {
            try count(url, "SELECT count(*) FROM events") == 4000
                && count(url, "SELECT count(*) FROM dead_letters WHERE reason LIKE 'crashed-decoder%'") == 1
        }
        let stored = try count(url, "SELECT count(*) FROM events")
        let distinct = try count(url, "SELECT count(DISTINCT event_id) FROM events")
        let letters = try query(url, "SELECT reason, convert_from(message_value, 'UTF8') FROM dead_letters").map {
            (try $0.string(0), try $0.string(1))
        }
        #expect(done, "stored \(stored), dead letters \(letters.map(\.0)), crashes \(supervision.crashes.withLock { $0 })")
        #expect(stored == 4000 && distinct == 4000)
        #expect(letters.count == 1 && letters.first?.1.contains(trap) == true)
        let crashCount = supervision.crashes.withLock { $0 }
        #expect(crashCount >= 1 && crashCount <= 2, "crashes: \(crashCount)\n\(supervision.deaths.withLock { $0 }.joined(separator: "\n---\n"))")
        // Nothing is left suspect once the range is behind every replica.
        #expect(try await eventually(.seconds(30)) { try count(url, "SELECT count(*) FROM ingest_decoding") == 0 })
    }

    /// A message set aside whose offset commit was lost (a rebalance or a crash came first)
    /// is read again with no decoding record left to warn of it: it is set aside again from
    /// its dead letter, never decoded a third time.
    @Test func aMessageSetAsideWhoseCommitWasLostIsNotDecodedAgain() async throws {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        for topic in ["errors", "deployments", "errors.dlq"] { try cluster.createTopic(topic, partitions: 1) }
        let trap = "poison-\(UUID().uuidString.prefix(8))"
        let now = Date()
        var events = backgroundEvents(0..<50, seed: "set-aside", now: now)
        let poisonLine = eventLine(id: UUID().uuidString, at: now, service: "checkout", errorType: "Trap", message: trap, version: "1.0.0")
        events.insert((id: "poison", line: poisonLine), at: 20)
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        try await Deliveries().produce(producer, events, partitions: 1)
        try await producer.flush(timeout: .seconds(30))
        // What the replica that set it aside stored before its commit was lost.
        try PostgresConnection.connect(.init(url: url), logger: logger).query("""
            INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_value, reason)
            VALUES ('errors', 0, 20, $1, 'crashed-decoder: the process stopped while decoding this message, twice')
            """, [.bytes(Array(poisonLine.utf8))])

        let replicas = Replicas(environment: [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000", "FAULTLINE_ROLES": "ingest", "FAULTLINE_HTTP_HOST": "127.0.0.1",
            "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_FAILPOINTS": "decode-trap=\(trap)",
        ])
        let replica = try replicas.start()
        defer { kill(replica.pid, SIGKILL) }
        let stored = try await eventually(.seconds(90)) { try count(url, "SELECT count(*) FROM events") == 50 || !replica.process.isRunning }
        #expect(stored && replica.process.isRunning, "the replica died: \(replicas.tail(replica))")
        #expect(try count(url, "SELECT count(*) FROM events") == 50)
        #expect(try count(url, "SELECT count(*) FROM dead_letters") == 1)
    }
}
