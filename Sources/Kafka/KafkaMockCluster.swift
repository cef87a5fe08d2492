import CRdKafka
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An embedded Kafka cluster: librdkafka's mock cluster, a real Kafka-protocol broker set on
/// 127.0.0.1 that any Kafka client can use. For the demo, development and tests.
///
/// Mind its limits: each partition keeps only its newest 5 MiB (use compression when moving
/// more), and it keeps nothing on disk.
///
/// ```swift
/// let cluster = try KafkaMockCluster(brokers: 3, logger: logger)
/// try cluster.createTopic("errors", partitions: 6)
/// print(cluster.bootstrapServers)  // 127.0.0.1:39423,127.0.0.1:42211,…
/// ```
public final class KafkaMockCluster: Sendable {
    private let cluster: MockClusterHandle
    /// Topics created through this object, with their partition counts.
    private let topics = Mutex<[String: Int]>([:])
    public let brokerCount: Int
    public let bootstrapServers: String

    public init(brokers: Int = 1, logger: Logger) throws {
        guard (1...64).contains(brokers) else {
            throw KafkaError(.mockCluster, "broker count must be between 1 and 64", operation: "create cluster")
        }
        // The mock cluster is hosted by a client handle; a producer is the lightest. It has no
        // brokers of its own to talk to, which librdkafka would warn about at notice level.
        let conf = try KafkaConfiguration(bootstrapServers: "").makeConf(defaults: [("log_level", "4")])
        let client = try RdKafkaClient(kind: .producer, conf: conf, context: CallbackContext(logger: logger, rebalance: nil))
        guard let cluster = rd_kafka_mock_cluster_new(client.pointer, Int32(brokers)) else {
            throw KafkaError(.mockCluster, "rd_kafka_mock_cluster_new failed", operation: "create cluster")
        }
        self.cluster = MockClusterHandle(pointer: cluster, host: client)
        self.brokerCount = brokers
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    /// Creates a topic. Creating one that exists is an error.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        let err = rd_kafka_mock_topic_create(cluster.pointer, name, Int32(partitions), Int32(min(replicationFactor, brokerCount)))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "create topic \(name)") }
        topics.withLock { $0[name] = partitions }
    }

    /// Makes broker `id` the leader of every partition of the topics created here, as a real
    /// cluster elects a new leader when one fails: take a broker down, then fail over to a
    /// live one, and clients find the new leaders through their metadata.
    ///
    /// (There is no bringing a broker back up: the mock binds its port again, and librdkafka
    /// aborts the whole process if any socket took that port meanwhile.)
    public func failOver(to id: Int32) throws {
        for (topic, partitions) in topics.withLock({ $0 }) {
            for partition in 0..<Int32(partitions) {
                let err = rd_kafka_mock_partition_set_leader(cluster.pointer, topic, partition, id)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "fail over \(topic)/\(partition)") }
            }
        }
    }

    /// Makes broker `id` the coordinator of consumer group `group` (by default the mock picks
    /// one by the group's hash, which may be a broker a test takes down).
    public func setGroupCoordinator(_ group: String, broker id: Int32) throws {
        let err = rd_kafka_mock_coordinator_set(cluster.pointer, "group", group, id)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "set coordinator of \(group)") }
    }

    /// Takes broker `id` (1…brokers) down: its connections close and it refuses new ones.
    public func setBrokerDown(_ id: Int32) throws {
        let err = rd_kafka_mock_broker_set_down(cluster.pointer, id)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "broker down") }
    }

    /// Adds a round-trip delay to every response of broker `id`.
    public func setBrokerRTT(_ id: Int32, _ rtt: Duration) throws {
        let err = rd_kafka_mock_broker_set_rtt(cluster.pointer, id, Int32(rtt.milliseconds))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "broker rtt") }
    }

    /// Makes the next requests of a kind fail, one error each, in order.
    ///
    /// - Parameters:
    ///   - apiKey: the Kafka API key (``KafkaAPIKey``).
    ///   - errors: Kafka protocol error codes, e.g. 7 (request timed out) or 6 (not leader).
    public func pushRequestErrors(_ apiKey: KafkaAPIKey, _ errors: [Int32]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
        codes.withUnsafeBufferPointer {
            rd_kafka_mock_push_request_errors_array(cluster.pointer, apiKey.rawValue, $0.count, $0.baseAddress)
        }
    }

    /// Forgets injected request errors of a kind.
    public func clearRequestErrors(_ apiKey: KafkaAPIKey) {
        rd_kafka_mock_clear_request_errors(cluster.pointer, apiKey.rawValue)
    }
}

/// Kafka protocol API keys used for fault injection.
public struct KafkaAPIKey: Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    public static let produce = KafkaAPIKey(rawValue: 0)
    public static let fetch = KafkaAPIKey(rawValue: 1)
    public static let metadata = KafkaAPIKey(rawValue: 3)
    public static let offsetCommit = KafkaAPIKey(rawValue: 8)
    public static let offsetFetch = KafkaAPIKey(rawValue: 9)
    public static let findCoordinator = KafkaAPIKey(rawValue: 10)
    public static let joinGroup = KafkaAPIKey(rawValue: 11)
    public static let heartbeat = KafkaAPIKey(rawValue: 12)
}

/// Owns one `rd_kafka_mock_cluster_t` and the client hosting it. `@unchecked Sendable`: the
/// mock cluster serialises its operations on its own thread.
private final class MockClusterHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// librdkafka aborts if a client is destroyed while it still hosts a mock cluster, so the
    /// host is released only after `deinit` has destroyed the cluster.
    private let host: RdKafkaClient

    init(pointer: OpaquePointer, host: RdKafkaClient) {
        self.pointer = pointer
        self.host = host
    }

    deinit { rd_kafka_mock_cluster_destroy(pointer) }
}
