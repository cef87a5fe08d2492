import Analysis
import Domain
import Foundation
import Kafka
import Posix
import Storage

/// Turns a batch of Kafka messages into what the store writes: decoded, fingerprinted and
/// enriched events, deployments, and dead letters for what cannot be ingested. Pure: no I/O.
public struct MessageProcessor: Sendable {
    public var decoder: EventDecoder
    public var deploymentsTopic: String

    public init(decoder: EventDecoder = EventDecoder(), deploymentsTopic: String) {
        self.decoder = decoder
        self.deploymentsTopic = deploymentsTopic
    }

    /// Deployment records of a batch, to be known before its events are enriched.
    public func deployments(in messages: [KafkaMessage], deadLetters: inout [DeadLetter]) -> [Deployment] {
        var deployments: [Deployment] = []
        // By index: each message is read in place, not copied (a copy retains all it holds).
        for index in messages.indices where messages[index].topic == deploymentsTopic {
            do {
                deployments.append(try Deployment.decode(messages[index].value, defaultEnvironment: decoder.limits.defaultEnvironment))
            } catch {
                deadLetters.append(deadLetter(messages[index], reason: "deployment record: \(error.reason)"))
            }
        }
        return deployments
    }

    /// Processes `messages` with the deployments known in `index`.
    ///
    /// - Returns: the batch to write, and how many log records were skipped as below the
    ///   minimum severity.
    public func process(_ messages: [KafkaMessage], index: DeploymentIndex, now: Date = Date()) -> (batch: IngestBatch, skipped: Int) {
        let (content, errors, index) = prepare(messages, index: index)
        let parts = Self.parts(errors.count, cores: Self.cores)
        guard parts > 1 else { return join(content, [decode(errors[...], index: index, now: now)]) }
        return join(content, parallelMap(parts) { [index] part in
            decode(Self.part(part, of: parts, errors), index: index, now: now)
        })
    }

    /// Like ``process(_:index:now:)``, decoding on `workers` (one part per worker).
    public func process(_ messages: [KafkaMessage], index: DeploymentIndex, now: Date = Date(), on workers: BulkWorkers) async throws
        -> (batch: IngestBatch, skipped: Int)
    {
        let (content, errors, index) = prepare(messages, index: index)
        let parts = Self.parts(errors.count, cores: workers.count)
        return join(content, try await workers.map(parts) { [self, index] part in
            decode(Self.part(part, of: parts, errors), index: index, now: now)
        })
    }

    /// A batch's deployments (known before its events are enriched), and its error messages.
    private func prepare(_ messages: [KafkaMessage], index: DeploymentIndex) -> (IngestBatch, [KafkaMessage], DeploymentIndex) {
        var content = IngestBatch()
        content.deployments = deployments(in: messages, deadLetters: &content.deadLetters)
        var index = index
        for deployment in content.deployments { index.insert(deployment) }
        // The usual batch holds no deployment: taken as it is, not filtered into a copy.
        let errors = messages.indices.contains { messages[$0].topic == deploymentsTopic }
            ? messages.filter { $0.topic != deploymentsTopic } : messages
        return (content, errors, index)
    }

    /// A large batch is decoded in as many contiguous parts as there are cores, joined in
    /// order: the batch is the same as one thread makes, in less time.
    private static func parts(_ count: Int, cores: Int) -> Int {
        max(1, min(cores, count / minimumPart))
    }

    /// The `part`th of `parts` contiguous parts of `messages`, as equal as can be.
    private static func part(_ part: Int, of parts: Int, _ messages: [KafkaMessage]) -> ArraySlice<KafkaMessage> {
        let size = (messages.count + parts - 1) / parts
        return messages[min(messages.count, part * size)..<min(messages.count, (part + 1) * size)]
    }

    private func join(_ content: consuming IngestBatch, _ decoded: consuming [Decoded]) -> (batch: IngestBatch, skipped: Int) {
        var content = content
        // Consumed, not copied: the first part's events array is then uniquely referenced, and
        // becomes the batch's (taken, and grown in place without copying its events).
        var results = consume decoded
        swap(&content.events, &results[0].events)
        content.events.reserveCapacity(results.reduce(0) { $0 + $1.events.count })
        var skipped = 0
        for index in results.indices {
            content.events += results[index].events
            content.deadLetters += results[index].deadLetters
            skipped += results[index].skipped
        }
        return (content, skipped)
    }

    /// The cores a batch is decoded on.
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Fewer messages than this per core are decoded on one: the parts would cost more to
    /// start and join than they save.
    static let minimumPart = 1000

    typealias Decoded = (events: [EnrichedEvent], deadLetters: [DeadLetter], skipped: Int)

    /// Decodes, fingerprints and enriches error messages, in order.
    private func decode(_ messages: ArraySlice<KafkaMessage>, index: DeploymentIndex, now: Date) -> Decoded {
        var events: [EnrichedEvent] = []
        events.reserveCapacity(messages.count)
        var deadLetters: [DeadLetter] = []
        var skipped = 0
        for position in messages.indices {
            #if FAULTLINE_FAILPOINTS
            Failpoints.decoding(messages[position].value)
            #endif
            let origin = MessageOrigin(
                topic: messages[position].topic, partition: messages[position].partition, offset: messages[position].offset,
                contentType: messages[position].header("content-type")?.stringValue)
            do {
                var decoded = try decoder.decode(messages[position].value, origin: origin, now: now)
                skipped += decoded.skipped
                // Taken out one by one (moved, not copied): reversed, then popped in order.
                var produced = decoded.events
                decoded.events = []
                produced.reverse()
                while let event = produced.popLast() {
                    let fingerprint = Fingerprint(event)
                    let deployment = index.context(
                        service: event.service, environment: event.environment, version: event.version, at: event.timestamp)
                    events.append(EnrichedEvent(
                        event: event, fingerprint: fingerprint.value, template: fingerprint.template, frames: fingerprint.frames,
                        deployment: deployment, origin: origin))
                }
            } catch {
                deadLetters.append(deadLetter(messages[position], reason: error.reason))
            }
        }
        return (events, deadLetters, skipped)
    }

    /// The whole message set aside, with why.
    public func deadLetter(_ message: KafkaMessage, reason: String) -> DeadLetter {
        DeadLetter(
            origin: MessageOrigin(topic: message.topic, partition: message.partition, offset: message.offset),
            key: message.key, value: message.value, headers: message.headers.map { ($0.name, $0.value) }, reason: reason)
    }
}

/// Headers Faultline adds to a message it moves to the dead-letter topic.
public enum DeadLetterHeaders {
    public static let reason = "faultline-dlq-reason"
    public static let sourceTopic = "faultline-source-topic"
    public static let sourcePartition = "faultline-source-partition"
    public static let sourceOffset = "faultline-source-offset"

    public static func message(for letter: DeadLetter, topic: String) -> KafkaOutgoingMessage {
        var headers = letter.headers.map { KafkaHeader(name: $0.name, value: $0.value) }
        headers.append(KafkaHeader(name: reason, string: letter.reason))
        headers.append(KafkaHeader(name: sourceTopic, string: letter.origin.topic))
        headers.append(KafkaHeader(name: sourcePartition, string: String(letter.origin.partition)))
        headers.append(KafkaHeader(name: sourceOffset, string: String(letter.origin.offset)))
        return KafkaOutgoingMessage(topic: topic, key: letter.key, value: letter.value, headers: headers)
    }
}

#if FAULTLINE_FAILPOINTS
/// Faults tests can switch on in builds made with `FAULTLINE_FAILPOINTS` (debug builds; a
/// release build has none): `FAULTLINE_FAILPOINTS=decode-trap=TEXT` stops the process on any
/// message whose value contains TEXT, as a decoder bug would.
enum Failpoints {
    static let decodeTrap: [UInt8]? = ProcessInfo.processInfo.environment["FAULTLINE_FAILPOINTS"]
        .flatMap { setting in setting.split(separator: ",").first { $0.hasPrefix("decode-trap=") } }
        .map { Array($0.dropFirst("decode-trap=".count).utf8) }
        .flatMap { $0.isEmpty ? nil : $0 }

    static func decoding(_ value: [UInt8]) {
        guard let trap = decodeTrap, value.count >= trap.count else { return }
        for start in 0...(value.count - trap.count) where value[start] == trap[0] && value[start..<start + trap.count].elementsEqual(trap) {
            fatalError("failpoint decode-trap: the message holds the trap text")
        }
    }
}
#endif
