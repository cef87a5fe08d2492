import Domain
import Foundation
import Logging
import Postgres

/// What one batch wrote.
public struct WriteResult: Sendable, Equatable {
    /// Events stored for the first time.
    public var inserted: Int
    /// Events already stored (replays, redeliveries), skipped.
    public var duplicates: Int
    public var deadLetters: Int
    public var deployments: Int

    public init(inserted: Int, duplicates: Int, deadLetters: Int, deployments: Int) {
        self.inserted = inserted
        self.duplicates = duplicates
        self.deadLetters = deadLetters
        self.deployments = deployments
    }
}

/// Everything one batch of Kafka messages turned into.
public struct IngestBatch: Sendable {
    public var events: [EnrichedEvent] = []
    public var deadLetters: [DeadLetter] = []
    public var deployments: [Deployment] = []
    /// How far event time is complete in each partition the batch read (the watermark).
    public var progress: [PartitionProgress] = []

    public init() {}
}

/// What a batch adds to its groups and per-minute counts were all its events new: worked out
/// from the events alone, so it can be done apart from (and before) the write.
public struct BatchDeltas: Sendable {
    struct Group: Sendable {
        /// The index of the group's first event in the batch.
        var first: Int
        var n = 0
        var firstSeen: Date
        var lastSeen: Date
        var firstVersion: (Date, String)?
        var lastVersion: (Date, String)?

        mutating func add(_ time: Date, _ version: String?) {
            n += 1
            firstSeen = min(firstSeen, time)
            lastSeen = max(lastSeen, time)
            if let version {
                if firstVersion.map({ time < $0.0 }) ?? true { firstVersion = (time, version) }
                if lastVersion.map({ time >= $0.0 }) ?? true { lastVersion = (time, version) }
            }
        }
    }

    /// The number of events these deltas were worked out from.
    let events: Int
    var groups: [String: Group] = [:]
    /// Per group, its events per minute (minutes since 1970).
    var counts: [String: [Int: (service: String, n: Int)]] = [:]

    public init(_ events: [EnrichedEvent]) {
        self.events = events.count
        // By index, each group updated in place: no event is copied.
        for index in events.indices {
            let time = events[index].event.timestamp
            let version = events[index].version
            groups[events[index].fingerprint, default: Group(first: index, firstSeen: time, lastSeen: time)].add(time, version)
            let minute = Int((time.timeIntervalSince1970 / 60).rounded(.down))
            counts[events[index].fingerprint, default: [:]][minute, default: (events[index].event.service, 0)].n += 1
        }
    }
}

/// Writes batches: one transaction each, idempotent on `event_id`, group and per-minute
/// counters moved only by rows really inserted.
public enum EventStore {
    static let columns = [
        "event_id", "occurred_at", "fingerprint", "service", "environment", "version", "severity", "error_type", "message",
        "stacktrace", "error_code", "http_status", "trace_id", "span_id", "host", "pod", "namespace", "region", "commit_sha",
        "deployment_id", "deployed_at", "seconds_since_deploy", "attributes", "format", "source_topic", "source_partition",
        "source_offset",
    ]

    /// Writes a batch in one transaction. Partitions for its days must exist
    /// (``PartitionManager/ensure(days:on:)``).
    ///
    /// - Parameter deltas: `BatchDeltas(batch.events)`, when worked out already (ingest does
    ///   it while the previous batch is written, to keep that work out of the transaction).
    /// - Throws: ``PostgresError``; the transaction is then rolled back and nothing of the
    ///   batch is stored.
    public static func write(_ batch: IngestBatch, deltas: BatchDeltas? = nil, on connection: PostgresConnection) throws -> WriteResult {
        try connection.transaction { connection in
            var result = WriteResult(inserted: 0, duplicates: 0, deadLetters: 0, deployments: 0)
            for deployment in batch.deployments {
                result.deployments += try DeploymentStore.insert(deployment, on: connection) ? 1 : 0
            }
            for letter in batch.deadLetters {
                result.deadLetters += try DeadLetterStore.insert(letter, on: connection) ? 1 : 0
            }
            if !batch.events.isEmpty {
                let deltas = deltas.flatMap { $0.events == batch.events.count ? $0 : nil } ?? BatchDeltas(batch.events)
                result.inserted = try insertEvents(batch.events, deltas: deltas, on: connection)
                result.duplicates = batch.events.count - result.inserted
            }
            try EventTimeStore.record(batch.progress, on: connection)
            return result
        }
    }

    /// Inserts the events that are not stored yet and moves the counters by exactly those.
    ///
    /// The usual batch holds only new events: it is copied straight into `events` (as fast as
    /// a bulk load) under a savepoint, and the counters come from the batch itself. A batch
    /// with an event already stored (a replay, a redelivery after a rebalance) fails that copy
    /// on the unique key; it is then rolled back to the savepoint and written through a
    /// staging table with `ON CONFLICT DO NOTHING`, counting only the rows really inserted.
    private static func insertEvents(_ events: [EnrichedEvent], deltas: BatchDeltas, on connection: PostgresConnection) throws -> Int {
        try connection.execute("""
            CREATE TEMP TABLE IF NOT EXISTS ingest_staging (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_groups (
                fingerprint text, service text, error_type text, template text, n bigint, first_seen timestamptz,
                last_seen timestamptz, first_version text, last_version text, top_frames text) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_counts (fingerprint text, service text, bucket timestamptz, n bigint)
                ON COMMIT DELETE ROWS;
            SAVEPOINT direct_copy
            """)
        do {
            try copyEvents(events, into: "events", on: connection)
            try connection.execute("RELEASE SAVEPOINT direct_copy")
            try copyDeltas(deltas, of: events, on: connection)
            try applyDeltas(on: connection)
            return events.count
        } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.uniqueViolation {
            try connection.execute("ROLLBACK TO SAVEPOINT direct_copy")
        }
        try copyEvents(events, into: "ingest_staging", on: connection)
        try copyDeltas(deltas, of: events, templatesOnly: true, on: connection)
        let columnList = columns.joined(separator: ", ")
        // The sub-statements share one snapshot: the deltas are built from exactly the
        // RETURNING rows.
        let rows = try connection.query("""
            WITH inserted AS (
                INSERT INTO events (\(columnList))
                SELECT \(columnList) FROM ingest_staging
                ON CONFLICT (event_id, occurred_at) DO NOTHING
                RETURNING fingerprint, service, error_type, occurred_at, version
            ), group_delta AS (
                INSERT INTO ingest_groups (fingerprint, service, error_type, template, n, first_seen, last_seen,
                                           first_version, last_version, top_frames)
                SELECT i.fingerprint, min(i.service), min(i.error_type), min(t.template), count(*), min(i.occurred_at),
                       max(i.occurred_at),
                       (array_agg(i.version ORDER BY i.occurred_at) FILTER (WHERE i.version IS NOT NULL))[1],
                       (array_agg(i.version ORDER BY i.occurred_at DESC) FILTER (WHERE i.version IS NOT NULL))[1],
                       min(t.top_frames)
                FROM inserted i JOIN ingest_groups t ON t.fingerprint = i.fingerprint AND t.n = 0
                GROUP BY i.fingerprint
            ), count_delta AS (
                INSERT INTO ingest_counts (fingerprint, service, bucket, n)
                SELECT fingerprint, min(service), date_trunc('minute', occurred_at), count(*)
                FROM inserted GROUP BY fingerprint, date_trunc('minute', occurred_at)
            )
            SELECT count(*) FROM inserted
            """)
        try connection.execute("DELETE FROM ingest_groups WHERE n = 0")
        try applyDeltas(on: connection)
        return try rows.first?.int(0) ?? 0
    }

    private static func copyEvents(_ events: [EnrichedEvent], into table: String, on connection: PostgresConnection) throws {
        try connection.copyFromBinary("COPY \(table) (\(columns.joined(separator: ", "))) FROM STDIN (FORMAT binary)") { writer in
            // By index into a function of its own: each event is read in place, not copied
            // (a copy retains every string it holds).
            for index in events.indices { try row(events[index], into: &writer) }
        }
    }

    /// One row of ``columns``, each field in its column's binary form.
    private static func row(_ item: EnrichedEvent, into writer: inout PostgresBinaryCopyWriter) throws {
        writer.uuid(item.event.eventID)
        writer.timestamp(item.event.timestamp)
        try writer.text(item.fingerprint)
        try writer.text(item.event.service)
        try writer.text(item.event.environment)
        try writer.text(item.version)
        try writer.text(item.event.severity.rawValue)
        try writer.text(item.event.errorType)
        try writer.text(item.event.message)
        try writer.text(item.event.stacktrace)
        try writer.text(item.event.errorCode)
        try writer.int16(item.event.httpStatus)
        try writer.text(item.event.traceID)
        try writer.text(item.event.spanID)
        try writer.text(item.event.host)
        try writer.text(item.event.pod)
        try writer.text(item.event.namespace)
        try writer.text(item.region)
        try writer.text(item.deployment?.commit)
        writer.int64(item.deployment?.deploymentID.map { Int($0) })
        writer.timestamp(item.deployment?.startedAt)
        // Years after a rollout: held at the column's largest value rather than refused.
        try writer.int32(item.deployment.map { min(Int(Int32.max), $0.secondsSinceRollout(at: item.event.timestamp)) })
        try writer.jsonb(item.event.attributesJSON)
        try writer.text(item.event.format.rawValue)
        try writer.text(item.origin.topic)
        try writer.int32(Int(item.origin.partition))
        writer.int64(Int(item.origin.offset))
        try writer.endRow()
    }

    /// Writes the per-group and per-minute deltas of a batch whose every event is new. With
    /// `templatesOnly`, one row per group with `n = 0` carries just its template, for the
    /// staging path to join.
    private static func copyDeltas(_ deltas: BatchDeltas, of events: [EnrichedEvent], templatesOnly: Bool = false,
                                   on connection: PostgresConnection) throws {
        let groups = deltas.groups
        let counts = deltas.counts
        try connection.copyFrom("COPY ingest_groups FROM STDIN") { writer in
            for (fingerprint, group) in groups {
                try writer.field(fingerprint)
                try writer.field(events[group.first].event.service)
                try writer.field(events[group.first].event.errorType)
                try writer.field(events[group.first].template)
                writer.field(templatesOnly ? 0 : group.n)
                writer.field(group.firstSeen)
                writer.field(group.lastSeen)
                try writer.field(group.firstVersion?.1)
                try writer.field(group.lastVersion?.1)
                try writer.field(events[group.first].frames.isEmpty ? nil : events[group.first].frames)
                try writer.endRow()
            }
        }
        guard !templatesOnly else { return }
        try connection.copyFrom("COPY ingest_counts FROM STDIN") { writer in
            for (fingerprint, minutes) in counts {
                for (minute, entry) in minutes {
                    try writer.field(fingerprint)
                    try writer.field(entry.service)
                    writer.field(Date(timeIntervalSince1970: Double(minute) * 60))
                    writer.field(entry.n)
                    try writer.endRow()
                }
            }
        }
    }

    /// Adds the staged deltas to `groups`, `event_counts` and `service_counts`.
    private static func applyDeltas(on connection: PostgresConnection) throws {
        try connection.execute("""
            INSERT INTO groups AS g (fingerprint, service, error_type, template, first_seen, last_seen, event_count,
                                     first_version, last_version, top_frames)
            SELECT fingerprint, service, error_type, template, first_seen, last_seen, n, first_version, last_version, top_frames
            FROM ingest_groups ORDER BY fingerprint
            ON CONFLICT (fingerprint) DO UPDATE SET
                event_count = g.event_count + EXCLUDED.event_count,
                first_seen = least(g.first_seen, EXCLUDED.first_seen),
                last_seen = greatest(g.last_seen, EXCLUDED.last_seen),
                first_version = CASE WHEN EXCLUDED.first_seen < g.first_seen OR g.first_version IS NULL
                                     THEN coalesce(EXCLUDED.first_version, g.first_version) ELSE g.first_version END,
                last_version = CASE WHEN EXCLUDED.last_seen >= g.last_seen OR g.last_version IS NULL
                                    THEN coalesce(EXCLUDED.last_version, g.last_version) ELSE g.last_version END,
                updated_at = now();
            INSERT INTO event_counts AS c (fingerprint, service, bucket, count)
            SELECT fingerprint, service, bucket, n FROM ingest_counts ORDER BY fingerprint, bucket
            ON CONFLICT (fingerprint, bucket) DO UPDATE SET count = c.count + EXCLUDED.count;
            INSERT INTO service_counts AS s (service, hour, count)
            SELECT service, to_timestamp(floor(extract(epoch FROM bucket) / 3600) * 3600), sum(n) FROM ingest_counts
            GROUP BY 1, 2 ORDER BY 1, 2
            ON CONFLICT (service, hour) DO UPDATE SET count = s.count + EXCLUDED.count;
            \(EventTimeStore.markLate)
            """)
    }
}
