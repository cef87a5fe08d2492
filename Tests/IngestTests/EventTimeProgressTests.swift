import Domain
import Foundation
import Kafka
import Storage
import Testing

import Ingest

/// The watermark a batch reports per partition: pure decisions, no broker.
@Suite struct EventTimeProgressTests {
    let readAt = Date(timeIntervalSince1970: 1_800_000_000)

    func message(_ partition: Int32, _ offset: Int64, topic: String = "errors") -> KafkaMessage {
        KafkaMessage(topic: topic, partition: partition, offset: offset, key: nil, value: [], headers: [], timestamp: nil)
    }

    func event(_ partition: Int32, _ offset: Int64, at time: Date) -> EnrichedEvent {
        let event = ErrorEvent(eventID: UUID(), timestamp: time, service: "s", environment: "production", message: "m")
        return EnrichedEvent(event: event, fingerprint: "f", template: "m", deployment: nil,
                             origin: MessageOrigin(topic: "errors", partition: partition, offset: offset))
    }

    @Test func aCaughtUpPartitionIsCompleteUntilItWasRead() {
        let progress = EventTimeProgress.of(
            [message(0, 7), message(0, 8)], events: [event(0, 7, at: readAt.addingTimeInterval(-3600))], topic: "errors",
            lag: [KafkaTopicPartition(topic: "errors", partition: 0): 0], readAt: readAt)
        #expect(progress == [PartitionProgress(topic: "errors", partition: 0, nextOffset: 9, completeUntil: readAt)])
    }

    @Test func aLaggingPartitionIsCompleteUntilItsEarliestEvent() {
        let progress = EventTimeProgress.of(
            [message(1, 3), message(1, 4), message(1, 5), message(2, 0)],
            events: [event(1, 3, at: readAt.addingTimeInterval(-600)), event(1, 4, at: readAt.addingTimeInterval(-900)),
                     event(1, 5, at: readAt.addingTimeInterval(86_400))],
            topic: "errors", lag: [KafkaTopicPartition(topic: "errors", partition: 1): 5000], readAt: readAt)
        #expect(progress == [
            PartitionProgress(topic: "errors", partition: 1, nextOffset: 6, completeUntil: readAt.addingTimeInterval(-900)),
            // Only a dead letter, lag unknown: nothing told.
            PartitionProgress(topic: "errors", partition: 2, nextOffset: 1, completeUntil: nil),
        ])
    }

    @Test func anEventDatedAfterTheReadCountsAsReadThenAndOtherTopicsAreLeftOut() {
        let progress = EventTimeProgress.of(
            [message(0, 1), message(0, 9, topic: "deployments")], events: [event(0, 1, at: readAt.addingTimeInterval(3600))],
            topic: "errors", lag: nil, readAt: readAt)
        #expect(progress == [PartitionProgress(topic: "errors", partition: 0, nextOffset: 2, completeUntil: readAt)])
    }
}
