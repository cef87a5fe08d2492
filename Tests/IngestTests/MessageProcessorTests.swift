import Domain
import Foundation
import Ingest
import Kafka
import Testing

/// The batch step of ingest alone, on messages made in memory: decoding, enrichment from the
/// deployments, fingerprints, dead letters and skipped records. No broker, no database.
@Suite struct MessageProcessorTests {
    let processor = MessageProcessor(deploymentsTopic: "deployments")

    func message(_ topic: String, _ text: String, offset: Int64, headers: [KafkaHeader] = []) -> KafkaMessage {
        KafkaMessage(topic: topic, partition: 2, offset: offset, key: Array("k".utf8), value: Array(text.utf8), headers: headers,
                     timestamp: nil)
    }

    @Test func aRolloutInTheSameBatchEnrichesItsEventsAndBadInputBecomesDeadLetters() {
        let now = RFC3339.parse("2026-11-22T12:30:00Z")!
        let before = DeploymentIndex([
            Deployment(service: "checkout", environment: "production", version: "1.8.2", startedAt: now.addingTimeInterval(-86_400)),
        ])
        let messages = [
            // The rollout of 1.8.3 and, later in the batch, errors of both versions.
            message("deployments", #"{"service":"checkout","version":"1.8.3","commit":"abc123","started_at":"2026-11-22T12:00:00Z"}"#, offset: 0),
            message("errors", #"{"timestamp":"2026-11-22T12:05:00Z","service":"checkout","version":"1.8.3","message":"timeout after 30s"}"#, offset: 1),
            message("errors", #"{"timestamp":"2026-11-22T11:00:00Z","service":"checkout","message":"timeout after 5s"}"#, offset: 2,
                    headers: [KafkaHeader(name: "content-type", string: "application/json")]),
            message("errors", "not json", offset: 3, headers: [KafkaHeader(name: "trace", string: "t-1")]),
            message("deployments", #"{"service":"checkout"}"#, offset: 4),
            // CLEF below Warning without an exception: skipped on purpose, not a dead letter.
            message("errors", #"{"@t":"2026-11-22T12:06:00Z","@mt":"cache warm","@l":"Debug","Application":"checkout"}"#, offset: 5),
        ]
        let (batch, skipped) = processor.process(messages, index: before, now: now)

        #expect(skipped == 1)
        #expect(batch.deployments.map(\.version) == ["1.8.3"] && batch.deployments.first?.commit == "abc123")
        #expect(batch.events.count == 2)
        let (new, old) = (batch.events[0], batch.events[1])
        #expect(new.deployment?.version == "1.8.3" && new.deployment?.commit == "abc123", "the rollout read in the same batch")
        #expect(old.deployment?.version == "1.8.2", "an event before the rollout ran the version before")
        #expect(new.fingerprint == old.fingerprint && new.template == "timeout after <*>", "one group, whatever the duration")
        #expect(new.origin.offset == 1 && old.origin.contentType == "application/json")

        #expect(batch.deadLetters.map(\.origin.offset) == [4, 3], "the deployment records are read first")
        let letters = Dictionary(uniqueKeysWithValues: batch.deadLetters.map { ($0.origin.offset, $0) })
        #expect(letters[4]?.reason.hasPrefix("deployment record: ") == true)
        #expect(letters[3]?.reason == "not JSON")
        #expect(letters[3]?.value == Array("not json".utf8) && letters[3]?.key == Array("k".utf8))
        #expect(letters[3]?.headers.first?.name == "trace" && letters[3]?.headers.first?.value == Array("t-1".utf8))
    }

    /// A batch large enough to be decoded in parts on several cores gives the batch that decoding
    /// each message alone, in order, gives: the same events (ids, fingerprints, deployments,
    /// origins) and the same dead letters, in the same order, and the same count of skipped.
    @Test func aBatchDecodedInPartsIsTheBatchOfEachMessageInTurn() {
        let now = RFC3339.parse("2026-11-22T12:30:00Z")!
        var messages = [message("deployments", #"{"service":"svc-3","version":"2.0.0","started_at":"2026-11-22T11:00:00Z"}"#, offset: 0)]
        for n in 1...9_000 {
            let text: String
            switch n % 7 {
            case 0: text = "not json \(n)"
            case 1: text = #"{"@t":"2026-11-22T12:06:00Z","@mt":"cache warm","@l":"Debug","Application":"svc"}"#
            case 2: text = "[" + (0..<3).map { #"{"timestamp":"2026-11-22T12:0\#($0):00Z","service":"svc-\#(n % 5)","message":"batch item \#($0) of \#(n)"}"# }.joined(separator: ",") + "]"
            default: text = #"{"timestamp":"2026-11-22T12:10:00Z","service":"svc-\#(n % 5)","version":"2.0.0","message":"timeout after \#(n)ms","error_type":"E\#(n % 3)"}"#
            }
            messages.append(message("errors", text, offset: Int64(n)))
        }
        let (batch, skipped) = processor.process(messages, index: DeploymentIndex([]), now: now)
        let withDeployments = processor.process([messages[0]], index: DeploymentIndex([]), now: now).batch.deployments
        var index = DeploymentIndex([])
        for deployment in withDeployments { index.insert(deployment) }
        var events: [EnrichedEvent] = []
        var letters: [DeadLetter] = []
        var skippedAlone = 0
        for message in messages.dropFirst() {
            let alone = processor.process([message], index: index, now: now)
            events += alone.batch.events
            letters += alone.batch.deadLetters
            skippedAlone += alone.skipped
        }
        #expect(batch.events.count == events.count && events.count > 9_000)
        #expect(batch.events.map(\.event.eventID) == events.map(\.event.eventID))
        #expect(batch.events.map(\.fingerprint) == events.map(\.fingerprint))
        #expect(batch.events.map(\.origin.offset) == events.map(\.origin.offset))
        #expect(batch.events.map { $0.deployment?.version } == events.map { $0.deployment?.version })
        #expect(batch.events.contains { $0.deployment?.version == "2.0.0" })
        // A message of several events gives them in the order it holds them.
        let items = batch.events.filter { $0.event.message.hasPrefix("batch item") }
        #expect(items.count > 3_000 && items.indices.allSatisfy { items[$0].event.message.hasPrefix("batch item \($0 % 3) of") })
        #expect(batch.deadLetters.map(\.origin.offset) == letters.map(\.origin.offset) && letters.count > 1_000)
        #expect(skipped == skippedAlone && skipped > 1_000)
    }

    @Test func theDeadLetterMessageCarriesTheOriginalAndWhereItCameFrom() {
        let letter = processor.deadLetter(message("errors", "{", offset: 41, headers: [KafkaHeader(name: "h", string: "v")]),
                                          reason: "malformed or truncated JSON")
        let outgoing = DeadLetterHeaders.message(for: letter, topic: "errors.dlq")
        #expect(outgoing.topic == "errors.dlq" && outgoing.value == Array("{".utf8) && outgoing.key == Array("k".utf8))
        let headers = outgoing.headers.map { ($0.name, $0.stringValue ?? "") }
        #expect(headers.map(\.0) == ["h", "faultline-dlq-reason", "faultline-source-topic", "faultline-source-partition", "faultline-source-offset"])
        #expect(headers.map(\.1) == ["v", "malformed or truncated JSON", "errors", "2", "41"])
    }
}
