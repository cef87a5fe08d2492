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

    public init() {}
    public var isEmpty: Bool { events.isEmpty && deadLetters.isEmpty && deployments.isEmpty }
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
    /// - Throws: ``PostgresError``; the transaction is then rolled back and nothing of the
    ///   batch is stored.
    public static func write(_ batch: IngestBatch, on connection: PostgresConnection) throws -> WriteResult {
        try connection.transaction { connection in
            var result = WriteResult(inserted: 0, duplicates: 0, deadLetters: 0, deployments: 0)
            for deployment in batch.deployments {
                result.deployments += try DeploymentStore.insert(deployment, on: connection) ? 1 : 0
            }
            for letter in batch.deadLetters {
                result.deadLetters += try DeadLetterStore.insert(letter, on: connection) ? 1 : 0
            }
            if !batch.events.isEmpty {
                result.inserted = try insertEvents(batch.events, on: connection)
                result.duplicates = batch.events.count - result.inserted
            }
            return result
        }
    }

    private static func insertEvents(_ events: [EnrichedEvent], on connection: PostgresConnection) throws -> Int {
        // A session-local staging table, emptied at every commit.
        try connection.execute("""
            CREATE TEMP TABLE IF NOT EXISTS ingest_staging (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
            CREATE TEMP TABLE IF NOT EXISTS ingest_templates (fingerprint text, template text) ON COMMIT DELETE ROWS
            """)
        let columnList = columns.joined(separator: ", ")
        try connection.copyFrom("COPY ingest_staging (\(columnList)) FROM STDIN") { writer in
            for item in events {
                let e = item.event
                try writer.field(e.eventID.uuidString)
                writer.field(e.timestamp)
                try writer.field(item.fingerprint)
                try writer.field(e.service)
                try writer.field(e.environment)
                try writer.field(item.version)
                try writer.field(e.severity.rawValue)
                try writer.field(e.errorType)
                try writer.field(e.message)
                try writer.field(e.stacktrace)
                try writer.field(e.errorCode)
                writer.field(e.httpStatus)
                try writer.field(e.traceID)
                try writer.field(e.spanID)
                try writer.field(e.host)
                try writer.field(e.pod)
                try writer.field(e.namespace)
                try writer.field(item.region)
                try writer.field(item.deployment?.commit)
                writer.field(item.deployment?.deploymentID.map { Int($0) })
                writer.field(item.deployment?.startedAt)
                writer.field(item.deployment.map { $0.secondsSinceRollout(at: e.timestamp) })
                try writer.field(e.attributesJSON)
                try writer.field(e.format.rawValue)
                try writer.field(item.origin.topic)
                writer.field(Int(item.origin.partition))
                writer.field(Int(item.origin.offset))
                try writer.endRow()
            }
        }
        var templates: [String: String] = [:]
        for item in events { templates[item.fingerprint] = item.template }
        try connection.copyFrom("COPY ingest_templates (fingerprint, template) FROM STDIN") { writer in
            for (fingerprint, template) in templates {
                try writer.field(fingerprint)
                try writer.field(template)
                try writer.endRow()
            }
        }
        // One statement: insert what is new, then count only what was inserted. The
        // sub-statements share one snapshot, so the counters see exactly the RETURNING rows.
        let rows = try connection.query("""
            WITH inserted AS (
                INSERT INTO events (\(columnList))
                SELECT \(columnList) FROM ingest_staging
                ON CONFLICT (event_id, occurred_at) DO NOTHING
                RETURNING fingerprint, service, error_type, occurred_at, version
            ), per_group AS (
                SELECT fingerprint, min(service) AS service, min(error_type) AS error_type, count(*) AS n,
                       min(occurred_at) AS first_seen, max(occurred_at) AS last_seen,
                       (array_agg(version ORDER BY occurred_at) FILTER (WHERE version IS NOT NULL))[1] AS first_version,
                       (array_agg(version ORDER BY occurred_at DESC) FILTER (WHERE version IS NOT NULL))[1] AS last_version
                FROM inserted GROUP BY fingerprint
            ), upsert_groups AS (
                INSERT INTO groups AS g (fingerprint, service, error_type, template, first_seen, last_seen, event_count,
                                         first_version, last_version)
                SELECT p.fingerprint, p.service, p.error_type, t.template, p.first_seen, p.last_seen, p.n,
                       p.first_version, p.last_version
                FROM per_group p JOIN ingest_templates t USING (fingerprint)
                ON CONFLICT (fingerprint) DO UPDATE SET
                    event_count = g.event_count + EXCLUDED.event_count,
                    first_seen = least(g.first_seen, EXCLUDED.first_seen),
                    last_seen = greatest(g.last_seen, EXCLUDED.last_seen),
                    first_version = CASE WHEN EXCLUDED.first_seen < g.first_seen OR g.first_version IS NULL
                                         THEN coalesce(EXCLUDED.first_version, g.first_version) ELSE g.first_version END,
                    last_version = CASE WHEN EXCLUDED.last_seen >= g.last_seen OR g.last_version IS NULL
                                        THEN coalesce(EXCLUDED.last_version, g.last_version) ELSE g.last_version END,
                    updated_at = now()
            ), upsert_counts AS (
                INSERT INTO event_counts AS c (fingerprint, service, bucket, count)
                SELECT fingerprint, min(service), date_trunc('minute', occurred_at), count(*)
                FROM inserted GROUP BY fingerprint, date_trunc('minute', occurred_at)
                ON CONFLICT (fingerprint, bucket) DO UPDATE SET count = c.count + EXCLUDED.count
            )
            SELECT count(*) FROM inserted
            """)
        return try rows.first?.int(0) ?? 0
    }
}

public enum DeploymentStore {
    /// Inserts a deployment; `false` when the same rollout is already recorded.
    public static func insert(_ d: Deployment, on connection: PostgresConnection) throws -> Bool {
        try connection.query("""
            INSERT INTO deployments (service, environment, version, commit_sha, region, started_at)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
            """, [.text(d.service), .text(d.environment), .text(d.version), .optional(d.commit), .optional(d.region),
                  .timestamp(d.startedAt)]).affectedRows == 1
    }

    /// Deployments with an id above `id`, oldest id first.
    public static func load(after id: Int64, on connection: PostgresConnection) throws -> [Deployment] {
        try connection.query("""
            SELECT id, service, environment, version, commit_sha, region, started_at
            FROM deployments WHERE id > $1 ORDER BY id
            """, [.int(id)]).rows.map { row in
            Deployment(id: Int64(try row.int(0)), service: try row.string(1), environment: try row.string(2),
                       version: try row.string(3), commit: row.optionalString(4), region: row.optionalString(5),
                       startedAt: try row.date(6))
        }
    }
}

public enum DeadLetterStore {
    /// Records a dead letter; `false` when that message was recorded before (a replay).
    public static func insert(_ letter: DeadLetter, on connection: PostgresConnection) throws -> Bool {
        let headers = letter.headers.map { header -> [String: Any] in
            ["name": header.name, "value": header.value.map { String(decoding: $0, as: UTF8.self) } as Any]
        }
        let headersJSON = (try? JSONSerialization.data(withJSONObject: headers)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        return try connection.query("""
            INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_key, message_value, headers, reason)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
            ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
            """, [.text(letter.origin.topic), .int(Int64(letter.origin.partition)), .int(letter.origin.offset),
                  letter.key.map { .bytes($0) } ?? .null, .bytes(letter.value),
                  .json(headersJSON.replacingOccurrences(of: "\\u0000", with: "\\ufffd")), .text(letter.reason)]).affectedRows == 1
    }
}
