import App
import Foundation
import Kafka
import Logging
import Testing

/// The App's replayer produces a dead letter's original key, value and headers to its topic
/// on the embedded Kafka cluster.
@Suite struct DeadLetterReplayTests {
    @Test func theKafkaReplayerProducesTheOriginalMessage() async throws {
        var logger = Logger(label: "replay-tests")
        logger.logLevel = .critical
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        try cluster.createTopic("errors", partitions: 1)
        let kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["reconnect.backoff.max.ms": "500"])
        let producer = try KafkaProducer(configuration: kafka, logger: logger)
        let replayer = KafkaDeadLetterReplayer(producer: producer)
        let value: [UInt8] = [0x7B, 0xFF, 0x00, 0x7D]
        try await replayer.replay(topic: "errors", key: [9, 8], value: value,
                                  headers: [("content-type", Array("application/json".utf8)), ("empty", nil)])

        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(kafka: kafka, groupID: "replay", topics: ["errors"], sessionTimeout: .seconds(6)),
            logger: logger)
        let deadline = ContinuousClock.now + .seconds(30)
        var messages: [KafkaMessage] = []
        while messages.isEmpty && ContinuousClock.now < deadline {
            messages += try await consumer.poll(maxMessages: 1, timeout: .milliseconds(200))
        }
        try await consumer.close()
        let message = try #require(messages.first)
        #expect(message.value == value && message.key == [9, 8])
        #expect(message.header("content-type")?.stringValue == "application/json")
        #expect(message.headers.map(\.name) == ["content-type", "empty"])
    }
}
