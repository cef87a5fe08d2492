import CRdKafka
import Foundation
import Logging
import Posix
import Synchronization

/// Carries a message's delivery callback through librdkafka as the message's opaque pointer.
private final class DeliveryBox: Sendable {
    let completion: @Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void
    init(_ completion: @escaping @Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void) {
        self.completion = completion
    }
}

/// A Kafka producer with delivery reports.
///
/// A thread of its own serves librdkafka's delivery reports, so completions arrive without
/// anyone polling. ``send(_:)`` awaits the report of one message; ``produce(_:onDelivery:)``
/// queues without waiting, for bulk producing.
public final class KafkaProducer: Sendable {
    private let client: RdKafkaClient
    private let thread: DedicatedThread
    private let running = Mutex(true)
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: bootstrap servers and librdkafka properties.
    ///   - idempotent: `enable.idempotence` (no duplicates on retries inside librdkafka).
    public init(configuration: KafkaConfiguration, logger: Logger, idempotent: Bool = true) throws {
        var defaults: [(String, String)] = [
            ("client.id", "faultline"),
            ("linger.ms", "5"),
            ("message.timeout.ms", "60000"),
        ]
        if idempotent { defaults.append(("enable.idempotence", "true")) }
        let conf = try configuration.makeConf(defaults: defaults)
        rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback)
        self.client = try RdKafkaClient(kind: .producer, conf: conf, context: CallbackContext(logger: logger, rebalance: nil))
        self.logger = logger
        self.thread = DedicatedThread(name: "kafka-producer")
        schedulePoll()
    }

    deinit {
        running.withLock { $0 = false }
        thread.shutdown()
    }

    /// Serves delivery reports every 100 ms, between other jobs of the producer's thread.
    private func schedulePoll() {
        thread.submit { [weak self] in
            guard let self, self.running.withLock({ $0 }) else { return }
            rd_kafka_poll(self.client.pointer, 100)
            self.schedulePoll()
        }
    }

    /// Queues a message without waiting for it to be delivered.
    ///
    /// - Parameter onDelivery: called once, on the producer's thread, with where the message
    ///   was stored or why it could not be.
    /// - Throws: ``KafkaError`` with code ``KafkaError/Code/queueFull`` when librdkafka's local
    ///   queue is full (wait a little and try again), or another error when the message is
    ///   refused at once (unknown partition, too large…).
    public func produce(
        _ message: KafkaOutgoingMessage,
        onDelivery: (@Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void)? = nil
    ) throws {
        var headers: OpaquePointer?
        if !message.headers.isEmpty {
            headers = rd_kafka_headers_new(message.headers.count)
            for header in message.headers {
                if let value = header.value {
                    value.withUnsafeBytes { _ = rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let box = onDelivery.map { Unmanaged.passRetained(DeliveryBox($0)).toOpaque() }
        let error: OpaquePointer? = message.value.withUnsafeBytes { value in
            withOptionalBytes(message.key) { key in
                CRdKafka_produce(
                    client.pointer, message.topic, message.partition ?? RD_KAFKA_PARTITION_UA,
                    key?.baseAddress, key?.count ?? 0, value.baseAddress, value.count, headers, box)
            }
        }
        if let error {
            // librdkafka took neither the headers nor the opaque pointer.
            if let headers { rd_kafka_headers_destroy(headers) }
            if let box { Unmanaged<DeliveryBox>.fromOpaque(box).release() }
            throw KafkaError(consuming: error, operation: "produce")
        }
    }

    /// Queues a message like ``produce(_:onDelivery:)``, but waits for room while the local
    /// queue is full instead of throwing. For bulk producing.
    public func enqueue(
        _ message: KafkaOutgoingMessage,
        onDelivery: (@Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void)? = nil
    ) async throws {
        while true {
            do {
                return try produce(message, onDelivery: onDelivery)
            } catch let error as KafkaError where error.code == .queueFull {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    /// Produces a message and waits for its delivery report.
    public func send(_ message: KafkaOutgoingMessage) async throws -> KafkaDeliveryReport {
        while true {
            do {
                return try await withCheckedThrowingContinuation { continuation in
                    do {
                        try produce(message) { continuation.resume(with: $0) }
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            } catch let error as KafkaError where error.code == .queueFull {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    /// Waits until every queued message is delivered or failed, at most `timeout`.
    ///
    /// - Throws: ``KafkaError`` (`_TIMED_OUT`) when messages are still queued after `timeout`.
    public func flush(timeout: Duration) async throws {
        let client = self.client
        // rd_kafka_flush blocks: run it on a thread of its own so deliveries keep flowing.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let thread = Thread {
                let err = rd_kafka_flush(client.pointer, timeout.milliseconds)
                if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    continuation.resume()
                } else {
                    continuation.resume(throwing: KafkaError(err, operation: "flush"))
                }
            }
            thread.name = "kafka-flush"
            thread.start()
        }
    }

    /// Messages queued in librdkafka and not yet delivered.
    public var queuedCount: Int { Int(rd_kafka_outq_len(client.pointer)) }

    /// Broker-side metadata: topic names and partition counts.
    public func topics(timeout: Duration = .seconds(10)) async throws -> [String: Int] {
        try await thread.run { [client] in try client.metadata(timeout: timeout) }
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

private let deliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
    let m = message.pointee
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        box.completion(.success(KafkaDeliveryReport(
            topic: m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "",
            partition: m.partition, offset: m.offset)))
    } else {
        box.completion(.failure(KafkaError(m.err, operation: "deliver")))
    }
}
