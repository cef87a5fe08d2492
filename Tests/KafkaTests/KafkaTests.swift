import Foundation
import TestSupport
import Kafka
import Testing

@Suite struct KafkaRoundTripTests {
    @Test func producesAndConsumesWithKeysHeadersAndTimestamps() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("roundtrip", partitions: 3)
        let producer = try producer(cluster)
        var reports: [String: KafkaDeliveryReport] = [:]
        for index in 0..<30 {
            let report = try await producer.send(KafkaOutgoingMessage(
                topic: "roundtrip", key: Array("key-\(index % 5)".utf8), value: Array("value-\(index)".utf8),
                headers: [KafkaHeader(name: "content-type", string: "application/json"), KafkaHeader(name: "empty", value: nil)]))
            reports["value-\(index)"] = report
        }
        #expect(Set(reports.values.map(\.partition)).count > 1, "keys spread over partitions")

        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(cluster, group: "roundtrip", topics: ["roundtrip"]), logger: testLogger)
        let messages = try await consume(consumer, count: 30)
        try await consumer.close()

        #expect(messages.count == 30)
        #expect(Set(messages.map { text($0.value) }) == Set((0..<30).map { "value-\($0)" }))
        for message in messages {
            let report = try #require(reports[text(message.value)])
            #expect(message.partition == report.partition)
            #expect(message.offset == report.offset)
            #expect(message.topic == "roundtrip")
            #expect(message.header("Content-Type")?.stringValue == "application/json")
            #expect(message.headers.contains(KafkaHeader(name: "empty", value: nil)))
            let timestamp = try #require(message.timestamp)
            #expect(abs(timestamp.timeIntervalSinceNow) < 120)
            let index = Int(text(message.value).dropFirst("value-".count))!
            #expect(message.key.map(text) == "key-\(index % 5)")
        }
        // The same key always lands in the same partition.
        let partitionsByKey = Dictionary(grouping: messages) { $0.key.map(text) ?? "" }.mapValues { Set($0.map(\.partition)) }
        #expect(partitionsByKey.values.allSatisfy { $0.count == 1 })
    }

    @Test func resumesAtTheCommittedOffsetAfterReopening() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("resume", partitions: 1)
        let producer = try producer(cluster)
        for index in 0..<20 {
            _ = try await producer.send(KafkaOutgoingMessage(topic: "resume", value: Array("m\(index)".utf8)))
        }
        let configuration = consumerConfiguration(cluster, group: "resume", topics: ["resume"])

        let first = try KafkaConsumer(configuration: configuration, logger: testLogger)
        let read = try await consume(first, count: 20)
        #expect(read.count == 20)
        let processed = Array(read.prefix(12))
        try await first.commit(KafkaTopicPartitionOffset.after(processed))
        let committed = try await first.committed([KafkaTopicPartition(topic: "resume", partition: 0)])
        #expect(committed[KafkaTopicPartition(topic: "resume", partition: 0)] == 12)
        try await first.close()
        await #expect(throws: KafkaError.self) { _ = try await first.poll(maxMessages: 1, timeout: .zero) }

        let second = try KafkaConsumer(configuration: configuration, logger: testLogger)
        let rest = try await consume(second, count: 8)
        // Nothing more may arrive: one extra poll must come back empty.
        let extra = try await second.poll(maxMessages: 10, timeout: .milliseconds(500))
        try await second.close()
        #expect(rest.map(\.offset) == Array(12..<20))
        #expect(rest.map { text($0.value) } == (12..<20).map { "m\($0)" })
        #expect(extra.isEmpty)
    }

    /// Lag is what lies beyond the member's position; a partition it has read nothing from yet
    /// stands at its committed offset.
    @Test func lagCountsWhatIsLeftBeyondThePositionOrTheCommittedOffset() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("busy", partitions: 1)
        try cluster.createTopic("quiet", partitions: 1)
        let producer = try producer(cluster)
        for index in 0..<20 { _ = try await producer.send(KafkaOutgoingMessage(topic: "busy", value: Array("b\(index)".utf8))) }
        for index in 0..<4 { _ = try await producer.send(KafkaOutgoingMessage(topic: "quiet", value: Array("q\(index)".utf8))) }
        let configuration = consumerConfiguration(cluster, group: "lag", topics: ["busy", "quiet"])
        // A first member reads and commits all of quiet and 12 of busy.
        let first = try KafkaConsumer(configuration: configuration, logger: testLogger)
        let read = try await consume(first, count: 24)
        #expect(read.count == 24)
        try await first.commit(KafkaTopicPartitionOffset.after(read.filter { $0.topic == "quiet" || $0.offset < 12 }))
        try await first.close()

        let second = try KafkaConsumer(configuration: configuration, logger: testLogger)
        let more = try await consume(second, count: 3)
        #expect(more.map(\.offset) == [12, 13, 14])
        let busy = KafkaTopicPartition(topic: "busy", partition: 0)
        let quiet = KafkaTopicPartition(topic: "quiet", partition: 0)
        var lag: [KafkaTopicPartition: Int64] = [:]
        let deadline = ContinuousClock.now + .seconds(20)
        while (lag[busy] != 5 || lag[quiet] != 0) && ContinuousClock.now < deadline {
            lag = try await second.lag()
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(lag == [busy: 5, quiet: 0])
        // Of the partitions it has read from alone, without asking the broker: quiet has no
        // position on this member, so it is left out.
        #expect(try await second.lag(of: [busy, quiet]) == [busy: 5])
        try await second.close()
        await #expect(throws: KafkaError.self) { _ = try await second.lag() }
    }

    @Test func positionsWhoseCommitFailedAreCommittedWhenPartitionsAreRevoked() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("revoke", partitions: 1)
        let producer = try producer(cluster)
        for index in 0..<10 {
            _ = try await producer.send(KafkaOutgoingMessage(topic: "revoke", value: Array("m\(index)".utf8)))
        }
        let configuration = consumerConfiguration(cluster, group: "revoke", topics: ["revoke"])
        let first = try KafkaConsumer(configuration: configuration, logger: testLogger)
        let read = try await consume(first, count: 10)
        #expect(read.count == 10)
        // The broker refuses the next commit (REBALANCE_IN_PROGRESS, as during a rebalance).
        cluster.pushRequestErrors(.offsetCommit, [27])
        await #expect(throws: KafkaError.self) {
            try await first.commit(KafkaTopicPartitionOffset.after(read.prefix(6)))
        }
        // Leaving the group revokes the partition, which commits the stored position.
        try await first.close()

        let second = try KafkaConsumer(configuration: configuration, logger: testLogger)
        let rest = try await consume(second, count: 4)
        try await second.close()
        #expect(rest.map(\.offset) == [6, 7, 8, 9])
    }

    @Test func twoMembersOfAGroupSplitThePartitions() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("split", partitions: 4)
        let configuration = consumerConfiguration(cluster, group: "split", topics: ["split"])
        let events = EventLog()
        let a = try KafkaConsumer(configuration: configuration, logger: testLogger) { events.append("a", $0) }
        let b = try KafkaConsumer(configuration: configuration, logger: testLogger) { events.append("b", $0) }

        // Poll both until the group has settled with every partition owned by exactly one. On a
        // loaded machine a member can lose its first assignment and rejoin, which takes another
        // round of the group's timeouts: the bound is generous, a settled group ends it early.
        let all = Set((0..<4).map { KafkaTopicPartition(topic: "split", partition: $0) })
        let deadline = ContinuousClock.now + .seconds(120)
        var settled = false
        while !settled && ContinuousClock.now < deadline {
            async let pollA = a.poll(maxMessages: 100, timeout: .milliseconds(200))
            async let pollB = b.poll(maxMessages: 100, timeout: .milliseconds(200))
            _ = try await (pollA, pollB)
            let (ownedA, ownedB) = (Set(try a.assignment()), Set(try b.assignment()))
            settled = !ownedA.isEmpty && !ownedB.isEmpty && ownedA.isDisjoint(with: ownedB) && ownedA.union(ownedB) == all
        }
        #expect(settled, "partitions were not split: events \(events.all)")

        let producer = try producer(cluster)
        for index in 0..<40 {
            _ = try await producer.send(KafkaOutgoingMessage(topic: "split", partition: Int32(index % 4), value: Array("\(index)".utf8)))
        }
        var receivedA: [KafkaMessage] = []
        var receivedB: [KafkaMessage] = []
        let readDeadline = ContinuousClock.now + .seconds(20)
        while receivedA.count + receivedB.count < 40 && ContinuousClock.now < readDeadline {
            async let pollA = a.poll(maxMessages: 100, timeout: .milliseconds(200))
            async let pollB = b.poll(maxMessages: 100, timeout: .milliseconds(200))
            let (newA, newB) = try await (pollA, pollB)
            receivedA += newA
            receivedB += newB
        }
        try await a.close()
        // a's leaving makes b rebalance; closing b while its new assignment is still being
        // applied trips an assertion in librdkafka 2.0 (rd_kafka_cgrp_terminated) that aborts
        // the process. So b closes once it owns every partition, as a member would.
        let settleDeadline = ContinuousClock.now + .seconds(60)
        while Set(try b.assignment()) != all && ContinuousClock.now < settleDeadline {
            _ = try await b.poll(maxMessages: 100, timeout: .milliseconds(200))
        }
        try await b.close()
        #expect(receivedA.count + receivedB.count == 40)
        #expect(!receivedA.isEmpty && !receivedB.isEmpty)
        #expect(Set(receivedA.map(\.partition)).isDisjoint(with: Set(receivedB.map(\.partition))))
        #expect(Set((receivedA + receivedB).map { text($0.value) }).count == 40)
        #expect(events.all.contains { $0.hasPrefix("a assigned") } && events.all.contains { $0.hasPrefix("b assigned") })
    }
}

/// Rebalance events as text, collected from the consumers' threads.
final class EventLog: Sendable {
    private let events = Mutex<[String]>([])
    func append(_ who: String, _ event: KafkaRebalanceEvent) {
        let line: String
        switch event {
        case .assigned(let partitions): line = "\(who) assigned \(partitions.map(\.partition).sorted())"
        case .revoked(let partitions, let lost): line = "\(who) revoked \(partitions.map(\.partition).sorted()) lost=\(lost)"
        }
        events.withLock { $0.append(line) }
    }
    var all: [String] { events.withLock { $0 } }
}

import Synchronization

@Suite struct KafkaFaultTests {
    @Test func deliversEverythingThroughBrokerOutagesAndRequestErrors() async throws {
        let cluster = try KafkaMockCluster(brokers: 3, logger: testLogger)
        try cluster.createTopic("faults", partitions: 3, replicationFactor: 3)
        try cluster.setGroupCoordinator("faults", broker: 1)
        let producer = try producer(cluster)
        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(cluster, group: "faults", topics: ["faults"]), logger: testLogger)

        // Retriable errors on produce and fetch: NOT_LEADER_OR_FOLLOWER (6), REQUEST_TIMED_OUT (7).
        cluster.pushRequestErrors(.produce, [6, 7, 7])
        cluster.pushRequestErrors(.fetch, [6, 7])
        var received: [KafkaMessage] = []
        var sent = 0
        let failures = Mutex(0)
        for round in 0..<4 {
            // Brokers fail and leadership moves to the one left, as a cluster elects leaders.
            if round == 1 { try cluster.setBrokerDown(2); try cluster.failOver(to: 1) }
            if round == 2 { try cluster.setBrokerDown(3); try cluster.failOver(to: 1) }
            for _ in 0..<50 {
                let value = Array("event-\(sent)".utf8)
                sent += 1
                try producer.produce(KafkaOutgoingMessage(topic: "faults", value: value)) { result in
                    if case .failure = result { failures.withLock { $0 += 1 } }
                }
            }
            received += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(500))
            try await Task.sleep(for: .seconds(1))
        }
        try await producer.flush(timeout: .seconds(60))
        #expect(failures.withLock { $0 } == 0)
        let deadline = ContinuousClock.now + .seconds(60)
        while Set(received.map { text($0.value) }).count < sent && ContinuousClock.now < deadline {
            received += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(200))
        }
        try await consumer.close()
        #expect(Set(received.map { text($0.value) }) == Set((0..<sent).map { "event-\($0)" }))
        // The idempotent producer writes nothing twice, even when it retried.
        #expect(received.count == sent)
    }
}

@Suite struct KafkaConfigurationTests {
    @Test func refusesUnknownPropertiesNamingThem() {
        let configuration = KafkaConfiguration(bootstrapServers: "127.0.0.1:9", properties: ["no.such.property": "1"])
        let error = #expect(throws: KafkaError.self) { try KafkaProducer(configuration: configuration, logger: testLogger) }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains("no.such.property") == true)
    }

    @Test func refusesBadValuesWithoutEchoingSecrets() {
        let bad = KafkaConfiguration(bootstrapServers: "127.0.0.1:9", properties: ["socket.timeout.ms": "soon"])
        let error = #expect(throws: KafkaError.self) { try KafkaProducer(configuration: bad, logger: testLogger) }
        #expect(error?.message.contains("socket.timeout.ms") == true)

        let secret = KafkaConfiguration(
            bootstrapServers: "127.0.0.1:9",
            properties: ["sasl.password": "hunter2-very-secret", "sasl.username": "app", "security.protocol": "SASL_SSL"])
        #expect(!secret.description.contains("hunter2"))
        #expect(secret.description.contains("sasl.username=app"))
        #expect(secret.redactedProperties["sasl.password"] == "<redacted>")
    }

    @Test func passesPropertiesToLibrdkafka() throws {
        // SASL_SSL with PLAIN is what Azure Event Hubs' Kafka endpoint takes; librdkafka accepts
        // the whole set at creation, so the client is created without connecting anywhere.
        let configuration = KafkaConfiguration(
            bootstrapServers: "example.servicebus.windows.net:9093",
            properties: [
                "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                "sasl.username": "$ConnectionString", "sasl.password": "Endpoint=sb://example/;SharedAccessKey=x",
            ])
        _ = try KafkaProducer(configuration: configuration, logger: testLogger)
        // An invalid enum value proves the property reached librdkafka's validation.
        let invalid = KafkaConfiguration(bootstrapServers: "127.0.0.1:9", properties: ["security.protocol": "CARRIER_PIGEON"])
        #expect(throws: KafkaError.self) { try KafkaProducer(configuration: invalid, logger: testLogger) }
    }
}
