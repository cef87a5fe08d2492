import CRdKafka
import Foundation
import Logging
import Posix
import Synchronization

/// A change of the partitions this consumer owns.
public enum KafkaRebalanceEvent: Sendable, Equatable {
    case assigned([KafkaTopicPartition])
    /// Partitions taken away. Offsets stored before this were committed first, unless the
    /// assignment was lost (the consumer was evicted), in which case another member owns them.
    case revoked([KafkaTopicPartition], lost: Bool)
}

/// Settings of a consumer-group member.
public struct KafkaConsumerConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var groupID: String
    public var topics: [String]
    /// Where a group with no committed offset starts: `"earliest"` or `"latest"`.
    public var autoOffsetReset: String
    public var sessionTimeout: Duration
    public var maxPollInterval: Duration

    public init(
        kafka: KafkaConfiguration, groupID: String, topics: [String],
        autoOffsetReset: String = "earliest", sessionTimeout: Duration = .seconds(45),
        maxPollInterval: Duration = .seconds(300)
    ) {
        self.kafka = kafka
        self.groupID = groupID
        self.topics = topics
        self.autoOffsetReset = autoOffsetReset
        self.sessionTimeout = sessionTimeout
        self.maxPollInterval = maxPollInterval
    }
}

/// Calls the user's listener and applies assignments from inside librdkafka's rebalance callback.
final class RebalanceHandler: Sendable {
    let listener: (@Sendable (KafkaRebalanceEvent) -> Void)?
    init(listener: (@Sendable (KafkaRebalanceEvent) -> Void)?) { self.listener = listener }
}

/// A member of a Kafka consumer group with manual offset commits.
///
/// Offsets are never committed automatically: call ``commit(_:)`` once the messages before
/// those positions are safely processed (for Faultline: after the database transaction that
/// holds them has committed). When partitions are revoked, the positions passed to `commit`
/// that could not be committed yet are committed before the partitions are given up.
///
/// Every call into librdkafka that may block runs on the consumer's own thread, never on
/// Swift's cooperative pool; the `async` methods await that thread.
///
/// ```swift
/// let consumer = try KafkaConsumer(configuration: config, logger: logger)
/// while running {
///     let batch = try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(200))
///     try await store(batch)
///     try await consumer.commit(KafkaTopicPartitionOffset.after(batch))
/// }
/// try await consumer.close()
/// ```
public final class KafkaConsumer: Sendable {
    private let client: RdKafkaClient
    private let thread: DedicatedThread
    private let logger: Logger
    private let closed = Mutex(false)
    /// Committed offsets of partitions with no position yet, for ``lag()``; refreshed once a minute.
    private let committedForLag = Mutex<(offsets: [KafkaTopicPartition: Int64], at: ContinuousClock.Instant?)>(([:], nil))

    /// Joins the group and subscribes to the configured topics.
    ///
    /// - Parameters:
    ///   - onRebalance: called on the consumer's thread during ``poll(maxMessages:timeout:)``
    ///     when partitions are assigned or revoked.
    public init(
        configuration: KafkaConsumerConfiguration, logger: Logger,
        onRebalance: (@Sendable (KafkaRebalanceEvent) -> Void)? = nil
    ) throws {
        let conf = try configuration.kafka.makeConf(defaults: [
            ("client.id", "faultline"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            ("session.timeout.ms", "\(configuration.sessionTimeout.milliseconds)"),
            ("max.poll.interval.ms", "\(configuration.maxPollInterval.milliseconds)"),
        ])
        do {
            try KafkaConfiguration.set(conf, "group.id", configuration.groupID)
            try KafkaConfiguration.set(conf, "auto.offset.reset", configuration.autoOffsetReset)
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }
        rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        let context = CallbackContext(logger: logger, rebalance: RebalanceHandler(listener: onRebalance))
        self.client = try RdKafkaClient(kind: .consumer, conf: conf, context: context)
        self.logger = logger
        self.thread = DedicatedThread(name: "kafka-consumer")

        // Messages of all subscribed partitions arrive through rd_kafka_consumer_poll.
        rd_kafka_poll_set_consumer(client.pointer)
        // No topics: an observer of the group's committed offsets that never joins it.
        guard !configuration.topics.isEmpty else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(configuration.topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in configuration.topics {
            rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        }
        let err = rd_kafka_subscribe(client.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "subscribe") }
    }

    deinit {
        thread.shutdown()
    }

    /// Waits up to `timeout` for messages and returns at most `maxMessages` of them (possibly
    /// none). Rebalance callbacks run inside this call.
    public func poll(maxMessages: Int, timeout: Duration) async throws -> [KafkaMessage] {
        try checkOpen("poll")
        return try await thread.run { [self] in try pollBlocking(maxMessages: maxMessages, timeout: timeout) }
    }

    /// Like ``poll(maxMessages:timeout:)`` for callers on a thread of their own; blocks.
    public func pollBlocking(maxMessages: Int, timeout: Duration) throws -> [KafkaMessage] {
        try checkOpen("poll")
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(min(maxMessages, 4096))
        var wait = timeout.milliseconds
        while messages.count < maxMessages {
            guard let raw = rd_kafka_consumer_poll(client.pointer, wait) else { break }
            wait = 0  // after the first message, take only what is already fetched
            defer { rd_kafka_message_destroy(raw) }
            let err = raw.pointee.err
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                messages.append(KafkaMessage(copying: raw))
            } else if err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                continue
            } else {
                try handleConsumerError(err, raw)
            }
        }
        return messages
    }

    private func handleConsumerError(_ err: rd_kafka_resp_err_t, _ raw: UnsafeMutablePointer<rd_kafka_message_t>) throws {
        if err == RD_KAFKA_RESP_ERR__FATAL {
            var errstr = [CChar](repeating: 0, count: 512)
            let fatal = rd_kafka_fatal_error(client.pointer, &errstr, errstr.count)
            throw KafkaError(.rdKafka, String(errorBuffer: errstr), operation: "consume",
                             rdKafkaCode: fatal.rawValue, isFatal: true)
        }
        // Transport errors, unknown topics and the like: librdkafka retries by itself.
        let text = raw.pointee.payload.map {
            String(decoding: UnsafeRawBufferPointer(start: $0, count: raw.pointee.len), as: UTF8.self)
        } ?? String(cString: rd_kafka_err2str(err))
        logger.warning("Kafka consumer error: \(text)",
                       metadata: ["rdkafka.error": "\(String(cString: rd_kafka_err2name(err)))"])
    }

    /// Commits positions synchronously: each is the offset of the next message to read.
    ///
    /// The positions are stored first, so that if the commit fails (for example while the
    /// group rebalances) they are committed again when the partitions are revoked. Positions of
    /// partitions already revoked are left out (not an error): the new owner reads those
    /// messages again.
    public func commit(_ positions: [KafkaTopicPartitionOffset]) async throws {
        guard !positions.isEmpty else { return }
        try checkOpen("commit")
        try await thread.run { [self] in try commitBlocking(positions) }
    }

    /// Like ``commit(_:)`` for callers on a thread of their own; blocks.
    public func commitBlocking(_ positions: [KafkaTopicPartitionOffset]) throws {
        guard !positions.isEmpty else { return }
        try checkOpen("commit")
        let all = makeList(positions)
        defer { rd_kafka_topic_partition_list_destroy(all) }
        let stored = rd_kafka_offsets_store(client.pointer, all)
        if stored != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.debug("offsets_store: \(String(cString: rd_kafka_err2str(stored)))")
        }
        // Storing fails for partitions no longer assigned (revoked while their messages were
        // processed): those positions are not committed, and their new owner reads the messages
        // again. Committing them would carry the old group generation; answered after this
        // member has rejoined, the refusal (ILLEGAL_GENERATION) would make librdkafka start the
        // whole rebalance over.
        let owned = positions.indices.filter { all.pointee.elems[$0].err == RD_KAFKA_RESP_ERR_NO_ERROR }.map { positions[$0] }
        guard !owned.isEmpty else {
            logger.debug("commit skipped: the partitions are no longer assigned", metadata: ["positions": "\(positions)"])
            return
        }
        let list = owned.count == positions.count ? all : makeList(owned)
        defer { if list != all { rd_kafka_topic_partition_list_destroy(list) } }
        let err = rd_kafka_commit(client.pointer, list, 0)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "commit") }
        for index in 0..<Int(list.pointee.cnt) where list.pointee.elems[index].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(list.pointee.elems[index].err, operation: "commit")
        }
    }

    /// The committed positions of these partitions (`nil` offset: nothing committed).
    public func committed(_ partitions: [KafkaTopicPartition], timeout: Duration = .seconds(10)) async throws
        -> [KafkaTopicPartition: Int64?]
    {
        try await thread.run { [self] in
            let list = makeList(partitions.map { .init(topic: $0.topic, partition: $0.partition, offset: -1) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let err = rd_kafka_committed(client.pointer, list, timeout.milliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "committed") }
            var result: [KafkaTopicPartition: Int64?] = [:]
            for element in UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)) {
                let offset = element.offset
                result[KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)] =
                    offset >= 0 ? offset : nil
            }
            return result
        }
    }

    /// The partitions currently assigned to this member.
    public func assignment() throws -> [KafkaTopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let err = rd_kafka_assignment(client.pointer, &list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { throw KafkaError(err, operation: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return partitions(of: list)
    }

    /// How many messages each assigned partition holds beyond this member's position: the
    /// high watermark of the last fetch minus the next offset to consume (or, before the first
    /// message, the committed offset). Partitions whose watermark is not known yet are left out.
    public func lag() async throws -> [KafkaTopicPartition: Int64] {
        try checkOpen("lag")
        return try await thread.run { [self] in try lagBlocking() }
    }

    /// Like ``lag()`` for callers on a thread of their own; blocks for at most a committed-offsets
    /// request when a partition has no position yet.
    public func lagBlocking() throws -> [KafkaTopicPartition: Int64] {
        try checkOpen("lag")
        var assigned: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let err = rd_kafka_assignment(client.pointer, &assigned)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let list = assigned else { throw KafkaError(err, operation: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard list.pointee.cnt > 0 else { return [:] }
        _ = rd_kafka_position(client.pointer, list)
        let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
        if elements.contains(where: { $0.offset < 0 }) {
            // Nothing consumed yet on some partition (a quiet one): its committed offset is where
            // it stands. Asked of the broker at most once a minute, so a quiet topic does not
            // stall the consumer's thread every time lag is read.
            var cached = committedForLag.withLock { $0 }
            let unknown = elements.contains { element in
                element.offset < 0
                    && cached.offsets[KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)] == nil
            }
            if unknown || cached.at.map({ ContinuousClock.now - $0 > .seconds(60) }) ?? true {
                let committed = rd_kafka_topic_partition_list_copy(list)!
                defer { rd_kafka_topic_partition_list_destroy(committed) }
                if rd_kafka_committed(client.pointer, committed, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR {
                    cached = ([:], .now)
                    for element in UnsafeBufferPointer(start: committed.pointee.elems, count: Int(committed.pointee.cnt)) {
                        cached.offsets[KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)] = element.offset
                    }
                    committedForLag.withLock { $0 = cached }
                }
            }
            for index in elements.indices where elements[index].offset < 0 {
                let partition = KafkaTopicPartition(topic: String(cString: elements[index].topic), partition: elements[index].partition)
                elements[index].offset = cached.offsets[partition] ?? elements[index].offset
            }
        }
        var result: [KafkaTopicPartition: Int64] = [:]
        for element in elements {
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(client.pointer, element.topic, element.partition, &low, &high)
                == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { continue }
            // No committed offset at all: the consumer starts at the beginning (auto.offset.reset).
            let position = element.offset >= 0 ? element.offset : low
            result[KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)] = max(0, high - position)
        }
        return result
    }

    /// The lag of partitions this member has consumed from (each has a position): like
    /// ``lag()`` for them alone, from what the client knows, never asking the broker. A partition
    /// with no position or no known watermark is left out.
    public func lag(of partitions: Set<KafkaTopicPartition>) async throws -> [KafkaTopicPartition: Int64] {
        try checkOpen("lag")
        guard !partitions.isEmpty else { return [:] }
        return try await thread.run { [client] in
            let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for partition in partitions { rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition) }
            _ = rd_kafka_position(client.pointer, list)
            var result: [KafkaTopicPartition: Int64] = [:]
            for element in UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)) where element.offset >= 0 {
                var low: Int64 = 0
                var high: Int64 = 0
                guard rd_kafka_get_watermark_offsets(client.pointer, element.topic, element.partition, &low, &high)
                    == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { continue }
                result[KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)] = max(0, high - element.offset)
            }
            return result
        }
    }

    /// Broker-side metadata: topic names and partition counts.
    public func topics(timeout: Duration = .seconds(10)) async throws -> [String: Int] {
        try await thread.run { [client] in try client.metadata(timeout: timeout) }
    }

    /// Leaves the group: revoked partitions get their stored offsets committed first.
    /// Idempotent. After it, every other call throws ``KafkaError/Code/closed``.
    public func close() async throws {
        if closed.withLock({ $0 }) { return }
        try await thread.run { [self] in try closeBlocking() }
        thread.shutdown()
    }

    /// Like ``close()`` for callers on a thread of their own; blocks.
    public func closeBlocking() throws {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        let err = rd_kafka_consumer_close(client.pointer)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "close") }
        logger.debug("Kafka consumer left its group")
    }

    private func checkOpen(_ operation: String) throws {
        if closed.withLock({ $0 }) { throw KafkaError(.closed, "consumer is closed", operation: operation) }
    }

    private func makeList(_ positions: [KafkaTopicPartitionOffset]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(positions.count))!
        for position in positions {
            rd_kafka_topic_partition_list_add(list, position.topic, position.partition).pointee.offset = position.offset
        }
        return list
    }
}

func partitions(of list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartition] {
    UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)).map {
        KafkaTopicPartition(topic: String(cString: $0.topic), partition: $0.partition)
    }
}

extension KafkaMessage {
    /// Copies everything out of a librdkafka message; the caller still destroys `raw`.
    init(copying raw: UnsafeMutablePointer<rd_kafka_message_t>) {
        let m = raw.pointee
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(raw, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            var name: UnsafePointer<CChar>?
            var valuePointer: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(
                    name: name.map { String(cString: $0) } ?? "",
                    value: valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ms = rd_kafka_message_timestamp(raw, &timestampType)
        self.init(
            topic: m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "",
            partition: m.partition, offset: m.offset, key: key, value: value, headers: headers,
            timestamp: ms >= 0 ? Date(timeIntervalSince1970: Double(ms) / 1000) : nil)
    }
}

/// Applies assignments and commits what is done before partitions go. Runs on the thread that
/// called rd_kafka_consumer_poll or rd_kafka_consumer_close.
private let rebalanceCallback: @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    UnsafeMutableRawPointer?
) -> Void = { rk, err, list, opaque in
    guard let rk, let list, let opaque else { return }
    let context = Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
    let changed = partitions(of: list)
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, list) {
                context.logger.error("\(KafkaError(consuming: error, operation: "assign"))")
            }
        } else {
            rd_kafka_assign(rk, list)
        }
        context.logger.info("Kafka partitions assigned", metadata: ["partitions": "\(changed)"])
        context.rebalance?.listener?(.assigned(changed))
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        let lost = rd_kafka_assignment_lost(rk) != 0
        if !lost {
            // Commit the stored positions of what was processed; nothing stored is fine.
            let commit = rd_kafka_commit(rk, nil, 0)
            if commit != RD_KAFKA_RESP_ERR_NO_ERROR && commit != RD_KAFKA_RESP_ERR__NO_OFFSET {
                context.logger.warning("commit on revoke failed: \(String(cString: rd_kafka_err2str(commit)))")
            }
        }
        context.rebalance?.listener?(.revoked(changed, lost: lost))
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, list) {
                context.logger.error("\(KafkaError(consuming: error, operation: "unassign"))")
            }
        } else {
            rd_kafka_assign(rk, nil)
        }
        context.logger.info("Kafka partitions revoked", metadata: ["partitions": "\(changed)", "lost": "\(lost)"])
    default:
        context.logger.warning("rebalance error: \(String(cString: rd_kafka_err2str(err)))")
        rd_kafka_assign(rk, nil)
    }
}
