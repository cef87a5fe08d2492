import Foundation
import Postgres

/// How far event time is complete in one partition of the errors topic, as a stored batch
/// tells it.
public struct PartitionProgress: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// The offset after the batch's last message.
    public var nextOffset: Int64
    /// Event time is complete up to here; `nil` when the batch does not tell (a lagging
    /// partition whose batch held no event).
    public var completeUntil: Date?

    public init(topic: String, partition: Int32, nextOffset: Int64, completeUntil: Date?) {
        self.topic = topic
        self.partition = partition
        self.nextOffset = nextOffset
        self.completeUntil = completeUntil
    }
}

/// A late count: events stored for a minute the analysis had already scored.
public struct LateCount: Sendable, Equatable {
    public var service: String
    public var bucket: Date
    public var events: Int
}

/// The watermark: the lowest of the partitions' `complete_until` (``PartitionProgress``).
public struct Watermark: Sendable, Equatable {
    /// Partitions with a row updated in the last day (older rows belong to a topic no longer read).
    public var partitions: Int
    /// Partitions that lag with no event time known yet: nothing is complete until they tell.
    public var unknown: Int
    /// The lowest `complete_until` of the others.
    public var completeUntil: Date?

    public init(partitions: Int, unknown: Int, completeUntil: Date?) {
        self.partitions = partitions
        self.unknown = unknown
        self.completeUntil = completeUntil
    }
}

/// Event time between ingest and the analysis: the watermark per partition, the minute the
/// analysis has scored up to, and the late counts that fall behind it.
///
/// The analysis publishes how far it has scored under an exclusive advisory lock before it
/// reads the counts; ingest marks a batch's late minutes under the shared form of that lock in
/// the batch's transaction. A batch that took the lock first has committed before the
/// analysis reads (its counts are scored), one that took it after sees the new mark (its
/// counts are late): no minute falls between.
public enum EventTimeStore {
    static let lock = AdvisoryLock.scoredWatermark
    static let scoredKey = "scored_until_at"

    /// Records the batch's progress per partition; a partition's `complete_until` only moves forward.
    public static func record(_ progress: [PartitionProgress], on connection: PostgresConnection) throws {
        guard !progress.isEmpty else { return }
        struct Row: Encodable { var topic: String, kafka_partition: Int32, next_offset: Int64, complete_until: String? }
        let json = try encodeJSON(progress.map {
            Row(topic: $0.topic, kafka_partition: $0.partition, next_offset: $0.nextOffset,
                complete_until: $0.completeUntil.map(PostgresTimestamp.format))
        })
        try connection.query("""
            INSERT INTO ingest_progress AS p (topic, kafka_partition, next_offset, complete_until)
            SELECT topic, kafka_partition, next_offset, complete_until
            FROM jsonb_to_recordset($1::jsonb) AS x(topic text, kafka_partition int, next_offset bigint, complete_until timestamptz)
            ORDER BY topic, kafka_partition
            ON CONFLICT (topic, kafka_partition) DO UPDATE SET
                next_offset = greatest(p.next_offset, EXCLUDED.next_offset),
                complete_until = greatest(p.complete_until, EXCLUDED.complete_until),
                updated_at = now()
            """, [.json(json)])
    }

    /// Partitions with nothing left to read and nothing unwritten are complete up to `time`.
    public static func caughtUp(topic: String, partitions: [Int32], at time: Date, on connection: PostgresConnection) throws {
        guard !partitions.isEmpty else { return }
        try connection.query("""
            INSERT INTO ingest_progress AS p (topic, kafka_partition, complete_until)
            SELECT $1, e.value::int, $3 FROM jsonb_array_elements_text($2::jsonb) AS e(value) ORDER BY 2
            ON CONFLICT (topic, kafka_partition) DO UPDATE SET
                complete_until = greatest(p.complete_until, EXCLUDED.complete_until), updated_at = now()
            """, [.text(topic), .json(try encodeJSON(partitions)), .timestamp(time)])
    }

    public static func watermark(on connection: PostgresConnection) throws -> Watermark {
        let row = try connection.query("""
            SELECT count(*), count(*) FILTER (WHERE complete_until IS NULL), min(complete_until)
            FROM ingest_progress WHERE updated_at > now() - interval '1 day'
            """).first
        return Watermark(partitions: try row?.int(0) ?? 0, unknown: try row?.int(1) ?? 0, completeUntil: row.flatMap { $0.isNull(2) ? nil : try? $0.date(2) })
    }

    /// Publishes that minutes before `time` are scored: counts stored for them from now on are late.
    public static func publishScored(until time: Date, on connection: PostgresConnection) throws {
        try connection.transaction { connection in
            try connection.query("SELECT pg_advisory_xact_lock($1, $2)", [.int(lock.space), .int(lock.id)])
            try connection.query("""
                INSERT INTO analysis_state (key, value) VALUES ($1, to_jsonb($2::timestamptz))
                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                """, [.text(scoredKey), .timestamp(time)])
        }
    }

    /// Part of a batch's transaction, after its counts are staged in `ingest_counts`: the
    /// minutes among them that are already scored become late counts.
    static let markLate = """
        SELECT pg_advisory_xact_lock_shared(\(lock.space), \(lock.id));
        INSERT INTO late_counts AS l (service, bucket, events)
        SELECT c.service, c.bucket, sum(c.n) FROM ingest_counts c
        JOIN analysis_state s ON s.key = '\(scoredKey)' AND c.bucket < (s.value #>> '{}')::timestamptz
        GROUP BY c.service, c.bucket ORDER BY c.service, c.bucket
        ON CONFLICT (service, bucket) DO UPDATE SET events = l.events + EXCLUDED.events
        """

    /// The late counts, oldest first, at most `limit`.
    public static func lateCounts(limit: Int = 100_000, on connection: PostgresConnection) throws -> [LateCount] {
        try connection.query("SELECT service, bucket, events FROM late_counts ORDER BY bucket, service LIMIT $1", [.int(Int64(limit))])
            .rows.map { LateCount(service: try $0.string(0), bucket: try $0.date(1), events: try $0.int(2)) }
    }

    /// Deletes late counts that were handled; one that gained events since it was read stays.
    public static func forget(_ late: [LateCount], on connection: PostgresConnection) throws {
        guard !late.isEmpty else { return }
        struct Row: Encodable { var service: String, bucket: String, events: Int }
        let json = try encodeJSON(late.map { Row(service: $0.service, bucket: PostgresTimestamp.format($0.bucket), events: $0.events) })
        try connection.query("""
            DELETE FROM late_counts l USING jsonb_to_recordset($1::jsonb) AS r(service text, bucket timestamptz, events bigint)
            WHERE l.service = r.service AND l.bucket = r.bucket AND l.events = r.events
            """, [.json(json)])
    }
}
