import Foundation
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

/// The faultline executable built with the tests.
func faultlineBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["FAULTLINE_BIN"] { return path }
    let path = FileManager.default.currentDirectoryPath + "/.build/debug/faultline"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestFailure("faultline binary not found; run the tests with scripts/test")
    }
    return path
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs blocking work (waiting for a child process, initdb, pg_ctl) on a thread of its own, so
/// that it does not hold one of the few threads all concurrently running tests share.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
