import App
import Alerts
import AnalysisJob
import Domain
import Foundation
import Ingest
import Kafka
import Logging
import Posix
import Postgres
import ServiceLifecycle
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `faultline bench alert-latency`: from the first event of a spike entering Kafka to its
/// signed webhook arriving at a receiver, through the real pipeline (ingest, analysis at its
/// configured interval, the outbox and the dispatcher), several times.
public enum AlertLatencyBenchmark {
    public struct Result: Sendable {
        public var latencies: [Double]
        public var interval: Duration

        public var json: String {
            let sorted = latencies.sorted()
            let p50 = sorted.isEmpty ? 0 : sorted[(sorted.count - 1) / 2]
            func round(_ value: Double) -> String { String(format: "%.3f", value) }
            return #"{"benchmark":"alert-latency","runs":\#(latencies.count),"latencies_s":[\#(latencies.map(round).joined(separator: ","))],"p50_s":\#(round(p50)),"max_s":\#(round(sorted.last ?? 0)),"analysis_interval_s":\#(round(interval.seconds)),"goal_s":62}"#
        }
    }

    public static func run(runs: Int, interval: Duration, directory: String, logger: Logger,
                           progress: @escaping @Sendable (String) -> Void) async throws -> Result {
        let postgres = LocalPostgresCluster(directory: directory + "/postgres")
        try await offloaded("bench-postgres") {
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: directory + "/postgres")
            try postgres.start()
            try postgres.createDatabase("alerts", logger: logger)
        }
        defer { try? postgres.stop() }
        let kafka = try KafkaMockCluster(brokers: 1, logger: logger)
        for (topic, partitions) in [("errors", 4), ("deployments", 1), ("errors.dlq", 1)] {
            try kafka.createTopic(topic, partitions: partitions)
        }
        var configuration = FaultlineConfiguration()
        configuration.databaseURL = postgres.url(database: "alerts")
        configuration.migrationsDirectory = try ResourceLocator.migrations(configured: nil)
        configuration.kafkaBrokers = kafka.bootstrapServers
        configuration.kafkaProperties["session.timeout.ms"] = "6000"
        configuration.analysisInterval = interval
        configuration.ingestBatchDelay = .milliseconds(100)
        configuration.webhookAllowPrivate = true
        try await Faultline.migrate(configuration, logger: logger)

        let receiver = try BenchReceiver()
        defer { receiver.stop() }
        let url = "http://127.0.0.1:\(receiver.port)/hook"
        let postgresConfiguration = configuration.postgres
        try await offloaded("bench-webhook") {
            let connection = try PostgresConnection.connect(postgresConfiguration, logger: logger)
            _ = try WebhookStore.create(WebhookInput(
                url: url, secret: "bench-secret", format: "generic",
                filtersJSON: #"{"kinds": ["spike"], "cooldown": 0, "throttle": 0}"#, enabled: true), on: connection)
        }

        // Forty-five minutes of history for one service per run: the detector's baseline.
        progress("producing history")
        var producerConfiguration = configuration.kafka
        producerConfiguration.properties["compression.type"] = "zstd"
        producerConfiguration.properties["linger.ms"] = "5"
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let services = (0..<runs).map { "bench-\($0)" }
        let now = Date()
        var random = SplitMix64(seed: 11)
        var sequence = 0
        for minute in 0..<45 {
            let start = now.addingTimeInterval(Double(minute - 45) * 60)
            for service in services {
                let count = 15 + Int(random.next() % 11)
                for n in 0..<count {
                    sequence += 1
                    try await producer.enqueue(KafkaOutgoingMessage(topic: "errors", value: Array(event(
                        service: service, at: start.addingTimeInterval(Double(n) * 60 / Double(count)), sequence: sequence,
                        errorType: "ValidationError", message: "order \(random.next() % 10_000) failed validation").utf8)))
                }
            }
        }
        try await producer.flush(timeout: .seconds(60))
        let history = sequence

        let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
        let ingest = IngestRole(configuration: configuration.ingest, pool: pool, producer: producer, logger: logger)
        let analysis = AnalysisService(configuration: try Faultline.analysisConfiguration(configuration), postgres: configuration.postgres,
                                       logger: logger)
        let alerts = AlertDispatcher(configuration: configuration.alerts, postgres: configuration.postgres, logger: logger)
        let ingestGroup = ServiceGroup(configuration: .init(services: ingest.services.map { .init(service: $0) }, logger: logger))
        let ingesting = Task { try await ingestGroup.run() }
        progress("ingesting \(history) events of history")
        while ingest.ingest.status.eventsInserted < history { try await Task.sleep(for: .milliseconds(100)) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: analysis), .init(service: alerts)], logger: logger))
        let running = Task { try await group.run() }
        while analysis.status.runs < 2 { try await Task.sleep(for: .milliseconds(100)) }

        var latencies: [Double] = []
        for (index, service) in services.enumerated() {
            // Runs start at a random point of the analysis cycle and of the minute.
            try await Task.sleep(for: .milliseconds(Int64.random(in: 1000...Int64(max(1001, interval.seconds * 1000)))))
            let started = Date()
            let spike = Task {
                var n = 0
                while !Task.isCancelled && n < 3000 {
                    for _ in 0..<3 {
                        n += 1
                        try await producer.enqueue(KafkaOutgoingMessage(topic: "errors", value: Array(event(
                            service: service, at: Date(), sequence: 1_000_000 * (index + 1) + n, errorType: "TimeoutException",
                            message: "timeout after \(5000 + n % 900)ms calling \(service)-db:5432").utf8)))
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            let deadline = Date().addingTimeInterval(180)
            var arrival: Date?
            while arrival == nil && Date() < deadline {
                arrival = receiver.firstArrival(containing: "\"service\":\"\(service)\"", after: started)
                if arrival == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            spike.cancel()
            _ = try? await spike.value
            guard let arrival else { throw ToolError("no webhook for the spike of \(service) within 180 s") }
            latencies.append(arrival.timeIntervalSince(started))
            progress("run \(index + 1): \(String(format: "%.2f", arrival.timeIntervalSince(started))) s")
        }
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        await ingestGroup.triggerGracefulShutdown()
        _ = try? await ingesting.value
        await pool.close()
        return Result(latencies: latencies, interval: interval)
    }

    static func event(service: String, at time: Date, sequence: Int, errorType: String, message: String) -> String {
        let id = StableHash.uuid("bench-alert/\(sequence)").uuidString.lowercased()
        return #"{"event_id":"\#(id)","timestamp":"\#(RFC3339.format(time))","service":"\#(service)","environment":"production","version":"1.0.0","error_type":"\#(errorType)","message":"\#(message)"}"#
    }
}

/// A minimal HTTP receiver on loopback (raw POSIX sockets, a thread per connection) that
/// notes when each request arrived and answers 200.
final class BenchReceiver: Sendable {
    /// How it treats requests: the soak makes it flap between the three.
    enum Mode: Sendable {
        case answering, failing, dropping
    }

    let port: Int
    private let socket: Int32
    private let thread = DedicatedThread(name: "bench-receiver")
    private let received = Mutex<[(time: Date, body: String)]>([])
    private let state = Mutex<(mode: Mode, requests: Int)>((.answering, 0))

    var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// Requests read, whatever the answer.
    var requestCount: Int { state.withLock { $0.requests } }

    init() throws {
        let fd = try blockingSyscall("socket") { Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                try blockingSyscall("bind") { bind(fd, raw, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        _ = try blockingSyscall("listen") { listen(fd, 16) }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = try withUnsafeMutablePointer(to: &bound) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                try blockingSyscall("getsockname") { getsockname(fd, raw, &length) }
            }
        }
        socket = fd
        port = Int(UInt16(bigEndian: bound.sin_port))
        thread.submit { [self] in serve() }
    }

    func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
        thread.shutdown()
    }

    func firstArrival(containing text: String, after: Date) -> Date? {
        received.withLock { list in list.first { $0.time >= after && $0.body.contains(text) }?.time }
    }

    private func serve() {
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // closed
            }
            // A thread per connection: senders keep connections alive, and each worker of the
            // dispatcher has its own.
            let thread = Thread { [self] in
                handle(client)
                close(client)
            }
            thread.start()
        }
    }

    /// Reads one or more requests of a kept-alive connection.
    private func handle(_ client: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // A whole request: headers, then Content-Length bytes.
            while true {
                if let end = firstIndex(of: [13, 10, 13, 10], in: buffer) {
                    let head = String(decoding: buffer[..<end], as: UTF8.self).lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if buffer.count >= end + 4 + length {
                        let mode = state.withLock { state in
                            state.requests += 1
                            return state.mode
                        }
                        if mode == .dropping { return }
                        let body = String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self)
                        buffer.removeFirst(end + 4 + length)
                        if mode == .failing {
                            let answer = Array("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".utf8)
                            _ = answer.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                            continue
                        }
                        let now = Date()
                        received.withLock { $0.append((now, body)) }
                        let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
                        _ = answer.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                        continue
                    }
                }
                break
            }
            let count = chunk.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            if count <= 0 { return }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

}

/// Where `needle` first starts in `haystack` (the end of an HTTP head, for the benchmarks' own
/// small clients and receivers).
func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    for index in 0...(haystack.count - needle.count) where haystack[index..<(index + needle.count)].elementsEqual(needle) {
        return index
    }
    return nil
}
