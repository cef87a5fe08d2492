import Foundation
import TestSupport
import Kafka
import Testing

/// A real outside Kafka client (kcat, from Debian) talks to `faultline dev-kafka`.
@Suite struct ExternalClientTests {
    @Test func kcatProducesIntoDevKafkaAndFaultlineConsumes() async throws {
        let devKafka = Process()
        devKafka.executableURL = URL(fileURLWithPath: try faultlineBinary())
        devKafka.arguments = ["dev-kafka", "--brokers", "1", "--partitions", "2", "--topic", "external"]
        let stdout = Pipe()
        devKafka.standardOutput = stdout
        try devKafka.run()
        defer { if devKafka.isRunning { devKafka.terminate() } }

        let bootstrap = try readLine(stdout.fileHandleForReading)
        #expect(bootstrap.hasPrefix("127.0.0.1:"))

        let kcat = Process()
        kcat.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        kcat.arguments = ["-P", "-b", bootstrap, "-t", "external", "-K", ":", "-H", "source=kcat"]
        let input = Pipe()
        kcat.standardInput = input
        try kcat.run()
        let lines = (0..<10).map { "k\($0):{\"message\":\"hello \($0)\"}" }.joined(separator: "\n") + "\n"
        input.fileHandleForWriting.write(Data(lines.utf8))
        try input.fileHandleForWriting.close()
        try await onThread { kcat.waitUntilExit() }
        #expect(kcat.terminationStatus == 0)

        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                kafka: KafkaConfiguration(bootstrapServers: bootstrap), groupID: "external", topics: ["external"],
                sessionTimeout: .seconds(6)),
            logger: testLogger)
        let messages = try await consume(consumer, count: 10)
        try await consumer.close()
        #expect(Set(messages.map { text($0.value) }) == Set((0..<10).map { "{\"message\":\"hello \($0)\"}" }))
        #expect(Set(messages.compactMap { $0.key.map(text) }) == Set((0..<10).map { "k\($0)" }))
        #expect(messages.allSatisfy { $0.header("source")?.stringValue == "kcat" })

        devKafka.terminate()  // SIGTERM: a clean exit
        try await onThread { devKafka.waitUntilExit() }
        #expect(devKafka.terminationStatus == 0)
    }

    private func readLine(_ handle: FileHandle) throws -> String {
        var bytes: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1)
            guard let byte = chunk.first else { throw TestFailure("dev-kafka closed its output: \(text(bytes))") }
            if byte == UInt8(ascii: "\n") { return text(bytes) }
            bytes.append(byte)
        }
    }
}
