import Kafka
import Storage
import Testing

@testable import Ingest

/// What the reading stage counts as read but not yet written, which holds a partition back from
/// being declared caught up in event time.
@Suite struct UnwrittenTests {
    func batch(_ messages: [(topic: String, partition: Int32)]) -> IngestService.Prepared {
        IngestService.Prepared(
            messages: messages.enumerated().map { offset, message in
                KafkaMessage(topic: message.topic, partition: message.partition, offset: Int64(offset), key: nil, value: [],
                             headers: [], timestamp: nil)
            },
            batch: IngestBatch(), skipped: 0, deltas: BatchDeltas([]))
    }

    @Test func aPartitionIsUnwrittenWhileAnyBatchOfItWaits() {
        let unwritten = IngestService.Unwritten(topic: "errors")
        // The deployments topic's partition 0 is not the errors topic's.
        let first = batch([("errors", 0), ("errors", 1), ("deployments", 0), ("errors", 0)])
        let second = batch([("errors", 1), ("errors", 2), ("deployments", 3)])
        unwritten.add(first)
        #expect(unwritten.partitions == [0, 1])
        unwritten.add(second)
        #expect(unwritten.partitions == [0, 1, 2])
        unwritten.remove(first)
        #expect(unwritten.partitions == [1, 2], "partition 1 still waits in the second batch")
        unwritten.remove(second)
        #expect(unwritten.partitions.isEmpty)
        #expect(IngestService.Unwritten(topic: "errors").partitions.isEmpty)
        unwritten.add(batch([("deployments", 0)]))
        #expect(unwritten.partitions.isEmpty)
    }
}
