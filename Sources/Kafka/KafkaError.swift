import CRdKafka

/// An error from librdkafka or from this wrapper.
///
/// `description` is safe to log: it never holds message payloads or configuration values.
public struct KafkaError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What went wrong, in kinds a caller can act on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let raw: String
        public var description: String { raw }

        /// A configuration property was refused.
        public static let configuration = Code(raw: "configuration")
        /// librdkafka reported an error (see ``KafkaError/rdKafkaCode``).
        public static let rdKafka = Code(raw: "rdkafka")
        /// The producer's local queue is full; poll and try again.
        public static let queueFull = Code(raw: "queue full")
        /// The client was closed.
        public static let closed = Code(raw: "closed")
        /// The embedded cluster could not be created or changed.
        public static let mockCluster = Code(raw: "mock cluster")
    }

    public let code: Code
    /// librdkafka's `rd_kafka_resp_err_t`, when it has one.
    public let rdKafkaCode: Int32?
    /// A message safe to log.
    public let message: String
    /// The operation that failed, e.g. `"commit"`.
    public let operation: String
    public let isFatal: Bool
    public let isRetriable: Bool

    public init(
        _ code: Code, _ message: String, operation: String, rdKafkaCode: Int32? = nil,
        isFatal: Bool = false, isRetriable: Bool = false
    ) {
        self.code = code
        self.message = message
        self.operation = operation
        self.rdKafkaCode = rdKafkaCode
        self.isFatal = isFatal
        self.isRetriable = isRetriable
    }

    /// An error from a `rd_kafka_resp_err_t`.
    init(_ err: rd_kafka_resp_err_t, operation: String) {
        self.init(
            err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? .queueFull : .rdKafka,
            String(cString: rd_kafka_err2str(err)), operation: operation,
            rdKafkaCode: err.rawValue, isFatal: err == RD_KAFKA_RESP_ERR__FATAL)
    }

    /// An error from a `rd_kafka_error_t`, which this initialiser destroys.
    init(consuming error: OpaquePointer, operation: String) {
        defer { rd_kafka_error_destroy(error) }
        let err = rd_kafka_error_code(error)
        self.init(
            err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? .queueFull : .rdKafka,
            String(cString: rd_kafka_error_string(error)), operation: operation,
            rdKafkaCode: err.rawValue, isFatal: rd_kafka_error_is_fatal(error) != 0,
            isRetriable: rd_kafka_error_is_retriable(error) != 0)
    }

    /// librdkafka's symbolic name of ``rdKafkaCode``, e.g. `"_TRANSPORT"`.
    public var rdKafkaName: String? {
        rdKafkaCode.map { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: $0))) }
    }

    public var description: String {
        "Kafka \(operation) failed: \(message)"
    }

    public var debugDescription: String {
        "KafkaError(code: \(code), rdkafka: \(rdKafkaName ?? "-"), operation: \(operation), "
            + "message: \(message), fatal: \(isFatal), retriable: \(isRetriable))"
    }
}
