import Domain
import Foundation
import Kafka
import Logging
import Metrics
import Posix
import Postgres
import ServiceLifecycle
import Storage
import Synchronization

/// Settings of the consumer loop.
public struct IngestConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var group: String
    public var topic: String
    public var deploymentsTopic: String
    public var deadLetterTopic: String
    /// A batch closes at this many messages…
    public var maxBatchMessages = 20000
    /// …or this long after its first message, whichever comes first.
    public var maxBatchDelay: Duration = .milliseconds(250)
    public var limits = DecodeLimits()
    /// Days of events kept (``PartitionRetention``).
    public var retentionDays = 30
    /// How often the deployments registry is re-read from the database (``DeploymentRefresher``).
    public var deploymentsRefresh: Duration = .seconds(2)

    public init(kafka: KafkaConfiguration, group: String, topic: String, deploymentsTopic: String, deadLetterTopic: String) {
        self.kafka = kafka
        self.group = group
        self.topic = topic
        self.deploymentsTopic = deploymentsTopic
        self.deadLetterTopic = deadLetterTopic
    }
}

/// Counters and state the service exposes: read in-process (readiness, benchmarks, tests), and
/// recorded through swift-metrics as they change (`/metrics`).
public final class IngestStatus: Sendable {
    struct State {
        var databaseAvailable = true
        var eventsInserted = 0
        var duplicates = 0
        var deadLetters = 0
        var skipped = 0
        var batches = 0
        var assignedPartitions = 0
        var decodeTime: Duration = .zero
        var writeTime: Duration = .zero
    }

    private let state = Mutex(State())
    private let metrics = IngestMetrics()
    public init() {}

    public var databaseAvailable: Bool { state.withLock { $0.databaseAvailable } }
    public var eventsInserted: Int { state.withLock { $0.eventsInserted } }
    public var duplicates: Int { state.withLock { $0.duplicates } }
    public var deadLetters: Int { state.withLock { $0.deadLetters } }
    /// Log records below the minimum severity, skipped on purpose.
    public var skipped: Int { state.withLock { $0.skipped } }
    /// Time spent decoding and enriching, and writing to PostgreSQL, since start.
    public var stageTimes: (decode: Duration, write: Duration) { state.withLock { ($0.decodeTime, $0.writeTime) } }
    /// Partitions this replica owns now.
    public var assignedPartitions: Int { state.withLock { $0.assignedPartitions } }

    /// A batch written and about to be committed.
    func batchWritten(inserted: Int, duplicates: Int, deadLetters: Int, skipped: Int) {
        state.withLock {
            $0.eventsInserted += inserted
            $0.duplicates += duplicates
            $0.deadLetters += deadLetters
            $0.skipped += skipped
            $0.batches += 1
        }
        metrics.inserted.increment(by: inserted)
        metrics.duplicates.increment(by: duplicates)
        metrics.skipped.increment(by: skipped)
        countDeadLetters(deadLetters)
    }

    /// Events the database refused one by one, set aside.
    func deadLettered(_ count: Int) {
        state.withLock { $0.deadLetters += count }
        countDeadLetters(count)
    }

    private func countDeadLetters(_ count: Int) {
        metrics.deadLettered.increment(by: count)
        metrics.deadLetters.increment(by: count)
    }

    func decoded(in elapsed: Duration) {
        state.withLock { $0.decodeTime += elapsed }
    }

    func written(in elapsed: Duration) {
        state.withLock { $0.writeTime += elapsed }
        metrics.batchWrite.record(duration: elapsed)
    }

    func setDatabaseAvailable(_ available: Bool) {
        let changed = state.withLock { state in
            defer { state.databaseAvailable = available }
            return state.databaseAvailable != available
        }
        if changed { metrics.databaseAvailable.record(available ? 1 : 0) }
    }

    func partitions(_ event: KafkaRebalanceEvent) {
        let assigned = state.withLock { state in
            switch event {
            case .assigned(let partitions): state.assignedPartitions += partitions.count
            case .revoked(let partitions, _): state.assignedPartitions = max(0, state.assignedPartitions - partitions.count)
            }
            return state.assignedPartitions
        }
        metrics.assignedPartitions.record(assigned)
    }

    func stopped() {
        state.withLock { $0.assignedPartitions = 0 }
        metrics.assignedPartitions.record(0)
    }
}

/// What ingest records through swift-metrics (names in the App's metrics catalog).
struct IngestMetrics: Sendable {
    let inserted = Counter(label: "faultline_events_ingested_total", dimensions: [("outcome", "inserted")])
    let duplicates = Counter(label: "faultline_events_ingested_total", dimensions: [("outcome", "duplicate")])
    let deadLettered = Counter(label: "faultline_events_ingested_total", dimensions: [("outcome", "dead_letter")])
    let skipped = Counter(label: "faultline_events_ingested_total", dimensions: [("outcome", "skipped")])
    let deadLetters = Counter(label: "faultline_dead_letters_total")
    let batchWrite = Metrics.Timer(label: "faultline_batch_write_seconds")
    let assignedPartitions = Gauge(label: "faultline_assigned_partitions")
    let databaseAvailable = Gauge(label: "faultline_database_available")

    init() {
        // Every outcome from the start, so rates are defined before the first of each.
        for counter in [inserted, duplicates, deadLettered, skipped, deadLetters] { counter.increment(by: 0) }
        assignedPartitions.record(0)
        databaseAvailable.record(1)
    }

    /// One gauge per partition owned; the gauges of partitions given up are removed.
    final class Lag: @unchecked Sendable {
        // Unchecked: used only by the consumer loop, one call at a time.
        private var gauges: [KafkaTopicPartition: Gauge] = [:]

        func update(_ lag: [KafkaTopicPartition: Int64]) {
            for (partition, gauge) in gauges where lag[partition] == nil {
                gauge.destroy()
                gauges[partition] = nil
            }
            for (partition, value) in lag {
                let gauge = gauges[partition] ?? Gauge(
                    label: "faultline_consumer_lag", dimensions: [("topic", partition.topic), ("partition", "\(partition.partition)")])
                gauges[partition] = gauge
                gauge.record(value)
            }
        }
    }
}

/// The consumer loop: poll a batch → decode (bad input to the dead-letter topic) → enrich →
/// fingerprint → one idempotent database transaction → commit the offsets.
///
/// Offsets are committed only after the transaction holding their events has committed, so a
/// crash at any moment loses nothing; replays insert nothing twice because every event has a
/// stable id. While PostgreSQL is unreachable the loop stops fetching and retries with capped
/// exponential backoff. Reading and decoding run up to one batch ahead of writing. On graceful
/// shutdown it stops reading, writes and commits the batches in hand, and leaves the group.
public final class IngestService: Service {
    private let configuration: IngestConfiguration
    private let pool: PostgresPool
    private let producer: KafkaProducer
    private let processor: MessageProcessor
    private let logger: Logger
    public let status: IngestStatus
    /// Events are enriched from what it knows; ``DeploymentRefresher`` keeps it in step with the
    /// database, and the deployments this loop reads from Kafka are added as they come.
    private let deployments: DeploymentCache
    /// This process's mark on the offsets it is decoding (``DecodingLedger``).
    private let owner = UUID()
    private let deadLetterLog = DeadLetterLog()
    /// Batches are decoded on threads of their own, one per core, below the usual priority: on
    /// a busy host the decoding of the next batch yields to the writing of this one (PostgreSQL
    /// on the same host), to the HTTP server and to the Kafka client (``BulkWorkers``).
    private let decodeWorkers = BulkWorkers(count: ProcessInfo.processInfo.activeProcessorCount, name: "decode")

    public init(configuration: IngestConfiguration, pool: PostgresPool, producer: KafkaProducer, logger: Logger,
                status: IngestStatus = IngestStatus(), deployments: DeploymentCache) {
        self.configuration = configuration
        self.pool = pool
        self.producer = producer
        self.logger = logger
        self.status = status
        self.deployments = deployments
        self.processor = MessageProcessor(decoder: EventDecoder(limits: configuration.limits), deploymentsTopic: configuration.deploymentsTopic)
    }

    public func run() async throws {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                kafka: configuration.kafka, groupID: configuration.group,
                topics: [configuration.topic, configuration.deploymentsTopic]),
            logger: logger
        ) { [status] event in
            status.partitions(event)
        }
        let lag = IngestMetrics.Lag()
        let eventTime = EventTimeLag()
        // Two stages overlap: while one batch is written to PostgreSQL and its offsets are
        // committed, the next ones are polled and decoded, at most one ahead of the writer (so at
        // most three batches are in memory), and a slow write or a slow decode is absorbed
        // rather than idling the other. Offsets of a batch are committed only after its own write.
        let unwritten = Unwritten(topic: configuration.topic)
        let (batches, decoded) = AsyncStream.makeStream(of: Prepared.self)
        let (credits, credit) = AsyncStream.makeStream(of: Void.self)
        credit.yield()
        credit.yield()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { decoded.finish() }
                    try await self.readAndDecode(consumer, credits: credits, into: decoded, unwritten: unwritten, lag: lag, eventTime: eventTime)
                }
                group.addTask {
                    defer { credit.finish() }
                    for await prepared in batches {
                        try await self.finish(prepared, try await self.store(prepared), consumer)
                        eventTime.stored(prepared.batch.progress)
                        unwritten.remove(prepared)
                        credit.yield()
                        // Its many thousand allocations are freed by a worker, not between two writes.
                        self.decodeWorkers.release(consume prepared)
                    }
                }
                try await group.waitForAll()
            }
        } catch is ShutdownDuringRetry {
            logger.info("shutting down with a batch unwritten; it will be delivered again")
        }
        try await consumer.close()
        lag.update([:])
        eventTime.reset()
        status.stopped()
        logger.info("ingest stopped", metadata: ["events": "\(status.eventsInserted)"])
    }

    /// The reading stage: polls and decodes batches until shutdown, each once a credit says the
    /// writer has room for it.
    private func readAndDecode(
        _ consumer: KafkaConsumer, credits: AsyncStream<Void>, into decoded: AsyncStream<Prepared>.Continuation,
        unwritten: Unwritten, lag: IngestMetrics.Lag, eventTime: EventTimeLag
    ) async throws {
        var lastLag = ContinuousClock.now - .seconds(60)
        var partitions: Set<String> = []
        var lagFailing = false
        var credits = credits.makeAsyncIterator()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            guard await credits.next() != nil else { return }
            var prepared: Prepared?
            while prepared == nil && !Task.isShuttingDownGracefully && !Task.isCancelled {
                if ContinuousClock.now - lastLag >= .seconds(5) {
                    do {
                        let current = try await consumer.lag()
                        lag.update(current)
                        await markCaughtUp(current, unwritten: unwritten.partitions, eventTime: eventTime)
                        if lagFailing { logger.info("consumer lag is read again") }
                        lagFailing = false
                    } catch {
                        // Without it, quiet partitions are not known to be caught up, so the
                        // analysis holds their minutes: worth a line, once.
                        if !lagFailing {
                            logger.warning("consumer lag not read; quiet partitions hold event time back", metadata: ["error": "\(error)"])
                        }
                        lagFailing = true
                    }
                    lastLag = .now
                }
                prepared = try await prepare(try await read(consumer), partitions: &partitions)
            }
            guard let prepared else { return }
            unwritten.add(prepared)
            decoded.yield(prepared)
        }
    }

    /// The partitions of the errors topic with messages read but not yet written.
    final class Unwritten: Sendable {
        private let counts = Mutex<[Int32: Int]>([:])
        private let topic: String

        init(topic: String) { self.topic = topic }

        var partitions: Set<Int32> { counts.withLock { Set($0.keys) } }

        private func partitions(of prepared: Prepared) -> Set<Int32> {
            Set(prepared.messages.indices.lazy.filter { prepared.messages[$0].topic == self.topic }.map { prepared.messages[$0].partition })
        }

        func add(_ prepared: Prepared) {
            let read = partitions(of: prepared)
            counts.withLock { for partition in read { $0[partition, default: 0] += 1 } }
        }

        func remove(_ prepared: Prepared) {
            let read = partitions(of: prepared)
            counts.withLock { counts in
                for partition in read {
                    let left = (counts[partition] ?? 1) - 1
                    counts[partition] = left > 0 ? left : nil
                }
            }
        }
    }

    /// A batch decoded and ready to write.
    struct Prepared: Sendable {
        let messages: [KafkaMessage]
        let batch: IngestBatch
        let skipped: Int
        /// The batch's group and count deltas, worked out while the previous batch is written.
        let deltas: BatchDeltas
    }

    /// Decodes a batch, sends its dead letters and creates the partitions it needs; `nil` for
    /// an empty poll.
    private func prepare(_ read: Read, partitions: inout Set<String>) async throws -> Prepared? {
        let messages = read.messages
        guard !messages.isEmpty else { return nil }
        let index = deployments.index
        let started = ContinuousClock.now
        var (batch, skipped) = try await decodeGuarded(messages, index: index)
        batch.progress = EventTimeProgress.of(messages, events: batch.events, topic: configuration.topic, lag: read.lag, readAt: read.at)
        let elapsed = ContinuousClock.now - started
        status.decoded(in: elapsed)
        deployments.insert(batch.deployments)
        try await deliverDeadLetters(batch.deadLetters)
        let days = Set(batch.events.map { PartitionManager.day(of: $0.event.timestamp) })
            .filter { !partitions.contains(PartitionManager.name(of: $0)) }
        if !days.isEmpty {
            try await retrying("creating partitions") {
                try await pool.withConnection { try PartitionManager.ensure(days: days, on: $0) }
            }
            // The days this loop has created; PartitionRetention may drop the oldest, which
            // the decoder no longer accepts events for. Forgotten now and then, to stay small.
            if partitions.count > 2 * configuration.retentionDays + 30 { partitions.removeAll() }
            for day in days { partitions.insert(PartitionManager.name(of: day)) }
        }
        return Prepared(messages: messages, batch: batch, skipped: skipped, deltas: BatchDeltas(batch.events))
    }

    /// Decodes a batch with its offsets recorded in PostgreSQL first (``DecodingLedger``), so
    /// that a message that stops the process while it is decoded is found by the next member
    /// to read it, decoded alone, and set aside after a second stop (``DecodePlan``).
    private func decodeGuarded(_ messages: [KafkaMessage], index: DeploymentIndex) async throws -> (IngestBatch, Int) {
        let claims = DecodePlan.claims(for: messages, owner: owner)
        let (leftovers, setAside) = try await retrying("recording the offsets to decode") {
            try await pool.withConnection { connection in
                try DecodingLedger.withoutFlush(on: connection) { connection in
                    (try DecodingLedger.claim(claims, on: connection),
                     try DecodingLedger.setAside(within: claims, reason: DecodePlan.crashedReason, on: connection))
                }
            }
        }
        let plan = DecodePlan(messages: messages, leftovers: leftovers, setAside: setAside, owner: owner)
        guard !plan.isPlain else {
            let decoded = try await processor.process(messages, index: index, on: decodeWorkers)
            try await retrying("recording the decoded offsets") {
                try await pool.withConnection { connection in
                    try DecodingLedger.withoutFlush(on: connection) { try DecodingLedger.release(owner: self.owner, on: $0) }
                }
            }
            return decoded
        }
        var batch = IngestBatch()
        var skipped = 0
        var index = index
        func add(_ decoded: (batch: IngestBatch, skipped: Int)) {
            batch.events += decoded.batch.events
            batch.deadLetters += decoded.batch.deadLetters
            batch.deployments += decoded.batch.deployments
            for deployment in decoded.batch.deployments { index.insert(deployment) }
            skipped += decoded.skipped
        }
        for leftover in leftovers where leftover.owner != owner {
            logger.warning("a member stopped while decoding these offsets; decoding them one at a time", metadata: [
                "topic": "\(leftover.topic)", "partition": "\(leftover.partition)",
                "offsets": "\(leftover.first)-\(leftover.last)", "being_decoded": "\(leftover.current.map(String.init) ?? "-")",
            ])
        }
        for message in plan.crashed {
            logger.error("message set aside: the process stopped twice while decoding it", metadata: [
                "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)",
            ])
            batch.deadLetters.append(processor.deadLetter(
                message, reason: "\(DecodePlan.crashedReason): the process stopped while decoding this message, twice; it is not decoded again"))
        }
        for part in plan.careful {
            for message in part.messages {
                var record = part.record
                record.current = message.offset
                let current = record
                try await retrying("recording the offset to decode") { try await pool.withConnection { try DecodingLedger.set(current, on: $0) } }
                add(try await processor.process([message], index: index, on: decodeWorkers))
            }
        }
        try await retrying("recording the offsets to decode") {
            try await pool.withConnection { connection in
                for record in plan.batchRecords { try DecodingLedger.set(record, on: connection) }
                for partition in plan.removed { try DecodingLedger.remove(topic: partition.topic, partition: partition.partition, on: connection) }
            }
        }
        add(try await processor.process(plan.batch, index: index, on: decodeWorkers))
        try await retrying("recording the decoded offsets") {
            try await pool.withConnection { try DecodingLedger.release(owner: self.owner, deferred: plan.deferred, on: $0) }
        }
        return (batch, skipped)
    }

    /// Counts a written batch and commits its offsets.
    private func finish(_ prepared: Prepared, _ result: WriteResult, _ consumer: KafkaConsumer) async throws {
        status.batchWritten(inserted: result.inserted, duplicates: result.duplicates,
                            deadLetters: prepared.batch.deadLetters.count, skipped: prepared.skipped)
        do {
            try await consumer.commit(KafkaTopicPartitionOffset.after(prepared.messages))
        } catch {
            // Stored, so committed on revoke; a redelivery inserts nothing twice.
            logger.warning("offset commit failed", metadata: ["error": "\(error)"])
        }
        logger.debug("batch", metadata: [
            "messages": "\(prepared.messages.count)", "inserted": "\(result.inserted)", "duplicates": "\(result.duplicates)",
            "dead_letters": "\(prepared.batch.deadLetters.count)",
        ])
    }

    /// A batch as read: its messages, and the consumer's lag and the time right after it was read.
    struct Read: Sendable {
        var messages: [KafkaMessage]
        var lag: [KafkaTopicPartition: Int64]?
        var at: Date
    }

    private func read(_ consumer: KafkaConsumer) async throws -> Read {
        let messages = try await collectBatch(consumer)
        guard !messages.isEmpty else { return Read(messages: [], lag: nil, at: Date()) }
        let at = Date()
        let read = Set(messages.map { KafkaTopicPartition(topic: $0.topic, partition: $0.partition) })
        return Read(messages: messages, lag: try? await consumer.lag(of: read), at: at)
    }

    /// Partitions of the errors topic with nothing left to read and nothing read but unwritten
    /// are complete in event time up to now (``EventTimeStore/caughtUp(topic:partitions:at:)``).
    private func markCaughtUp(_ lag: [KafkaTopicPartition: Int64], unwritten pending: Set<Int32>, eventTime: EventTimeLag) async {
        let owned = lag.keys.filter { $0.topic == configuration.topic }
        let caughtUp = owned.filter { lag[$0] == 0 && !pending.contains($0.partition) }.map(\.partition).sorted()
        let now = Date()
        if !caughtUp.isEmpty {
            do {
                try await pool.withConnection { try EventTimeStore.caughtUp(topic: self.configuration.topic, partitions: caughtUp, at: now, on: $0) }
                eventTime.caughtUp(caughtUp, at: now)
            } catch {
                logger.debug("event-time progress not recorded", metadata: ["error": "\(error)"])
            }
        }
        eventTime.publish(owned: Set(owned.map(\.partition)), now: now)
    }

    /// Polls until the batch is full or `maxBatchDelay` has passed since its first message.
    private func collectBatch(_ consumer: KafkaConsumer) async throws -> [KafkaMessage] {
        var messages = try await consumer.poll(maxMessages: configuration.maxBatchMessages, timeout: .milliseconds(200))
        guard !messages.isEmpty else { return messages }
        let deadline = ContinuousClock.now + configuration.maxBatchDelay
        while messages.count < configuration.maxBatchMessages && ContinuousClock.now < deadline {
            let wait = min(deadline - .now, .milliseconds(50))
            let more = try await consumer.poll(maxMessages: configuration.maxBatchMessages - messages.count, timeout: wait)
            if more.isEmpty && wait <= .zero { break }
            messages += more
        }
        return messages
    }

    struct ShutdownDuringRetry: Error {}

    /// Retries `body` with capped exponential backoff while it fails with a connection error
    /// (or, for Kafka, any error), until shutdown begins.
    private func retrying<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                let value = try await body()
                status.setDatabaseAvailable(true)
                return value
            } catch let error as PostgresError where !error.isConnectionError {
                throw error
            } catch {
                if error is PostgresError { status.setDatabaseAvailable(false) }
                logger.warning("\(what) failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                if Task.isShuttingDownGracefully || Task.isCancelled { throw ShutdownDuringRetry() }
                try? await Task.sleep(for: delay)
                if Task.isShuttingDownGracefully || Task.isCancelled { throw ShutdownDuringRetry() }
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func deliverDeadLetters(_ letters: [DeadLetter]) async throws {
        for letter in letters {
            logger.debug("message set aside", metadata: [
                "topic": "\(letter.origin.topic)", "partition": "\(letter.origin.partition)",
                "offset": "\(letter.origin.offset)", "reason": "\(letter.reason)",
            ])
            if let summary = deadLetterLog.note(letter.reason, at: .now) {
                logger.warning("messages set aside in the dead-letter topic (see GET /v1/dead-letters)", metadata: [
                    "count": "\(summary.count)", "topic": "\(configuration.deadLetterTopic)", "reasons": "\(summary.reasons)",
                ])
            }
            let message = DeadLetterHeaders.message(for: letter, topic: configuration.deadLetterTopic)
            _ = try await retrying("dead-letter delivery") { try await producer.send(message) }
        }
    }

    private func store(_ prepared: Prepared) async throws -> WriteResult {
        let batch = prepared.batch
        do {
            let started = ContinuousClock.now
            let result = try await retrying("writing a batch") {
                try await pool.withConnection { try EventStore.write(batch, deltas: prepared.deltas, on: $0) }
            }
            let elapsed = ContinuousClock.now - started
            status.written(in: elapsed)
            return result
        } catch is PostgresError {
            // A statement error (not the connection): find the event that causes it, set it
            // aside, and store the rest.
            logger.error("batch refused by PostgreSQL; writing events one by one")
            return try await writeOneByOne(batch, messages: prepared.messages)
        }
    }

    private func writeOneByOne(_ batch: IngestBatch, messages: [KafkaMessage]) async throws -> WriteResult {
        let originals = Dictionary(messages.map { (KafkaTopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: $0.offset), $0) }) { a, _ in a }
        var total = WriteResult(inserted: 0, duplicates: 0, deadLetters: 0, deployments: 0)
        var rest = IngestBatch()
        rest.deadLetters = batch.deadLetters
        rest.deployments = batch.deployments
        rest.progress = batch.progress
        var refused: [DeadLetter] = []
        for item in batch.events {
            var one = IngestBatch()
            one.events = [item]
            let single = one
            do {
                let result = try await retrying("writing an event") { try await pool.withConnection { try EventStore.write(single, on: $0) } }
                total.inserted += result.inserted
                total.duplicates += result.duplicates
            } catch let error as PostgresError {
                // The whole original message goes aside, as for any other bad input.
                let position = KafkaTopicPartitionOffset(topic: item.origin.topic, partition: item.origin.partition, offset: item.origin.offset)
                guard !refused.contains(where: { $0.origin.topic == item.origin.topic && $0.origin.partition == item.origin.partition
                    && $0.origin.offset == item.origin.offset }), let message = originals[position] else { continue }
                refused.append(processor.deadLetter(message, reason: "refused by the database: \(error.message)"))
            }
        }
        rest.deadLetters += refused
        try await deliverDeadLetters(refused)
        status.deadLettered(refused.count)
        let remainder = rest
        let result = try await retrying("writing dead letters") { try await pool.withConnection { try EventStore.write(remainder, on: $0) } }
        total.deadLetters = result.deadLetters
        total.deployments = result.deployments
        return total
    }
}

/// Dead letters summed up for the log: the first is told at once, the rest at most once a
/// minute as a count with the commonest reasons, so a flood of bad messages is visible without
/// flooding the log.
final class DeadLetterLog: Sendable {
    struct Summary: Equatable {
        var count: Int
        /// `reason ×count`, commonest first, at most five.
        var reasons: String
    }

    private struct State {
        var count = 0
        var reasons: [String: Int] = [:]
        var lastTold: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    let interval: Duration

    init(interval: Duration = .seconds(60)) { self.interval = interval }

    /// Notes one dead letter; returns what to log now, if anything.
    func note(_ reason: String, at now: ContinuousClock.Instant) -> Summary? {
        state.withLock { state in
            state.count += 1
            // Reasons may quote the input: the first 80 bytes of each, at most 50 kinds.
            let short = String(decoding: reason.utf8.prefix(80), as: UTF8.self)
            if state.reasons[short] != nil || state.reasons.count < 50 { state.reasons[short, default: 0] += 1 }
            if let last = state.lastTold, now - last < interval { return nil }
            let reasons = state.reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5)
                .map { "\($0.key) ×\($0.value)" }.joined(separator: "; ")
            defer { state = State(lastTold: now) }
            return Summary(count: state.count, reasons: reasons)
        }
    }
}
