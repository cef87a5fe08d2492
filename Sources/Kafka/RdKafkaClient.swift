import CRdKafka
import Foundation
import Logging

/// Receives librdkafka's callbacks for one client. Its address is the client's opaque pointer.
final class CallbackContext: Sendable {
    let logger: Logger
    /// Set for consumers: reacts to assignment changes.
    let rebalance: RebalanceHandler?

    init(logger: Logger, rebalance: RebalanceHandler?) {
        self.logger = logger
        self.rebalance = rebalance
    }
}

/// Owns one `rd_kafka_t` and destroys it in `deinit`.
///
/// `@unchecked Sendable` is honest: librdkafka handles are thread-safe. The handle keeps its
/// callback context alive until after `rd_kafka_destroy`, which may still call back into it.
final class RdKafkaClient: @unchecked Sendable {
    let pointer: OpaquePointer
    private let context: CallbackContext

    enum Kind {
        case producer, consumer

        var raw: rd_kafka_type_t { self == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER }
    }

    /// Creates the client. On success librdkafka owns `conf`; on failure the conf is destroyed.
    init(kind: Kind, conf: OpaquePointer, context: CallbackContext) throws {
        self.context = context
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_log_cb(conf, logCallback)
        rd_kafka_conf_set_error_cb(conf, errorCallback)
        var errstr = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(kind.raw, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(.configuration, String(errorBuffer: errstr), operation: "create client")
        }
        self.pointer = handle
    }

    deinit {
        rd_kafka_destroy(pointer)
    }

    /// Topic names and partition counts known to the cluster.
    func metadata(timeout: Duration) throws -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(pointer, 1, nil, &metadata, timeout.milliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(err, operation: "metadata")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var topics: [String: Int] = [:]
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[index]
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            topics[String(cString: topic.topic)] = Int(topic.partition_cnt)
        }
        return topics
    }
}

extension Duration {
    /// Whole milliseconds, clamped to `Int32`, as librdkafka's timeouts take them.
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}

private func context(_ rk: OpaquePointer?) -> CallbackContext? {
    guard let rk, let opaque = rd_kafka_opaque(rk) else { return nil }
    return Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
}

/// librdkafka's log lines go to the client's Logger instead of stderr.
private let logCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    rk, level, facility, message in
    guard let logger = context(rk)?.logger else { return }
    let swiftLevel: Logger.Level =
        switch level {
        case ...3: .error
        case 4: .warning
        case 5, 6: .info
        default: .debug
        }
    logger.log(
        level: swiftLevel, "\(message.map { String(cString: $0) } ?? "")",
        metadata: ["rdkafka.facility": "\(facility.map { String(cString: $0) } ?? "")"])
}

/// Errors librdkafka reports outside a call (brokers down, authentication failures…). Most
/// are transient and librdkafka recovers by itself, so they are logged, not thrown.
private let errorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    rk, err, reason, _ in
    guard let logger = context(rk)?.logger else { return }
    let code = rd_kafka_resp_err_t(rawValue: err)
    logger.warning(
        "Kafka client error: \(reason.map { String(cString: $0) } ?? "")",
        metadata: ["rdkafka.error": "\(String(cString: rd_kafka_err2name(code)))"])
}

extension String {
    /// The NUL-terminated text librdkafka wrote into an error buffer.
    init(errorBuffer: [CChar]) {
        self = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
