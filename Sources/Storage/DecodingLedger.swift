import Domain
import Foundation
import Postgres

/// Where one partition's decoding stands, as recorded before the decoding starts.
public struct DecodingRecord: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// The range being decoded (or still suspect), both ends included.
    public var first: Int64
    public var last: Int64
    /// The one message being decoded alone, when the range is decoded one message at a time.
    public var current: Int64?
    /// The process that wrote it; the nil UUID for a range left to the next reader.
    public var owner: UUID

    public init(topic: String, partition: Int32, first: Int64, last: Int64, current: Int64? = nil, owner: UUID) {
        self.topic = topic
        self.partition = partition
        self.first = first
        self.last = last
        self.current = current
        self.owner = owner
    }
}

/// The record of what ingest is decoding (`ingest_decoding`): written and committed before a
/// message is decoded, removed after, so that a range a process died in is known to the next.
public enum DecodingLedger {
    /// The owner of a range that nobody is decoding now but that is still suspect.
    public static let unowned = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// Runs `body` in a transaction whose commit does not wait for its WAL to reach the disk.
    ///
    /// The ledger guards against a message that stops *this* process, whose records PostgreSQL
    /// keeps and shows at once however it commits; only a crash of PostgreSQL itself within a
    /// fraction of a second could lose one. Lost, a claim costs the guard one round (the
    /// message stops one process more before it is set aside) and a release one careful
    /// re-read. Waiting for the disk twice per batch would cost more: two extra flushes beside
    /// each batch's own.
    public static func withoutFlush<T>(on connection: PostgresConnection, _ body: (PostgresConnection) throws -> T) throws -> T {
        try connection.transaction { connection in
            try connection.execute("SET LOCAL synchronous_commit TO off")
            return try body(connection)
        }
    }

    /// Records `claims` where their partition has no record yet, in one statement.
    ///
    /// - Returns: the records other owners left for these partitions (kept as they were): a
    ///   process that died while decoding them, or that lost the partition mid-batch.
    public static func claim(_ claims: [DecodingRecord], on connection: PostgresConnection) throws -> [DecodingRecord] {
        guard !claims.isEmpty else { return [] }
        var values: [String] = []
        var parameters: [PostgresValue] = []
        for claim in claims {
            let n = parameters.count
            values.append("($\(n + 1)::text, $\(n + 2)::integer, $\(n + 3)::bigint, $\(n + 4)::bigint, $\(n + 5)::uuid)")
            parameters += [.text(claim.topic), .int(Int64(claim.partition)), .int(claim.first), .int(claim.last), .uuid(claim.owner)]
        }
        // The outer SELECT sees the table as it was before the INSERT: exactly the rows that
        // were there already.
        let rows = try connection.query("""
            WITH input (topic, kafka_partition, first_offset, last_offset, owner) AS (VALUES \(values.joined(separator: ", "))),
            claimed AS (
                INSERT INTO ingest_decoding (topic, kafka_partition, first_offset, last_offset, owner)
                SELECT * FROM input ON CONFLICT (topic, kafka_partition) DO NOTHING
            )
            SELECT d.topic, d.kafka_partition, d.first_offset, d.last_offset, d.current_offset, d.owner
            FROM ingest_decoding d JOIN input i USING (topic, kafka_partition)
            """, parameters)
        return try rows.map(record)
    }

    /// One message's place in its topic.
    public struct Position: Hashable, Sendable {
        public var topic: String
        public var partition: Int32
        public var offset: Int64

        public init(topic: String, partition: Int32, offset: Int64) {
            self.topic = topic
            self.partition = partition
            self.offset = offset
        }
    }

    /// The messages inside `ranges` already set aside because they stopped a process twice
    /// (dead letters whose reason starts with `reason`). Read with every claim: a message set
    /// aside whose offset commit was lost (a rebalance, a crash before the commit) comes back,
    /// and the decoding records no longer say that it kills.
    public static func setAside(within ranges: [DecodingRecord], reason: String, on connection: PostgresConnection) throws -> Set<Position> {
        guard !ranges.isEmpty else { return [] }
        var values: [String] = []
        var parameters: [PostgresValue] = [.text(reason + "%")]
        for range in ranges {
            let n = parameters.count
            values.append("($\(n + 1)::text, $\(n + 2)::integer, $\(n + 3)::bigint, $\(n + 4)::bigint)")
            parameters += [.text(range.topic), .int(Int64(range.partition)), .int(range.first), .int(range.last)]
        }
        let rows = try connection.query("""
            WITH input (topic, kafka_partition, first_offset, last_offset) AS (VALUES \(values.joined(separator: ", ")))
            SELECT l.source_topic, l.source_partition, l.source_offset FROM dead_letters l
            JOIN input i ON l.source_topic = i.topic AND l.source_partition = i.kafka_partition
                AND l.source_offset BETWEEN i.first_offset AND i.last_offset
            WHERE l.reason LIKE $1
            """, parameters)
        return Set(try rows.map { Position(topic: try $0.string(0), partition: Int32(clamping: try $0.int(1)), offset: Int64(try $0.int(2))) })
    }

    /// Sets (or replaces) one partition's record.
    public static func set(_ record: DecodingRecord, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO ingest_decoding (topic, kafka_partition, first_offset, last_offset, current_offset, owner)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (topic, kafka_partition) DO UPDATE SET
                first_offset = excluded.first_offset, last_offset = excluded.last_offset,
                current_offset = excluded.current_offset, owner = excluded.owner, updated_at = now()
            """, [.text(record.topic), .int(Int64(record.partition)), .int(record.first), .int(record.last),
                  record.current.map { .int($0) } ?? .null, .uuid(record.owner)])
    }

    /// Removes a partition's record.
    public static func remove(topic: String, partition: Int32, on connection: PostgresConnection) throws {
        try connection.query("DELETE FROM ingest_decoding WHERE topic = $1 AND kafka_partition = $2",
                             [.text(topic), .int(Int64(partition))])
    }

    /// Removes every record `owner` holds (its decoding is done) and leaves `deferred` (suspect
    /// ranges the batch did not reach) to the next reader, in one transaction.
    public static func release(owner: UUID, deferred: [DecodingRecord] = [], on connection: PostgresConnection) throws {
        if deferred.isEmpty {
            try connection.query("DELETE FROM ingest_decoding WHERE owner = $1", [.uuid(owner)])
            return
        }
        try connection.transaction { connection in
            try connection.query("DELETE FROM ingest_decoding WHERE owner = $1", [.uuid(owner)])
            for record in deferred { try set(record, on: connection) }
        }
    }

    /// A row of `topic, kafka_partition, first_offset, last_offset, current_offset, owner`.
    private static func record(_ row: PostgresRow) throws -> DecodingRecord {
        DecodingRecord(
            topic: try row.string(0), partition: Int32(clamping: try row.int(1)), first: Int64(try row.int(2)),
            last: Int64(try row.int(3)), current: row.isNull(4) ? nil : Int64(try row.int(4)),
            owner: UUID(uuidString: try row.string(5)) ?? unowned)
    }

    /// Every record, for tests and diagnostics.
    public static func all(on connection: PostgresConnection) throws -> [DecodingRecord] {
        try connection.query("""
            SELECT topic, kafka_partition, first_offset, last_offset, current_offset, owner FROM ingest_decoding
            ORDER BY topic, kafka_partition
            """).map(record)
    }
}
