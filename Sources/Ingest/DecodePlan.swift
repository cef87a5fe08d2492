import Foundation
import Kafka
import Storage

/// How to decode a batch so that a message that kills the process cannot kill it again and
/// again: pure, decided from the batch and the decoding records other members left
/// (``DecodingLedger``).
///
/// A record left by another member says that a process stopped while decoding its range
/// (or lost the partition mid-batch). Its range is then decoded one message at a time, each
/// offset recorded before its decoding; a message that was being decoded alone when a
/// process stopped is set aside (`crashed-decoder`) instead of decoded a third time. What
/// lies before a suspect range was decoded before without harm, and what lies after it was
/// never suspect: both are decoded with the rest of the batch.
public struct DecodePlan: Sendable {
    /// The dead-letter reason of a message that stopped the process twice.
    public static let crashedReason = "crashed-decoder"

    /// One partition's suspect messages, decoded one at a time under `record` with
    /// `current` set to each offset in turn.
    public struct Careful: Sendable {
        public var record: DecodingRecord
        public var messages: [KafkaMessage]
    }

    /// Messages that were being decoded alone when a process stopped: dead letters.
    public var crashed: [KafkaMessage] = []
    public var careful: [Careful] = []
    /// Decoded all at once, as usual.
    public var batch: [KafkaMessage] = []
    /// Records to set once the careful part is done, before the batch is decoded: each covers
    /// that partition's part of the batch (and what is left of a suspect range).
    public var batchRecords: [DecodingRecord] = []
    /// Partitions whose record goes once the careful part is done (nothing of them in the batch).
    public var removed: [KafkaTopicPartition] = []
    /// Suspect ranges the batch did not reach, left to the next reader.
    public var deferred: [DecodingRecord] = []

    /// What this batch records before anything of it is decoded: one range per partition.
    public static func claims(for messages: [KafkaMessage], owner: UUID) -> [DecodingRecord] {
        var ranges: [KafkaTopicPartition: (first: Int64, last: Int64)] = [:]
        // A poll returns runs of one partition's messages: a run is looked up once.
        var run: (topic: String, partition: Int32, first: Int64, last: Int64)?
        func close(_ run: (topic: String, partition: Int32, first: Int64, last: Int64)) {
            let key = KafkaTopicPartition(topic: run.topic, partition: run.partition)
            let range = ranges[key] ?? (run.first, run.last)
            ranges[key] = (min(range.first, run.first), max(range.last, run.last))
        }
        for index in messages.indices {
            let partition = messages[index].partition
            let offset = messages[index].offset
            if let current = run, current.partition == partition, current.topic == messages[index].topic {
                run = (current.topic, partition, min(current.first, offset), max(current.last, offset))
            } else {
                if let current = run { close(current) }
                run = (messages[index].topic, partition, offset, offset)
            }
        }
        if let current = run { close(current) }
        return ranges.map { DecodingRecord(topic: $0.key.topic, partition: $0.key.partition, first: $0.value.first,
                                           last: $0.value.last, owner: owner) }
            .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    /// - Parameters:
    ///   - leftovers: the records that were there when this batch's claims were written.
    ///   - owner: this process's id.
    ///   - setAside: messages of the batch already set aside (their commit was lost): set
    ///     aside again, never decoded.
    public init(messages: [KafkaMessage], leftovers: [DecodingRecord], setAside: Set<DecodingLedger.Position> = [], owner: UUID) {
        guard !leftovers.isEmpty || !setAside.isEmpty else {
            // Nothing was left by anyone (the usual batch): decoded as it is.
            batch = messages
            return
        }
        var messages = messages
        if !setAside.isEmpty {
            messages.removeAll { message in
                guard setAside.contains(DecodingLedger.Position(topic: message.topic, partition: message.partition, offset: message.offset)) else {
                    return false
                }
                crashed.append(message)
                return true
            }
        }
        var suspect: [KafkaTopicPartition: DecodingRecord] = [:]
        var ownStale: Set<KafkaTopicPartition> = []
        for record in leftovers {
            let key = KafkaTopicPartition(topic: record.topic, partition: record.partition)
            // Our own record, left by a release that failed: nothing died.
            if record.owner == owner { ownStale.insert(key) } else { suspect[key] = record }
        }
        var byPartition: [KafkaTopicPartition: [KafkaMessage]] = [:]
        for message in messages {
            let key = KafkaTopicPartition(topic: message.topic, partition: message.partition)
            if suspect[key] == nil {
                batch.append(message)
            } else {
                byPartition[key, default: []].append(message)
            }
        }
        for claim in Self.claims(for: messages, owner: owner)
        where ownStale.contains(KafkaTopicPartition(topic: claim.topic, partition: claim.partition)) {
            batchRecords.append(claim)
        }
        for key in byPartition.keys.sorted(by: { ($0.topic, $0.partition) < ($1.topic, $1.partition) }) {
            let record = suspect[key]!
            let ordered = byPartition[key]!.sorted { $0.offset < $1.offset }
            // Below this, every offset was decoded before without harm.
            let firstUnknown = record.current ?? record.first
            var safe: [KafkaMessage] = []
            var careful: [KafkaMessage] = []
            var after: [KafkaMessage] = []
            for message in ordered {
                if message.offset < firstUnknown {
                    safe.append(message)
                } else if message.offset == record.current {
                    crashed.append(message)
                } else if message.offset <= record.last {
                    careful.append(message)
                } else {
                    after.append(message)
                }
            }
            if !careful.isEmpty {
                self.careful.append(Careful(
                    record: DecodingRecord(topic: key.topic, partition: key.partition, first: record.first, last: record.last,
                                           owner: owner),
                    messages: careful))
            }
            let rest = safe + after
            batch += rest
            let lastRead = ordered.last!.offset
            if lastRead >= record.last {
                // The suspect range is behind us.
                if let first = rest.first, let last = rest.last {
                    batchRecords.append(DecodingRecord(topic: key.topic, partition: key.partition, first: first.offset,
                                                       last: last.offset, owner: owner))
                } else {
                    removed.append(key)
                }
            } else {
                // The range goes on past this batch (nothing comes after it here). A message that
                // stopped a process alone, not reached yet, stays marked.
                let current = record.current.flatMap { $0 > lastRead ? $0 : nil }
                batchRecords.append(DecodingRecord(topic: key.topic, partition: key.partition,
                                                   first: min(rest.first?.offset ?? lastRead + 1, lastRead + 1),
                                                   last: record.last, current: current, owner: owner))
                deferred.append(DecodingRecord(topic: key.topic, partition: key.partition, first: lastRead + 1,
                                               last: record.last, current: current, owner: DecodingLedger.unowned))
            }
        }
    }

    /// Nothing was left by anyone: decode the batch as it is.
    public var isPlain: Bool { crashed.isEmpty && careful.isEmpty && batchRecords.isEmpty && removed.isEmpty && deferred.isEmpty }
}
