import Domain
import Foundation
import Kafka
import Synchronization
import Metrics
import Storage

/// How far event time is complete in each partition a batch read: the watermark the analysis
/// scores by (``EventTimeStore``).
///
/// A partition the batch leaves caught up (the consumer's position at the end of the broker's
/// log as the batch was read) is complete up to the moment it was read. One that lags is
/// complete up to the earliest event time in the batch: a partition is read in order, and
/// producers send events roughly in the order they happen; an event dated later than the read
/// counts as read then.
public enum EventTimeProgress {
    public static func of(
        _ messages: [KafkaMessage], events: [EnrichedEvent], topic: String, lag: [KafkaTopicPartition: Int64]?, readAt: Date
    ) -> [PartitionProgress] {
        var next: [Int32: Int64] = [:]
        for position in KafkaTopicPartitionOffset.after(messages) where position.topic == topic {
            next[position.partition] = position.offset
        }
        var earliest: [Int32: Date] = [:]
        // By index: each event is read in place, not copied.
        for index in events.indices {
            guard events[index].origin.topic == topic else { continue }
            let partition = events[index].origin.partition
            let time = min(events[index].event.timestamp, readAt)
            earliest[partition] = min(earliest[partition] ?? time, time)
        }
        return next.keys.sorted().map { partition in
            let caughtUp = lag?[KafkaTopicPartition(topic: topic, partition: partition)] == 0
            return PartitionProgress(topic: topic, partition: partition, nextOffset: next[partition]!,
                                     completeUntil: caughtUp ? readAt : earliest[partition])
        }
    }
}

/// This replica's view of its partitions' event time, for `faultline_event_time_lag_seconds`:
/// how far behind the wall clock the least complete partition it owns is.
final class EventTimeLag: Sendable {
    // Shared by the reading stage (caught-up partitions) and the writing stage (stored batches).
    private let complete = Mutex<[Int32: Date]>([:])
    private let gauge = Gauge(label: "faultline_event_time_lag_seconds")

    init() { gauge.record(0) }

    func stored(_ progress: [PartitionProgress]) {
        complete.withLock { complete in
            for p in progress {
                guard let time = p.completeUntil else { continue }
                complete[p.partition] = max(complete[p.partition] ?? time, time)
            }
        }
    }

    func caughtUp(_ partitions: [Int32], at time: Date) {
        complete.withLock { complete in
            for partition in partitions { complete[partition] = max(complete[partition] ?? time, time) }
        }
    }

    /// Publishes the lag over the partitions owned now (others are forgotten); a partition with
    /// nothing stored yet does not count.
    func publish(owned: Set<Int32>, now: Date) {
        let least = complete.withLock { complete in
            complete = complete.filter { owned.contains($0.key) }
            return complete.values.min()
        }
        gauge.record(least.map { max(0, now.timeIntervalSince($0)) } ?? 0)
    }

    func reset() {
        complete.withLock { $0 = [:] }
        gauge.record(0)
    }
}
