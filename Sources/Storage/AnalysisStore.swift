import Domain
import Foundation
import Postgres

/// A group as the analysis job sees it.
public struct GroupRecord: Sendable, Equatable {
    public var fingerprint: String
    public var service: String
    public var errorType: String?
    public var template: String
    public var topFrames: String?
    public var firstSeen: Date
    public var lastSeen: Date
    public var eventCount: Int
    public var firstVersion: String?
    public var lastVersion: String?
    public var status: String
    public var statusChangedAt: Date?
    public var resolvedInVersion: String?
    public var templateID: Int?
    public var issueFingerprint: String?
    public var clusterID: Int64?

    public init(
        fingerprint: String, service: String, errorType: String? = nil, template: String, topFrames: String? = nil,
        firstSeen: Date, lastSeen: Date, eventCount: Int, firstVersion: String? = nil, lastVersion: String? = nil,
        status: String = "open", statusChangedAt: Date? = nil, resolvedInVersion: String? = nil, templateID: Int? = nil,
        issueFingerprint: String? = nil, clusterID: Int64? = nil
    ) {
        self.fingerprint = fingerprint
        self.service = service
        self.errorType = errorType
        self.template = template
        self.topFrames = topFrames
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.eventCount = eventCount
        self.firstVersion = firstVersion
        self.lastVersion = lastVersion
        self.status = status
        self.statusChangedAt = statusChangedAt
        self.resolvedInVersion = resolvedInVersion
        self.templateID = templateID
        self.issueFingerprint = issueFingerprint
        self.clusterID = clusterID
    }
}

/// A mined template as persisted.
public struct TemplateRecord: Sendable, Equatable {
    public var id: Int
    public var template: String
    public var tokens: [String]
    public var groupCount: Int

    public init(id: Int, template: String, tokens: [String], groupCount: Int) {
        self.id = id
        self.template = template
        self.tokens = tokens
        self.groupCount = groupCount
    }
}

/// A k-means cluster of groups.
public struct ClusterRecord: Sendable, Equatable {
    public var id: Int64?
    public var generation: Int
    public var label: String
    public var terms: [String]
    public var services: [String]
    public var groupCount: Int
    public var eventCount: Int
    public var centroid: [Float]
    public var createdAt: Date?

    public init(id: Int64? = nil, generation: Int, label: String, terms: [String], services: [String], groupCount: Int,
                eventCount: Int, centroid: [Float], createdAt: Date? = nil) {
        self.id = id
        self.generation = generation
        self.label = label
        self.terms = terms
        self.services = services
        self.groupCount = groupCount
        self.eventCount = eventCount
        self.centroid = centroid
        self.createdAt = createdAt
    }
}

/// One scored bucket that alerted.
public struct SpikeRecord: Sendable, Equatable {
    public var series: String
    public var service: String
    public var fingerprint: String?
    public var bucket: Date
    public var kind: Insight.Kind
    public var observed: Double
    public var expected: Double
    public var score: Double
    public var pValue: Double
    public var insightID: Int64?
    /// A burst in the quiet period after an alert: it grew `insightID`, nothing was sent.
    public var suppressed: Bool

    public init(series: String, service: String, fingerprint: String?, bucket: Date, kind: Insight.Kind, observed: Double,
                expected: Double, score: Double, pValue: Double, insightID: Int64? = nil, suppressed: Bool = false) {
        self.suppressed = suppressed
        self.series = series
        self.service = service
        self.fingerprint = fingerprint
        self.bucket = bucket
        self.kind = kind
        self.observed = observed
        self.expected = expected
        self.score = score
        self.pValue = pValue
        self.insightID = insightID
    }
}

/// A forecast that crosses its threshold.
public struct PredictionRecord: Sendable, Equatable {
    public var series: String
    public var service: String
    public var fingerprint: String?
    public var threshold: Double
    public var currentValue: Double
    public var predictedValue: Double
    public var breachAt: Date
    public var madeAt: Date
    public var insightID: Int64?

    public init(series: String, service: String, fingerprint: String?, threshold: Double, currentValue: Double,
                predictedValue: Double, breachAt: Date, madeAt: Date, insightID: Int64? = nil) {
        self.series = series
        self.service = service
        self.fingerprint = fingerprint
        self.threshold = threshold
        self.currentValue = currentValue
        self.predictedValue = predictedValue
        self.breachAt = breachAt
        self.madeAt = madeAt
        self.insightID = insightID
    }
}

/// One per-minute count of a group.
/// A group's counts over a window: bucket offsets from the window's start and their counts,
/// in no particular order.
public struct CountHistory: Sendable, Equatable {
    public var service: String
    public var fingerprint: String
    public var offsets: [Int]
    public var counts: [Int]
}

public struct CountRecord: Sendable, Equatable {
    public var fingerprint: String
    public var service: String
    public var bucket: Date
    public var count: Int
}

/// Every statement of the analysis job: what it reads (groups, counts, deployments) and what
/// it writes (templates, clusters, spikes, predictions, insights and their recommendations).
/// Batches travel as one JSON parameter (`jsonb_to_recordset`), so a write is one round trip.
public enum AnalysisStore {
    // MARK: State between runs

    /// A value the job keeps between runs, as JSON text.
    public static func state(_ key: String, on connection: PostgresConnection) throws -> String? {
        try connection.query("SELECT value::text FROM analysis_state WHERE key = $1", [.text(key)]).first?.optionalString(0)
    }

    public static func setState(_ key: String, json: String, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO analysis_state (key, value) VALUES ($1, $2::jsonb)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
            """, [.text(key), .json(json)])
    }

    // MARK: Templates and groups

    public static func templates(on connection: PostgresConnection) throws -> [TemplateRecord] {
        try connection.query("SELECT id, template, array_to_json(tokens)::text, group_count FROM templates ORDER BY id").rows.map { row in
            TemplateRecord(id: try row.int(0), template: try row.string(1), tokens: try decodeJSON([String].self, row.string(2)),
                           groupCount: try row.int(3))
        }
    }

    /// Inserts or updates templates by id.
    public static func saveTemplates(_ templates: [TemplateRecord], on connection: PostgresConnection) throws {
        guard !templates.isEmpty else { return }
        struct Row: Encodable { let id: Int; let template: String; let tokens: [String]; let group_count: Int }
        let json = try encodeJSON(templates.map { Row(id: $0.id, template: $0.template, tokens: $0.tokens, group_count: $0.groupCount) })
        try connection.query("""
            INSERT INTO templates AS t (id, template, tokens, group_count)
            SELECT x.id, x.template, ARRAY(SELECT jsonb_array_elements_text(x.tokens)), x.group_count
            FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, template text, tokens jsonb, group_count bigint)
            ON CONFLICT (id) DO UPDATE SET template = EXCLUDED.template, tokens = EXCLUDED.tokens,
                group_count = EXCLUDED.group_count, updated_at = now()
            """, [.json(json)])
    }

    static let groupColumns = """
        fingerprint, service, error_type, template, top_frames, first_seen, last_seen, event_count, first_version,
        last_version, status, status_changed_at, resolved_in_version, template_id, issue_fingerprint, cluster_id
        """

    static func group(_ row: PostgresRow) throws -> GroupRecord {
        GroupRecord(
            fingerprint: try row.string(0), service: try row.string(1), errorType: row.optionalString(2), template: try row.string(3),
            topFrames: row.optionalString(4), firstSeen: try row.date(5), lastSeen: try row.date(6), eventCount: try row.int(7),
            firstVersion: row.optionalString(8), lastVersion: row.optionalString(9), status: try row.string(10),
            statusChangedAt: row.isNull(11) ? nil : try row.date(11), resolvedInVersion: row.optionalString(12),
            templateID: row.isNull(13) ? nil : try row.int(13), issueFingerprint: row.optionalString(14),
            clusterID: row.isNull(15) ? nil : Int64(try row.int(15)))
    }

    /// Groups the job has not looked at yet, oldest first.
    public static func unanalyzedGroups(limit: Int, on connection: PostgresConnection) throws -> [GroupRecord] {
        try connection.query("""
            SELECT \(groupColumns) FROM groups WHERE analyzed_at IS NULL ORDER BY first_seen, fingerprint LIMIT $1
            """, [.int(Int64(limit))]).rows.map(group)
    }

    /// Records each group's mined template and the group it folds into: the first group
    /// (by first seen, then fingerprint) with the same service, error type and template.
    public static func markAnalyzed(_ assignments: [(fingerprint: String, templateID: Int)], on connection: PostgresConnection) throws {
        guard !assignments.isEmpty else { return }
        struct Row: Encodable { let fingerprint: String; let template_id: Int }
        let json = try encodeJSON(assignments.map { Row(fingerprint: $0.fingerprint, template_id: $0.templateID) })
        try connection.query("""
            UPDATE groups g SET template_id = x.template_id, analyzed_at = now()
            FROM jsonb_to_recordset($1::jsonb) AS x(fingerprint text, template_id bigint)
            WHERE g.fingerprint = x.fingerprint
            """, [.json(json)])
        try connection.query("""
            UPDATE groups g SET issue_fingerprint = (
                SELECT o.fingerprint FROM groups o
                WHERE o.service = g.service AND o.error_type IS NOT DISTINCT FROM g.error_type
                  AND o.template_id = g.template_id
                ORDER BY o.first_seen, o.fingerprint LIMIT 1)
            FROM jsonb_to_recordset($1::jsonb) AS x(fingerprint text, template_id bigint)
            WHERE g.fingerprint = x.fingerprint
            """, [.json(json)])
    }

    /// The dedupe keys of insights that start with `prefix`.
    public static func insightKeys(prefix: String, on connection: PostgresConnection) throws -> [String] {
        try connection.query("SELECT dedupe_key FROM insights WHERE starts_with(dedupe_key, $1)", [.text(prefix)]).rows.map { try $0.string(0) }
    }

    /// When the first group was first seen: the start of the baseline new errors are new against.
    public static func earliestFirstSeen(on connection: PostgresConnection) throws -> Date? {
        let row = try connection.query("SELECT min(first_seen) FROM groups").first
        return row.flatMap { $0.isNull(0) ? nil : try? $0.date(0) }
    }

    /// Groups seen since `since`, most events first, at most `limit`: what k-means clusters.
    public static func activeGroups(since: Date, limit: Int, on connection: PostgresConnection) throws -> [GroupRecord] {
        try connection.query("""
            SELECT \(groupColumns) FROM groups WHERE last_seen >= $1 AND status <> 'ignored'
            ORDER BY event_count DESC, fingerprint LIMIT $2
            """, [.timestamp(since), .int(Int64(limit))]).rows.map(group)
    }

    public static func group(_ fingerprint: String, on connection: PostgresConnection) throws -> GroupRecord? {
        try connection.query("SELECT \(groupColumns) FROM groups WHERE fingerprint = $1", [.text(fingerprint)]).rows.first.map(group)
    }

    /// fingerprint → the group it folds into, for every group that folds into another.
    public static func issueMap(on connection: PostgresConnection) throws -> [String: String] {
        var map: [String: String] = [:]
        for row in try connection.query("""
            SELECT fingerprint, issue_fingerprint FROM groups WHERE issue_fingerprint IS NOT NULL AND issue_fingerprint <> fingerprint
            """) {
            map[try row.string(0)] = try row.string(1)
        }
        return map
    }

    // MARK: Clusters

    /// Writes a new generation of clusters and points every clustered group at its cluster.
    /// - Returns: the ids of the clusters, in the order given.
    public static func saveClusters(
        _ clusters: [ClusterRecord], members: [(fingerprint: String, cluster: Int)], on connection: PostgresConnection
    ) throws -> [Int64] {
        var ids: [Int64] = []
        for cluster in clusters {
            let row = try connection.query("""
                INSERT INTO clusters (generation, label, terms, services, group_count, event_count, centroid)
                VALUES ($1, $2, ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), ARRAY(SELECT jsonb_array_elements_text($4::jsonb)),
                        $5, $6, ARRAY(SELECT jsonb_array_elements_text($7::jsonb)::real))
                RETURNING id
                """, [.int(Int64(cluster.generation)), .text(cluster.label), .json(try encodeJSON(cluster.terms)),
                      .json(try encodeJSON(cluster.services)), .int(Int64(cluster.groupCount)), .int(Int64(cluster.eventCount)),
                      .json(try encodeJSON(cluster.centroid.map { $0.isFinite ? $0 : 0 }))])
            ids.append(Int64(try row.one().int(0)))
        }
        try assignClusters(members.map { ($0.fingerprint, ids[$0.cluster]) }, on: connection)
        // Older generations are kept a while for insights that name them.
        try connection.query("DELETE FROM clusters WHERE generation < $1 - 10", [.int(Int64(clusters.first?.generation ?? 0))])
        return ids
    }

    public static func assignClusters(_ members: [(fingerprint: String, clusterID: Int64)], on connection: PostgresConnection) throws {
        guard !members.isEmpty else { return }
        struct Row: Encodable { let fingerprint: String; let cluster_id: Int64 }
        try connection.query("""
            UPDATE groups g SET cluster_id = x.cluster_id
            FROM jsonb_to_recordset($1::jsonb) AS x(fingerprint text, cluster_id bigint)
            WHERE g.fingerprint = x.fingerprint
            """, [.json(try encodeJSON(members.map { Row(fingerprint: $0.fingerprint, cluster_id: $0.clusterID) }))])
    }

    /// The clusters of the newest generation.
    public static func currentClusters(on connection: PostgresConnection) throws -> [ClusterRecord] {
        try connection.query("""
            SELECT id, generation, label, array_to_json(terms)::text, array_to_json(services)::text, group_count, event_count,
                   array_to_json(centroid)::text, created_at
            FROM clusters WHERE generation = (SELECT max(generation) FROM clusters) ORDER BY id
            """).rows.map { row in
            ClusterRecord(
                id: Int64(try row.int(0)), generation: try row.int(1), label: try row.string(2),
                terms: try decodeJSON([String].self, row.string(3)), services: try decodeJSON([String].self, row.string(4)),
                groupCount: try row.int(5), eventCount: try row.int(6), centroid: try decodeJSON([Float].self, row.string(7)),
                createdAt: try row.date(8))
        }
    }

    // MARK: Series

    /// Every group's counts in `[from, to)`, of every service or of one, a row per group: what
    /// rebuilding the series needs, in one statement whose rows do not grow with the minutes.
    /// Buckets are `bucketSeconds` long, counted from `from`; a group's counts come in no
    /// particular order, and a bucket longer than a stored minute appears more than once.
    public static func countHistories(
        from: Date, to: Date, bucketSeconds: Int, service: String? = nil, on connection: PostgresConnection,
        _ body: (CountHistory) throws -> Void
    ) throws {
        let rows = try connection.transaction { connection -> PostgresRows in
            // Room to hash a day of counts per group, which would otherwise be sorted on disk.
            _ = try connection.execute("SET LOCAL work_mem = '64MB'")
            return try connection.query("""
                SELECT service, fingerprint, array_agg((extract(epoch FROM bucket)::bigint - $3) / $4)::text, array_agg(count)::text
                FROM event_counts
                WHERE bucket >= $1 AND bucket < $2 AND ($5::text IS NULL OR service = $5)
                GROUP BY service, fingerprint
                """, [.timestamp(from), .timestamp(to), .int(Int64(from.timeIntervalSince1970.rounded(.down))),
                      .int(Int64(bucketSeconds)), .optional(service)])
        }
        for row in rows {
            let offsets = try row.integers(2)
            let counts = try row.integers(3)
            guard offsets.count == counts.count else {
                throw PostgresError(.decoding, "\(offsets.count) buckets but \(counts.count) counts", operation: "read count histories")
            }
            try body(CountHistory(service: try row.string(0), fingerprint: try row.string(1), offsets: offsets, counts: counts))
        }
    }

    /// Per-minute counts in `[from, to)`, of every service or of one.
    public static func counts(from: Date, to: Date, service: String? = nil, on connection: PostgresConnection) throws -> [CountRecord] {
        try connection.query("""
            SELECT fingerprint, service, bucket, count FROM event_counts
            WHERE bucket >= $1 AND bucket < $2 AND ($3::text IS NULL OR service = $3) ORDER BY bucket
            """, [.timestamp(from), .timestamp(to), .optional(service)]).rows.map { row in
            CountRecord(fingerprint: try row.string(0), service: try row.string(1), bucket: try row.date(2), count: try row.int(3))
        }
    }

    /// The groups with the most events in `[from, to)` for a service, most first.
    public static func topGroups(
        service: String, from: Date, to: Date, limit: Int, on connection: PostgresConnection
    ) throws -> [(group: GroupRecord, count: Int)] {
        try connection.query("""
            SELECT \(groupColumns.split(separator: ",").map { "g." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")),
                   c.n
            FROM (SELECT fingerprint, sum(count) AS n FROM event_counts
                  WHERE service = $1 AND bucket >= $2 AND bucket < $3 GROUP BY fingerprint) c
            JOIN groups g USING (fingerprint)
            ORDER BY c.n DESC, g.fingerprint LIMIT $4
            """, [.text(service), .timestamp(from), .timestamp(to), .int(Int64(limit))]).rows.map { row in
            (try group(row), try row.int(16))
        }
    }

    /// How the events of some groups in `[from, to)` divide among environments and versions,
    /// most events first.
    public static func eventContext(
        fingerprints: [String], from: Date, to: Date, on connection: PostgresConnection
    ) throws -> [(environment: String, version: String?, count: Int)] {
        guard !fingerprints.isEmpty else { return [] }
        return try connection.query("""
            SELECT environment, version, count(*) FROM events
            WHERE fingerprint = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) AND occurred_at >= $2 AND occurred_at < $3
            GROUP BY environment, version ORDER BY count(*) DESC, environment, version LIMIT 20
            """, [.json(try encodeJSON(fingerprints)), .timestamp(from), .timestamp(to)]).rows.map { row in
            (try row.string(0), row.optionalString(1), try row.int(2))
        }
    }

    /// The environment of each group's first event (`nil` for a group without one), in one
    /// statement.
    public static func firstEnvironments(of fingerprints: [String], on connection: PostgresConnection) throws -> [String: String?] {
        guard !fingerprints.isEmpty else { return [:] }
        var found: [String: String?] = [:]
        for row in try connection.query("""
            SELECT f.fingerprint,
                   (SELECT environment FROM events e WHERE e.fingerprint = f.fingerprint ORDER BY occurred_at LIMIT 1)
            FROM jsonb_array_elements_text($1::jsonb) AS f(fingerprint)
            """, [.json(try encodeJSON(fingerprints))]) {
            found[try row.string(0)] = try row.optionalString(1)
        }
        return found
    }

    /// One recent message of each group (`nil` for a group without one), in one statement.
    public static func sampleMessages(of fingerprints: [String], on connection: PostgresConnection) throws -> [String: String?] {
        guard !fingerprints.isEmpty else { return [:] }
        var found: [String: String?] = [:]
        for row in try connection.query("""
            SELECT f.fingerprint,
                   (SELECT message FROM events e WHERE e.fingerprint = f.fingerprint ORDER BY occurred_at DESC LIMIT 1)
            FROM jsonb_array_elements_text($1::jsonb) AS f(fingerprint)
            """, [.json(try encodeJSON(fingerprints))]) {
            found[try row.string(0)] = try row.optionalString(1)
        }
        return found
    }

    /// A new group's template to look for in other services (``templatesNewElsewhere(_:on:)``).
    public struct TemplateCheck: Sendable {
        public var fingerprint: String
        public var templateID: Int
        public var service: String
        public var since: Date

        public init(fingerprint: String, templateID: Int, service: String, since: Date) {
            self.fingerprint = fingerprint
            self.templateID = templateID
            self.service = service
            self.since = since
        }
    }

    /// The fingerprints among `checks` whose template a group of another service has also had
    /// since the check's time: the same error new in several services at once.
    public static func templatesNewElsewhere(_ checks: [TemplateCheck], on connection: PostgresConnection) throws -> Set<String> {
        guard !checks.isEmpty else { return [] }
        struct Row: Encodable { let fingerprint: String; let template_id: Int; let service: String; let since: Double }
        let json = try encodeJSON(checks.map {
            Row(fingerprint: $0.fingerprint, template_id: $0.templateID, service: $0.service, since: $0.since.timeIntervalSince1970)
        })
        var found = Set<String>()
        for row in try connection.query("""
            SELECT x.fingerprint FROM jsonb_to_recordset($1::jsonb) AS x(fingerprint text, template_id bigint, service text, since double precision)
            WHERE EXISTS (SELECT 1 FROM groups g WHERE g.template_id = x.template_id AND g.service <> x.service
                          AND g.first_seen >= to_timestamp(x.since))
            """, [.json(json)]) {
            found.insert(try row.string(0))
        }
        return found
    }

    /// One recent message of a group as it was sent (masking hides names such as the
    /// dependency a timeout was calling).
    public static func sampleMessage(of fingerprint: String, on connection: PostgresConnection) throws -> String? {
        try connection.query("""
            SELECT message FROM events WHERE fingerprint = $1 ORDER BY occurred_at DESC LIMIT 1
            """, [.text(fingerprint)]).first?.optionalString(0)
    }

    // MARK: Regressions

    /// Resolved groups with events after they were resolved.
    public static func returningResolvedGroups(on connection: PostgresConnection) throws -> [GroupRecord] {
        try connection.query("""
            SELECT \(groupColumns) FROM groups WHERE status = 'resolved' AND last_seen > status_changed_at ORDER BY fingerprint
            """).rows.map(group)
    }

    /// The versions each group's events ran since its time, each with its first time, earliest
    /// first; in one statement for all of them.
    public static func versions(since: [(fingerprint: String, since: Date)], on connection: PostgresConnection) throws
        -> [String: [(version: String?, first: Date)]]
    {
        guard !since.isEmpty else { return [:] }
        struct Row: Encodable { let fingerprint: String; let since: String }
        let json = try encodeJSON(since.map { Row(fingerprint: $0.fingerprint, since: PostgresTimestamp.format($0.since)) })
        var found: [String: [(version: String?, first: Date)]] = [:]
        for row in try connection.query("""
            SELECT g.fingerprint, v.version, v.first
            FROM jsonb_to_recordset($1::jsonb) AS g(fingerprint text, since timestamptz)
            CROSS JOIN LATERAL (
                SELECT version, min(occurred_at) AS first FROM events e
                WHERE e.fingerprint = g.fingerprint AND e.occurred_at > g.since GROUP BY version
            ) v
            ORDER BY g.fingerprint, v.first
            """, [.json(json)]) {
            found[try row.string(0), default: []].append((row.optionalString(1), try row.date(2)))
        }
        return found
    }

    /// Sets a group's status. Resolving remembers the latest version seen, so only a later
    /// one reopens it.
    public static func setStatus(_ fingerprint: String, _ status: String, at time: Date = Date(), on connection: PostgresConnection) throws {
        try connection.query("""
            UPDATE groups SET status = $2, status_changed_at = $3, updated_at = now(),
                resolved_in_version = CASE WHEN $2 = 'resolved' THEN last_version ELSE resolved_in_version END
            WHERE fingerprint = $1
            """, [.text(fingerprint), .text(status), .timestamp(time)])
    }

    // MARK: Findings

    public static func insertSpikes(_ spikes: [SpikeRecord], on connection: PostgresConnection) throws {
        guard !spikes.isEmpty else { return }
        struct Row: Encodable {
            let series: String, service: String, fingerprint: String?, bucket: String, kind: String
            let observed: Double, expected: Double, score: Double, p_value: Double, insight_id: Int64?, suppressed: Bool
        }
        let json = try encodeJSON(spikes.map {
            Row(series: $0.series, service: $0.service, fingerprint: $0.fingerprint, bucket: PostgresTimestamp.format($0.bucket),
                kind: $0.kind.rawValue, observed: $0.observed, expected: $0.expected, score: $0.score, p_value: $0.pValue,
                insight_id: $0.insightID, suppressed: $0.suppressed)
        })
        try connection.query("""
            INSERT INTO spikes AS s (series, service, fingerprint, bucket, kind, observed, expected, score, p_value, insight_id,
                                     suppressed)
            SELECT series, service, fingerprint, bucket, kind, observed, expected, score, p_value, insight_id, suppressed
            FROM jsonb_to_recordset($1::jsonb) AS x(series text, service text, fingerprint text, bucket timestamptz, kind text,
                 observed double precision, expected double precision, score double precision, p_value double precision,
                 insight_id bigint, suppressed boolean)
            ON CONFLICT (series, bucket) DO UPDATE SET observed = EXCLUDED.observed, expected = EXCLUDED.expected,
                score = EXCLUDED.score, p_value = EXCLUDED.p_value, kind = EXCLUDED.kind, suppressed = EXCLUDED.suppressed,
                insight_id = coalesce(EXCLUDED.insight_id, s.insight_id)
            """, [.json(json)])
    }

    public static func insertPrediction(_ p: PredictionRecord, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO predictions (series, service, fingerprint, threshold, current_value, predicted_value, breach_at, made_at, insight_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (series, made_at) DO NOTHING
            """, [.text(p.series), .text(p.service), .optional(p.fingerprint), .double(p.threshold), .double(p.currentValue),
                  .double(p.predictedValue), .timestamp(p.breachAt), .timestamp(p.madeAt), p.insightID.map { .int($0) } ?? .null])
    }

    /// Writes an insight and its recommendations. A new key adds an insight; a known key
    /// updates what grows (last seen, counts, observed, summary, recommendations) and keeps
    /// its identity and status.
    ///
    /// - Returns: the insight's id and whether it is new.
    @discardableResult
    public static func upsertInsight(_ insight: Insight, on connection: PostgresConnection) throws -> (id: Int64, created: Bool) {
        let row = try connection.query("""
            INSERT INTO insights AS i (dedupe_key, kind, severity, service, environment, fingerprint, cluster_id, version,
                                       previous_version, title, summary, observed, expected, event_count, started_at,
                                       last_seen_at, details)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb)
            ON CONFLICT (dedupe_key) DO UPDATE SET
                severity = greatest_severity(i.severity, EXCLUDED.severity),
                title = EXCLUDED.title, summary = EXCLUDED.summary,
                observed = greatest(i.observed, EXCLUDED.observed), expected = EXCLUDED.expected,
                event_count = greatest(i.event_count, EXCLUDED.event_count),
                last_seen_at = greatest(i.last_seen_at, EXCLUDED.last_seen_at),
                details = i.details || EXCLUDED.details, updated_at = now()
            RETURNING id, (xmax = 0)
            """, [.text(insight.dedupeKey), .text(insight.kind.rawValue), .text(insight.severity.rawValue), .optional(insight.service),
                  .optional(insight.environment), .optional(insight.fingerprint), insight.clusterID.map { .int($0) } ?? .null,
                  .optional(insight.version), .optional(insight.previousVersion), .text(insight.title), .text(insight.summary),
                  insight.observed.map { .double($0) } ?? .null, insight.expected.map { .double($0) } ?? .null,
                  .optional(insight.eventCount), .timestamp(insight.startedAt), .timestamp(insight.lastSeenAt),
                  .json(try encodeJSON(insight.details))])
        let id = Int64(try row.one().int(0))
        let created = try row.one().bool(1)
        try connection.query("DELETE FROM recommendations WHERE insight_id = $1", [.int(id)])
        if !insight.recommendations.isEmpty {
            struct Row: Encodable { let position: Int; let rule_id: String; let action: String; let title: String; let confidence: Double; let evidence: [String] }
            let rows = insight.recommendations.enumerated().map {
                Row(position: $0.offset, rule_id: $0.element.ruleID, action: $0.element.action, title: $0.element.title,
                    confidence: min(1, max(0, $0.element.confidence)), evidence: $0.element.evidence)
            }
            try connection.query("""
                INSERT INTO recommendations (insight_id, position, rule_id, action, title, confidence, evidence)
                SELECT $1, position, rule_id, action, title, confidence, evidence
                FROM jsonb_to_recordset($2::jsonb) AS x(position int, rule_id text, action text, title text,
                     confidence double precision, evidence jsonb)
                """, [.int(id), .json(try encodeJSON(rows))])
        }
        return (id, created)
    }

    /// Insights, newest first, with their recommendations.
    public static func insights(limit: Int = 100, on connection: PostgresConnection) throws -> [Insight] {
        try insights(where: "TRUE", [], limit: limit, on: connection)
    }

    /// The insights with these ids, newest first.
    public static func insights(ids: [Int64], on connection: PostgresConnection) throws -> [Insight] {
        guard !ids.isEmpty else { return [] }
        return try insights(where: "i.id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)::bigint))",
                            [.json(try encodeJSON(ids))], limit: ids.count, on: connection)
    }

    private static func insights(
        where condition: String, _ parameters: [PostgresValue], limit: Int, on connection: PostgresConnection
    ) throws -> [Insight] {
        let rows = try connection.query("""
            SELECT id, dedupe_key, kind, severity, service, environment, fingerprint, cluster_id, version, previous_version,
                   title, summary, observed, expected, event_count, started_at, last_seen_at, details::text,
                   coalesce((SELECT json_agg(json_build_object('rule_id', r.rule_id, 'action', r.action, 'title', r.title,
                                 'confidence', r.confidence, 'evidence', r.evidence) ORDER BY r.position)
                             FROM recommendations r WHERE r.insight_id = i.id), '[]')::text
            FROM insights i WHERE \(condition) ORDER BY created_at DESC, id DESC LIMIT $\(parameters.count + 1)
            """, parameters + [.int(Int64(limit))])
        return try rows.rows.map { row in
            var insight = Insight(
                dedupeKey: try row.string(1), kind: Insight.Kind(rawValue: try row.string(2)) ?? .spike,
                severity: Insight.Severity(rawValue: try row.string(3)) ?? .info, service: row.optionalString(4),
                environment: row.optionalString(5), fingerprint: row.optionalString(6),
                clusterID: row.isNull(7) ? nil : Int64(try row.int(7)), version: row.optionalString(8),
                previousVersion: row.optionalString(9), title: try row.string(10), summary: try row.string(11),
                observed: row.isNull(12) ? nil : try row.double(12), expected: row.isNull(13) ? nil : try row.double(13),
                eventCount: row.isNull(14) ? nil : try row.int(14), startedAt: try row.date(15), lastSeenAt: try row.date(16),
                details: try decodeJSON([String: String].self, row.string(17)),
                recommendations: try decodeJSON([Recommendation].self, row.string(18)))
            insight.id = Int64(try row.int(0))
            return insight
        }
    }
}

func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
        .replacingOccurrences(of: "\\u0000", with: "\\ufffd")  // jsonb cannot hold NUL
}

func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try JSONDecoder().decode(type, from: Data(text.utf8))
}
