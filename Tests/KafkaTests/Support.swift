import Foundation
import TestSupport
import Kafka
import Logging

let testLogger: Logger = {
    var logger = Logger(label: "kafka-tests")
    logger.logLevel = .warning
    return logger
}()

/// Consumer settings that suit the mock cluster: quick rejoins and reconnects.
func consumerConfiguration(_ cluster: KafkaMockCluster, group: String, topics: [String]) -> KafkaConsumerConfiguration {
    KafkaConsumerConfiguration(
        kafka: KafkaConfiguration(
            bootstrapServers: cluster.bootstrapServers,
            properties: ["reconnect.backoff.max.ms": "500", "topic.metadata.refresh.interval.ms": "1000"]),
        groupID: group, topics: topics, sessionTimeout: .seconds(6))
}

func producer(_ cluster: KafkaMockCluster) throws -> KafkaProducer {
    try KafkaProducer(
        configuration: KafkaConfiguration(
            bootstrapServers: cluster.bootstrapServers, properties: ["reconnect.backoff.max.ms": "500"]),
        logger: testLogger)
}

/// Polls until `count` messages arrived or `timeout` passed.
func consume(_ consumer: KafkaConsumer, count: Int, timeout: Duration = .seconds(30)) async throws -> [KafkaMessage] {
    let deadline = ContinuousClock.now + timeout
    var messages: [KafkaMessage] = []
    while messages.count < count && ContinuousClock.now < deadline {
        messages += try await consumer.poll(maxMessages: count - messages.count, timeout: .milliseconds(200))
    }
    return messages
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

