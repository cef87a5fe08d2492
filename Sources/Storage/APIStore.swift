import Domain
import Foundation
import Postgres

/// One page of a list: each item as JSON text, built by PostgreSQL in the API's shape
/// (snake_case, RFC 3339 UTC times), and the sort key of the last item when more follow.
public struct JSONPage: Sendable, Equatable {
    public var items: [String]
    /// The sort key of the last item, to continue after it; `nil` on the last page.
    public var next: [String]?

    public init(items: [String], next: [String]?) {
        self.items = items
        self.next = next
    }
}

/// A request value that cannot be used (a malformed cursor, an unknown filter value).
/// Its description is safe to show to the caller.
public struct InvalidQuery: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A position in a sorted list: the sort key of the last item seen.
public struct Cursor: Sendable, Equatable {
    public var parts: [String]
    public init(_ parts: [String]) { self.parts = parts }

    func time(_ index: Int) throws -> PostgresValue {
        guard index < parts.count, RFC3339.parse(parts[index]) != nil else { throw InvalidQuery("the cursor is not valid") }
        return .text(parts[index])
    }

    func int(_ index: Int) throws -> PostgresValue {
        guard index < parts.count, let value = Int64(parts[index]) else { throw InvalidQuery("the cursor is not valid") }
        return .int(value)
    }

    func text(_ index: Int) throws -> PostgresValue {
        guard index < parts.count else { throw InvalidQuery("the cursor is not valid") }
        return .text(parts[index])
    }

    func uuid(_ index: Int) throws -> PostgresValue {
        guard index < parts.count, let id = UUID(uuidString: parts[index]) else { throw InvalidQuery("the cursor is not valid") }
        return .uuid(id)
    }
}

/// Runs a list query that returns the item's JSON in column 0 and its sort key in the next
/// `keyColumns` columns, fetching one row more than `limit` to know whether more follow.
func page(_ sql: String, _ parameters: [PostgresValue], limit: Int, keyColumns: Int, on connection: PostgresConnection) throws -> JSONPage {
    let rows = try connection.query(sql, parameters).rows
    let kept = rows.prefix(limit)
    let items = try kept.map { try $0.string(0) }
    guard rows.count > limit, let last = kept.last else { return JSONPage(items: items, next: nil) }
    return JSONPage(items: items, next: (1...keyColumns).map { last.optionalString($0) ?? "" })
}

extension PostgresValue {
    static func optional(_ value: Cursor?, _ part: (Cursor) throws -> PostgresValue) rethrows -> PostgresValue {
        try value.map(part) ?? .null
    }
}

// MARK: - Insights, groups and what the analysis found

/// Every read and write of the REST API on what ingest and the analysis stored.
public enum APIStore {
    static let insightJSON = """
        json_build_object('id', i.id, 'kind', i.kind, 'severity', i.severity, 'status', i.status, 'service', i.service,
            'environment', i.environment, 'fingerprint', i.fingerprint, 'cluster_id', i.cluster_id, 'version', i.version,
            'previous_version', i.previous_version, 'title', i.title, 'summary', i.summary, 'observed', i.observed,
            'expected', i.expected, 'event_count', i.event_count, 'started_at', api_time(i.started_at),
            'last_seen_at', api_time(i.last_seen_at), 'created_at', api_time(i.created_at), 'updated_at', api_time(i.updated_at),
            'acknowledged_at', api_time(i.acknowledged_at), 'details', i.details)
        """

    /// An insight as the in-memory cache keeps it: the fields lists filter on, and its JSON.
    public struct InsightEntry: Sendable {
        public var id: Int64
        public var kind: String
        public var status: String
        public var service: String?
        public var lastSeenAt: Date
        /// The sort key (`created_at` text, id) of a cursor.
        public var key: [String]
        public var json: String
    }

    /// The newest insights, newest first; `complete` when there are no more than `limit`.
    public static func recentInsights(limit: Int, on connection: PostgresConnection) throws -> (entries: [InsightEntry], complete: Bool) {
        let rows = try connection.query("""
            SELECT \(insightJSON)::text, i.id, i.kind, i.status, i.service, i.last_seen_at, api_time(i.created_at)
            FROM insights i ORDER BY i.created_at DESC, i.id DESC LIMIT $1
            """, [.int(Int64(limit + 1))]).rows
        let entries = try rows.prefix(limit).map { row in
            InsightEntry(id: Int64(try row.int(1)), kind: try row.string(2), status: try row.string(3), service: row.optionalString(4),
                         lastSeenAt: try row.date(5), key: [try row.string(6), try row.string(1)], json: try row.string(0))
        }
        return (entries, rows.count <= limit)
    }

    /// Insights that pass `filter`, newest first.
    public static func insights(_ filter: InsightFilter, after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT \(insightJSON)::text, api_time(i.created_at), i.id FROM insights i
            WHERE \(InsightFilter.sqlCondition)
              AND ($6::timestamptz IS NULL OR (i.created_at, i.id) < ($6::timestamptz, $7::bigint))
            ORDER BY i.created_at DESC, i.id DESC LIMIT $8
            """, filter.sqlParameters + [try .optional(after) { try $0.time(0) }, try .optional(after) { try $0.int(1) }, .int(Int64(limit + 1))],
            limit: limit, keyColumns: 2, on: connection)
    }

    /// One insight with its recommendations, and its service.
    public static func insight(id: Int64, on connection: PostgresConnection) throws -> (service: String?, json: String)? {
        guard let row = try connection.query("""
            SELECT (\(insightJSON)::jsonb || jsonb_build_object('recommendations', coalesce((
                       SELECT jsonb_agg(jsonb_build_object('position', r.position, 'rule_id', r.rule_id, 'action', r.action,
                                        'title', r.title, 'confidence', r.confidence, 'evidence', r.evidence) ORDER BY r.position)
                       FROM recommendations r WHERE r.insight_id = i.id), '[]'::jsonb)))::text,
                   i.service
            FROM insights i WHERE i.id = $1
            """, [.int(id)]).first else { return nil }
        return (row.optionalString(1), try row.string(0))
    }

    /// Marks an insight acknowledged (the first acknowledgement's time is kept).
    public static func acknowledgeInsight(id: Int64, on connection: PostgresConnection) throws {
        try connection.query("""
            UPDATE insights SET status = 'acknowledged', acknowledged_at = coalesce(acknowledged_at, now()), updated_at = now()
            WHERE id = $1
            """, [.int(id)])
    }

    /// Recommendations of open insights, newest insight first, best recommendation first.
    public static func recommendations(service: String?, servicePrefix: String?, after: Cursor?, limit: Int,
                                       on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT json_build_object('insight_id', i.id, 'position', r.position, 'rule_id', r.rule_id, 'action', r.action,
                       'title', r.title, 'confidence', r.confidence, 'evidence', r.evidence, 'service', i.service,
                       'insight_kind', i.kind, 'insight_severity', i.severity, 'insight_title', i.title,
                       'insight_created_at', api_time(i.created_at))::text,
                   api_time(i.created_at), i.id, r.position
            FROM recommendations r JOIN insights i ON i.id = r.insight_id
            WHERE i.status = 'open' AND ($1::text IS NULL OR i.service = $1::text)
              AND ($2::text IS NULL OR starts_with(i.service, $2::text))
              AND ($3::timestamptz IS NULL OR (i.created_at, i.id) < ($3::timestamptz, $4::bigint)
                   OR ((i.created_at, i.id) = ($3::timestamptz, $4::bigint) AND r.position > $5::int))
            ORDER BY i.created_at DESC, i.id DESC, r.position LIMIT $6
            """, [.optional(service), .optional(servicePrefix), try .optional(after) { try $0.time(0) },
                  try .optional(after) { try $0.int(1) }, try .optional(after) { try $0.int(2) }, .int(Int64(limit + 1))],
            limit: limit, keyColumns: 3, on: connection)
    }

    // MARK: Groups

    static let groupJSON = """
        json_build_object('fingerprint', g.fingerprint, 'service', g.service, 'error_type', g.error_type, 'template', g.template,
            'status', g.status, 'event_count', g.event_count, 'first_seen', api_time(g.first_seen), 'last_seen', api_time(g.last_seen),
            'first_version', g.first_version, 'last_version', g.last_version, 'status_changed_at', api_time(g.status_changed_at),
            'resolved_in_version', g.resolved_in_version, 'issue_fingerprint', g.issue_fingerprint, 'cluster_id', g.cluster_id,
            'top_frames', CASE WHEN coalesce(g.top_frames, '') = '' THEN '[]'::json ELSE to_json(string_to_array(g.top_frames, '|')) END)
        """

    /// How a group list is sorted.
    public enum GroupSort: String, Sendable, CaseIterable {
        case lastSeen = "last_seen", firstSeen = "first_seen", eventCount = "event_count"
    }

    /// Groups with filters; `query` is a case-insensitive substring of the template.
    public static func groups(
        service: String?, status: String?, errorType: String?, query: String?, since: Date?, servicePrefix: String?,
        sort: GroupSort, ascending: Bool, after: Cursor?, limit: Int, on connection: PostgresConnection
    ) throws -> JSONPage {
        // The column and direction come from the enum and the flag, never from request text.
        let column = "g." + sort.rawValue
        let key = sort == .eventCount ? "\(column)::text" : "api_time(\(column))"
        let cast = sort == .eventCount ? "bigint" : "timestamptz"
        let direction = ascending ? "ASC" : "DESC"
        let comparison = ascending ? ">" : "<"
        let cursorValue: PostgresValue = try .optional(after) { sort == .eventCount ? try $0.int(0) : try $0.time(0) }
        return try page("""
            SELECT \(groupJSON)::text, \(key), g.fingerprint FROM groups g
            WHERE ($1::text IS NULL OR g.service = $1::text) AND ($2::text IS NULL OR g.status = $2::text)
              AND ($3::text IS NULL OR g.error_type = $3::text) AND ($4::text IS NULL OR strpos(lower(g.template), lower($4::text)) > 0)
              AND ($5::timestamptz IS NULL OR g.last_seen >= $5::timestamptz) AND ($6::text IS NULL OR starts_with(g.service, $6::text))
              AND ($7::\(cast) IS NULL OR (\(column), g.fingerprint) \(comparison) ($7::\(cast), $8::text))
            ORDER BY \(column) \(direction), g.fingerprint \(direction) LIMIT $9
            """, [.optional(service), .optional(status), .optional(errorType), .optional(query), .optional(since),
                  .optional(servicePrefix), cursorValue, try .optional(after) { try $0.text(1) }, .int(Int64(limit + 1))],
            limit: limit, keyColumns: 2, on: connection)
    }

    /// One group with its events of the last 24 hours, and its service.
    public static func group(_ fingerprint: String, on connection: PostgresConnection) throws -> (service: String, json: String)? {
        guard let row = try connection.query("""
            SELECT (\(groupJSON)::jsonb || jsonb_build_object('events_last_24h', (
                       SELECT coalesce(sum(c.count), 0) FROM event_counts c
                       WHERE c.fingerprint = g.fingerprint AND c.bucket >= now() - interval '24 hours')))::text,
                   g.service
            FROM groups g WHERE g.fingerprint = $1
            """, [.text(fingerprint)]).first else { return nil }
        return (try row.string(1), try row.string(0))
    }

    /// A group's events, newest first.
    public static func events(of fingerprint: String, after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT json_build_object('event_id', e.event_id, 'occurred_at', api_time(e.occurred_at),
                       'received_at', api_time(e.received_at), 'fingerprint', e.fingerprint, 'service', e.service,
                       'environment', e.environment, 'version', e.version, 'severity', e.severity, 'error_type', e.error_type,
                       'message', e.message, 'stacktrace', e.stacktrace, 'error_code', e.error_code, 'http_status', e.http_status,
                       'trace_id', e.trace_id, 'span_id', e.span_id, 'host', e.host, 'pod', e.pod, 'namespace', e.namespace,
                       'region', e.region, 'commit', e.commit_sha, 'deployment_id', e.deployment_id,
                       'deployed_at', api_time(e.deployed_at), 'seconds_since_deploy', e.seconds_since_deploy,
                       'attributes', e.attributes, 'format', e.format, 'source_topic', e.source_topic,
                       'source_partition', e.source_partition, 'source_offset', e.source_offset)::text,
                   api_time(e.occurred_at), e.event_id::text
            FROM events e
            WHERE e.fingerprint = $1 AND ($2::timestamptz IS NULL OR (e.occurred_at, e.event_id) < ($2::timestamptz, $3::uuid))
            ORDER BY e.occurred_at DESC, e.event_id DESC LIMIT $4
            """, [.text(fingerprint), try .optional(after) { try $0.time(0) }, try .optional(after) { try $0.uuid(1) },
                  .int(Int64(limit + 1))],
            limit: limit, keyColumns: 2, on: connection)
    }

    // MARK: Clusters, spikes, predictions, services

    /// The clusters of the newest generation, with their current member count.
    ///
    /// A key limited to a service prefix sees a cluster only through its own services: the
    /// cluster is listed when one of its groups is theirs, and its services, counts and label
    /// come from those groups alone (the label is the busiest one's type and template); terms,
    /// learned from every member, are left out.
    public static func clusters(servicePrefix: String?, after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> JSONPage {
        if let servicePrefix {
            return try page("""
                SELECT json_build_object('id', c.id, 'generation', c.generation, 'label', v.label, 'terms', '{}'::text[],
                           'services', v.services, 'group_count', v.groups, 'event_count', v.events, 'member_count', v.groups,
                           'created_at', api_time(c.created_at))::text,
                       c.id
                FROM clusters c
                CROSS JOIN LATERAL (
                    SELECT count(*)::integer AS groups, coalesce(sum(g.event_count), 0)::bigint AS events,
                           coalesce(array_agg(DISTINCT g.service ORDER BY g.service), '{}') AS services,
                           (array_agg(coalesce(g.error_type || ': ', '') || g.template ORDER BY g.event_count DESC, g.fingerprint))[1] AS label
                    FROM groups g WHERE g.cluster_id = c.id AND starts_with(g.service, $1::text)
                ) v
                WHERE c.generation = (SELECT max(generation) FROM clusters) AND v.groups > 0
                  AND ($2::bigint IS NULL OR c.id > $2::bigint)
                ORDER BY c.id LIMIT $3
                """, [.text(servicePrefix), try .optional(after) { try $0.int(0) }, .int(Int64(limit + 1))],
                limit: limit, keyColumns: 1, on: connection)
        }
        return try page("""
            SELECT json_build_object('id', c.id, 'generation', c.generation, 'label', c.label, 'terms', c.terms,
                       'services', c.services, 'group_count', c.group_count, 'event_count', c.event_count,
                       'member_count', (SELECT count(*) FROM groups g WHERE g.cluster_id = c.id),
                       'created_at', api_time(c.created_at))::text,
                   c.id
            FROM clusters c
            WHERE c.generation = (SELECT max(generation) FROM clusters)
              AND ($1::bigint IS NULL OR c.id > $1::bigint)
            ORDER BY c.id LIMIT $2
            """, [try .optional(after) { try $0.int(0) }, .int(Int64(limit + 1))],
            limit: limit, keyColumns: 1, on: connection)
    }

    /// Spikes and level shifts, newest bucket first.
    public static func spikes(service: String?, servicePrefix: String?, after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT json_build_object('id', s.id, 'series', s.series, 'service', s.service, 'fingerprint', s.fingerprint,
                       'bucket', api_time(s.bucket), 'kind', s.kind, 'observed', s.observed, 'expected', s.expected,
                       'score', s.score, 'p_value', s.p_value, 'insight_id', s.insight_id, 'suppressed', s.suppressed,
                       'detected_at', api_time(s.detected_at))::text,
                   api_time(s.bucket), s.id
            FROM spikes s
            WHERE ($1::text IS NULL OR s.service = $1::text) AND ($2::text IS NULL OR starts_with(s.service, $2::text))
              AND ($3::timestamptz IS NULL OR (s.bucket, s.id) < ($3::timestamptz, $4::bigint))
            ORDER BY s.bucket DESC, s.id DESC LIMIT $5
            """, [.optional(service), .optional(servicePrefix), try .optional(after) { try $0.time(0) },
                  try .optional(after) { try $0.int(1) }, .int(Int64(limit + 1))],
            limit: limit, keyColumns: 2, on: connection)
    }

    /// Forecast breaches, newest first.
    public static func predictions(service: String?, servicePrefix: String?, after: Cursor?, limit: Int,
                                   on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT json_build_object('id', p.id, 'series', p.series, 'service', p.service, 'fingerprint', p.fingerprint,
                       'threshold', p.threshold, 'current_value', p.current_value, 'predicted_value', p.predicted_value,
                       'breach_at', api_time(p.breach_at), 'made_at', api_time(p.made_at), 'insight_id', p.insight_id)::text,
                   api_time(p.made_at), p.id
            FROM predictions p
            WHERE ($1::text IS NULL OR p.service = $1::text) AND ($2::text IS NULL OR starts_with(p.service, $2::text))
              AND ($3::timestamptz IS NULL OR (p.made_at, p.id) < ($3::timestamptz, $4::bigint))
            ORDER BY p.made_at DESC, p.id DESC LIMIT $5
            """, [.optional(service), .optional(servicePrefix), try .optional(after) { try $0.time(0) },
                  try .optional(after) { try $0.int(1) }, .int(Int64(limit + 1))],
            limit: limit, keyColumns: 2, on: connection)
    }

    /// Every service with its groups, events in the last 24 hours and last error, by name.
    ///
    /// - Parameter learning: seconds of history the analysis needs before it reports a
    ///   service's spikes, new error groups (counted from the first error stored at all), and
    ///   before it knows the service's daily pattern.
    public static func services(learning: (spikes: Double, newErrors: Double, dailyPattern: Double),
                                on connection: PostgresConnection) throws -> [(name: String, json: String)] {
        try connection.query("""
            WITH origin AS (SELECT min(first_seen) + make_interval(secs => $2) AS new_errors_from FROM groups),
            services AS (
                SELECT g.service, count(*) AS groups, count(*) FILTER (WHERE g.status = 'open') AS open_groups,
                       sum(g.event_count) AS events_total, max(g.last_seen) AS last_seen, min(g.first_seen) AS first_seen,
                       min(g.first_seen) + make_interval(secs => $1) AS spikes_from
                FROM groups g GROUP BY g.service)
            SELECT s.service, json_build_object('name', s.service, 'groups', s.groups, 'open_groups', s.open_groups,
                       'events_total', s.events_total, 'events_last_24h', coalesce(c.n, 0), 'last_seen', api_time(s.last_seen),
                       'first_seen', api_time(s.first_seen),
                       'learning', json_build_object(
                           'state', CASE WHEN now() < greatest(s.spikes_from, o.new_errors_from) THEN 'learning' ELSE 'ready' END,
                           'spikes_from', api_time(s.spikes_from), 'new_errors_from', api_time(o.new_errors_from),
                           'daily_pattern_from', api_time(s.first_seen + make_interval(secs => $3))))::text
            FROM services s CROSS JOIN origin o
            LEFT JOIN (SELECT service, sum(n) AS n FROM (
                           -- The hours wholly in the last 24 hours, and the minutes of the one it starts in.
                           SELECT service, count AS n FROM service_counts WHERE hour > now() - interval '24 hours'
                           UNION ALL
                           SELECT service, count FROM event_counts
                           WHERE bucket >= now() - interval '24 hours'
                             AND bucket < to_timestamp(floor(extract(epoch FROM now() - interval '24 hours') / 3600) * 3600 + 3600)
                       ) day GROUP BY service) c ON c.service = s.service
            ORDER BY s.service
            """, [.double(learning.spikes), .double(learning.newErrors), .double(learning.dailyPattern)]).rows.map {
            (try $0.string(0), try $0.string(1))
        }
    }

    /// Error counts of a service (or of one group) in `[from, to)` summed into buckets of
    /// `stepSeconds` aligned to the Unix epoch; only buckets with errors (the caller fills the rest).
    /// Counts older than ``CountRetention/minuteDays`` are kept per hour: each hour's count falls
    /// in the bucket its first minute falls in.
    public static func series(
        service: String?, fingerprint: String?, from: Date, to: Date, stepSeconds: Int, on connection: PostgresConnection
    ) throws -> [Int: Int] {
        let rows = try connection.query("""
            SELECT (floor(extract(epoch FROM at) / $3) * $3)::bigint AS b, sum(n)::bigint
            FROM (SELECT bucket AS at, count AS n FROM event_counts
                  WHERE ($1::text IS NULL OR service = $1::text) AND ($2::text IS NULL OR fingerprint = $2::text)
                    AND bucket >= $4 AND bucket < $5
                  UNION ALL
                  SELECT hour, count FROM event_counts_hourly
                  WHERE ($1::text IS NULL OR service = $1::text) AND ($2::text IS NULL OR fingerprint = $2::text)
                    AND hour >= $4 AND hour < $5) counts
            GROUP BY b
            """, [.optional(service), .optional(fingerprint), .int(Int64(stepSeconds)), .timestamp(from), .timestamp(to)]).rows
        var result: [Int: Int] = [:]
        for row in rows { result[try row.int(0)] = try row.int(1) }
        return result
    }

    // MARK: Deployments

    static let deploymentJSON = """
        json_build_object('id', d.id, 'service', d.service, 'environment', d.environment, 'version', d.version,
            'commit', d.commit_sha, 'region', d.region, 'started_at', api_time(d.started_at), 'recorded_at', api_time(d.recorded_at))
        """

    /// Records a deployment the way the `deployments` topic does (enriching the events already
    /// stored) and returns it; `created` is false when the same rollout was recorded before.
    public static func recordDeployment(_ deployment: Deployment, on connection: PostgresConnection) throws -> (created: Bool, json: String) {
        try connection.transaction { connection in
            let created = try DeploymentStore.insert(deployment, on: connection)
            let row = try connection.query("""
                SELECT \(deploymentJSON)::text FROM deployments d
                WHERE d.service = $1 AND d.environment = $2 AND d.version = $3 AND d.started_at = $4
                """, [.text(deployment.service), .text(deployment.environment), .text(deployment.version),
                      .timestamp(deployment.startedAt)])
            return (created, try row.first?.string(0) ?? "null")
        }
    }

    /// Deployments, latest rollout first.
    public static func deployments(service: String?, environment: String?, servicePrefix: String?, after: Cursor?, limit: Int,
                                   on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT \(deploymentJSON)::text, api_time(d.started_at), d.id FROM deployments d
            WHERE ($1::text IS NULL OR d.service = $1::text) AND ($2::text IS NULL OR d.environment = $2::text)
              AND ($3::text IS NULL OR starts_with(d.service, $3::text))
              AND ($4::timestamptz IS NULL OR (d.started_at, d.id) < ($4::timestamptz, $5::bigint))
            ORDER BY d.started_at DESC, d.id DESC LIMIT $6
            """, [.optional(service), .optional(environment), .optional(servicePrefix), try .optional(after) { try $0.time(0) },
                  try .optional(after) { try $0.int(1) }, .int(Int64(limit + 1))],
            limit: limit, keyColumns: 2, on: connection)
    }
}

// MARK: - Webhooks

/// A webhook subscription as written through the API (validated by the caller).
public struct WebhookInput: Sendable {
    public var url: String
    /// `nil` on an update keeps the stored secret.
    public var secret: String?
    public var format: String
    /// `{"kinds": [...], "services": [...], "environments": [...], "min_severity": ...}` as JSON text.
    public var filtersJSON: String
    public var enabled: Bool

    public init(url: String, secret: String?, format: String, filtersJSON: String, enabled: Bool) {
        self.url = url
        self.secret = secret
        self.format = format
        self.filtersJSON = filtersJSON
        self.enabled = enabled
    }
}

/// Webhook subscriptions. The secret is write-only: no statement here returns it.
public enum WebhookStore {
    static let json = """
        json_build_object('id', w.id, 'url', w.url, 'format', w.format, 'filters', w.filters, 'enabled', w.enabled,
            'has_secret', w.secret IS NOT NULL, 'created_at', api_time(w.created_at), 'updated_at', api_time(w.updated_at))::text
        """

    public static func create(_ input: WebhookInput, on connection: PostgresConnection) throws -> String {
        try connection.query("""
            INSERT INTO webhooks AS w (url, secret, format, filters, enabled) VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING \(json)
            """, [.text(input.url), .optional(input.secret), .text(input.format), .json(input.filtersJSON), .bool(input.enabled)])
            .one().string(0)
    }

    /// Replaces a subscription; `nil` when there is none with that id.
    public static func update(id: Int64, _ input: WebhookInput, on connection: PostgresConnection) throws -> String? {
        try connection.query("""
            UPDATE webhooks AS w SET url = $2, secret = coalesce($3, w.secret), format = $4, filters = $5::jsonb, enabled = $6,
                updated_at = now()
            WHERE w.id = $1 RETURNING \(json)
            """, [.int(id), .text(input.url), .optional(input.secret), .text(input.format), .json(input.filtersJSON),
                  .bool(input.enabled)]).first?.string(0)
    }

    public static func get(id: Int64, on connection: PostgresConnection) throws -> String? {
        try connection.query("SELECT \(json) FROM webhooks w WHERE w.id = $1", [.int(id)]).first?.string(0)
    }

    public static func delete(id: Int64, on connection: PostgresConnection) throws -> Bool {
        try connection.query("DELETE FROM webhooks WHERE id = $1", [.int(id)]).affectedRows == 1
    }

    public static func list(after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT \(json), w.id FROM webhooks w WHERE ($1::bigint IS NULL OR w.id > $1::bigint) ORDER BY w.id LIMIT $2
            """, [try .optional(after) { try $0.int(0) }, .int(Int64(limit + 1))], limit: limit, keyColumns: 1, on: connection)
    }
}

// MARK: - API keys

/// An API key as authentication sees it.
public struct APIKeyRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var scopes: [String]
    public var servicePrefix: String?
}

/// API keys, kept only as SHA-256 hashes (computed by PostgreSQL's `sha256()`).
public enum APIKeyStore {
    static let json = """
        json_build_object('id', k.id, 'name', k.name, 'scopes', k.scopes, 'service_prefix', k.service_prefix,
            'created_at', api_time(k.created_at), 'last_used_at', api_time(k.last_used_at),
            'revoked_at', api_time(k.revoked_at))::text
        """

    /// A new key: `flt_` and 32 random bytes in base64url (the system's secure generator).
    public static func generateKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "flt_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Creates a key; returns the key (shown once) and the stored record as JSON.
    public static func create(name: String, scopes: [String], servicePrefix: String?, on connection: PostgresConnection) throws -> (key: String, json: String) {
        let key = generateKey()
        let row = try connection.query("""
            INSERT INTO api_keys AS k (name, key_hash, scopes, service_prefix)
            VALUES ($1, sha256(convert_to($2, 'UTF8')), ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4)
            RETURNING \(json)
            """, [.text(name), .text(key), .json(try encodeJSON(scopes)), .optional(servicePrefix)])
        return (key, try row.one().string(0))
    }

    public static func list(after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT \(json), k.id FROM api_keys k WHERE ($1::bigint IS NULL OR k.id > $1::bigint) ORDER BY k.id LIMIT $2
            """, [try .optional(after) { try $0.int(0) }, .int(Int64(limit + 1))], limit: limit, keyColumns: 1, on: connection)
    }

    /// Revokes a key; `nil` when there is none with that id.
    public static func revoke(id: Int64, on connection: PostgresConnection) throws -> String? {
        try connection.query("""
            UPDATE api_keys AS k SET revoked_at = coalesce(revoked_at, now()) WHERE k.id = $1 RETURNING \(json)
            """, [.int(id)]).first?.string(0)
    }

    /// Every key that is not revoked, by the hex of its SHA-256 hash (at most `limit`, newest
    /// first).
    public static func active(limit: Int = 100_000, on connection: PostgresConnection) throws -> [String: APIKeyRecord] {
        var keys: [String: APIKeyRecord] = [:]
        for row in try connection.query("""
            SELECT encode(key_hash, 'hex'), id, name, array_to_json(scopes)::text, service_prefix
            FROM api_keys WHERE revoked_at IS NULL ORDER BY id DESC LIMIT $1
            """, [.int(Int64(limit))]) {
            keys[try row.string(0)] = APIKeyRecord(
                id: Int64(try row.int(1)), name: try row.string(2),
                scopes: try decodeJSON([String].self, row.string(3)), servicePrefix: row.optionalString(4))
        }
        return keys
    }

    /// Notes that keys were used now.
    public static func noteUse(ids: [Int64], on connection: PostgresConnection) throws {
        guard !ids.isEmpty else { return }
        let array = "{" + ids.map(String.init).joined(separator: ",") + "}"
        try connection.query("UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1::bigint[])", [.text(array)])
    }
}
