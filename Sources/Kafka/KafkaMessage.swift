import Foundation

/// A Kafka message header: a name and raw bytes.
public struct KafkaHeader: Hashable, Sendable {
    public var name: String
    public var value: [UInt8]?

    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }

    /// The value as UTF-8 text, when it is valid UTF-8.
    public var stringValue: String? {
        value.flatMap { String(validating: $0, as: UTF8.self) }
    }
}

/// A message read from Kafka. Its bytes are copies: nothing here points into librdkafka.
public struct KafkaMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// The producer's or the broker's timestamp, when the message has one.
    public var timestamp: Date?

    public init(
        topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
        headers: [KafkaHeader], timestamp: Date?
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// The first header with this name (names compare case-insensitively).
    public func header(_ name: String) -> KafkaHeader? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }
    }
}

/// A topic and a partition.
public struct KafkaTopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// A position in a partition: the offset of the next message to read.
public struct KafkaTopicPartitionOffset: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    public var topicPartition: KafkaTopicPartition {
        KafkaTopicPartition(topic: topic, partition: partition)
    }

    public var description: String { "\(topic)[\(partition)]@\(offset)" }

    /// The positions after the last of `messages` in each partition: what to commit once
    /// all of them are processed.
    public static func after<Messages: RandomAccessCollection<KafkaMessage>>(_ messages: Messages) -> [KafkaTopicPartitionOffset]
        where Messages.Index == Int
    {
        var next: [KafkaTopicPartition: Int64] = [:]
        // By index, each message read in place (a copy retains all it holds), and by runs: a
        // poll returns runs of one partition's messages, and each run is hashed once.
        var index = messages.startIndex
        while index < messages.endIndex {
            let topic = messages[index].topic
            let partition = messages[index].partition
            var last = messages[index].offset
            index += 1
            while index < messages.endIndex, messages[index].partition == partition, messages[index].topic == topic {
                last = max(last, messages[index].offset)
                index += 1
            }
            let key = KafkaTopicPartition(topic: topic, partition: partition)
            next[key] = max(next[key] ?? 0, last + 1)
        }
        return next.map { KafkaTopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: $1) }
            .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }
}

/// A message to produce.
public struct KafkaOutgoingMessage: Sendable {
    public var topic: String
    /// `nil` lets the partitioner choose (by key when there is one).
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(
        topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8],
        headers: [KafkaHeader] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Where a produced message was stored.
public struct KafkaDeliveryReport: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}
