import Domain
import Foundation
import Postgres

/// An enabled webhook subscription as the alerting sees it. Holds the secret: never log it.
public struct AlertSubscription: Sendable {
    public var id: Int64
    public var url: String
    public var secret: String?
    public var format: String
    public var filtersJSON: String
    public var enabled: Bool
}

/// A delivery a dispatcher has claimed (leased) for sending.
public struct ClaimedDelivery: Sendable {
    public var id: Int64
    public var deliveryID: String
    public var webhookID: Int64
    public var attempts: Int
    /// When it was made, or retried through the API: its age counts from here.
    public var createdAt: Date
    /// `nil` until the first claim renders it.
    public var body: String?
}

/// What became of an insight for one subscription.
public enum EnqueueOutcome: Sendable, Equatable {
    /// The same kind of alert for the same group went out within the throttle.
    case throttled
    /// Added to the delivery still waiting (digest window or cooldown).
    case folded(Int64)
    case created(Int64)
}

/// Every statement of the alert outbox: enqueueing (in the insight's transaction), claiming
/// with `FOR UPDATE SKIP LOCKED` and a lease, recording outcomes, the endpoints' circuit
/// breakers, and the delivery list of the API.
public enum AlertStore {
    /// The subscriptions alerts may go to (enabled ones), by id.
    public static func enabledSubscriptions(on connection: PostgresConnection) throws -> [AlertSubscription] {
        try connection.query("SELECT id, url, secret, format, filters::text, enabled FROM webhooks WHERE enabled ORDER BY id").rows.map(subscription)
    }

    public static func subscriptions(ids: [Int64], on connection: PostgresConnection) throws -> [Int64: AlertSubscription] {
        guard !ids.isEmpty else { return [:] }
        let rows = try connection.query("""
            SELECT id, url, secret, format, filters::text, enabled FROM webhooks
            WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)::bigint))
            """, [.json(try encodeJSON(ids))])
        return Dictionary(try rows.rows.map(subscription).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func subscription(_ row: PostgresRow) throws -> AlertSubscription {
        AlertSubscription(id: Int64(try row.int(0)), url: try row.string(1), secret: row.optionalString(2), format: try row.string(3),
                          filtersJSON: try row.string(4), enabled: try row.bool(5))
    }

    /// Queues an insight for a subscription, in the caller's transaction (the insight's own).
    ///
    /// Within `throttle` of an alert with the same `throttleKey` nothing is queued. Otherwise the
    /// insight joins the subscription's delivery that is still waiting to be sent, if there is
    /// one; else a new delivery is due after `digestWindow`, and not before the cooldown after
    /// the subscription's previous delivery.
    public static func enqueue(
        insightID: Int64, webhookID: Int64, throttleKey: String, throttle: Duration, cooldown: Duration, digestWindow: Duration,
        on connection: PostgresConnection
    ) throws -> EnqueueOutcome {
        if throttle > .zero {
            let recent = try connection.query("""
                SELECT 1 FROM alert_items WHERE webhook_id = $1 AND throttle_key = $2
                  AND added_at > now() - make_interval(secs => $3) LIMIT 1
                """, [.int(webhookID), .text(throttleKey), .double(seconds(throttle))])
            if recent.count > 0 { return .throttled }
        }
        // A delivery still waiting (digest window, cooldown) and not yet rendered takes more:
        // the dispatcher renders (and so closes) a delivery in the same transaction that
        // leases it, and this row lock keeps the two apart.
        if let waiting = try connection.query("""
            SELECT id FROM alert_outbox
            WHERE webhook_id = $1 AND status = 'pending' AND body IS NULL AND next_attempt_at > now()
              AND (locked_until IS NULL OR locked_until < now())
            ORDER BY id DESC LIMIT 1 FOR UPDATE
            """, [.int(webhookID)]).first {
            let id = Int64(try waiting.int(0))
            try addItem(outboxID: id, insightID: insightID, webhookID: webhookID, throttleKey: throttleKey, on: connection)
            return .folded(id)
        }
        let row = try connection.query("""
            INSERT INTO alert_outbox (webhook_id, next_attempt_at, scheduled_at)
            SELECT $1, due, due FROM (
                SELECT greatest(now() + make_interval(secs => $2),
                                coalesce((SELECT max(scheduled_at) FROM alert_outbox WHERE webhook_id = $1), '-infinity')
                                    + make_interval(secs => $3)) AS due) d
            RETURNING id
            """, [.int(webhookID), .double(seconds(digestWindow)), .double(seconds(cooldown))])
        let id = Int64(try row.one().int(0))
        try addItem(outboxID: id, insightID: insightID, webhookID: webhookID, throttleKey: throttleKey, on: connection)
        return .created(id)
    }

    private static func addItem(outboxID: Int64, insightID: Int64, webhookID: Int64, throttleKey: String, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO alert_items (outbox_id, insight_id, webhook_id, throttle_key) VALUES ($1, $2, $3, $4)
            ON CONFLICT DO NOTHING
            """, [.int(outboxID), .int(insightID), .int(webhookID), .text(throttleKey)])
    }

    /// Leases up to `limit` due deliveries for `lease`; rows another dispatcher holds (locked
    /// or leased) and endpoints whose breaker is open are passed over. Call inside a
    /// transaction that also renders the bodies still missing.
    public static func claim(limit: Int, lease: Duration, on connection: PostgresConnection) throws -> [ClaimedDelivery] {
        try connection.query("""
            WITH due AS (
                SELECT o.id FROM alert_outbox o
                LEFT JOIN alert_endpoints e ON e.webhook_id = o.webhook_id
                WHERE o.status = 'pending' AND o.next_attempt_at <= now()
                  AND (o.locked_until IS NULL OR o.locked_until <= now())
                  AND (e.open_until IS NULL OR e.open_until <= now())
                ORDER BY o.next_attempt_at, o.id
                LIMIT $1
                FOR UPDATE OF o SKIP LOCKED)
            UPDATE alert_outbox o SET locked_until = now() + make_interval(secs => $2), updated_at = now()
            FROM due WHERE o.id = due.id
            RETURNING o.id, o.delivery_id::text, o.webhook_id, o.attempts, coalesce(o.retried_at, o.created_at), o.body
            """, [.int(Int64(limit)), .double(seconds(lease))]).rows.map { row in
            ClaimedDelivery(id: Int64(try row.int(0)), deliveryID: try row.string(1), webhookID: Int64(try row.int(2)),
                            attempts: try row.int(3), createdAt: try row.date(4), body: row.optionalString(5))
        }.sorted { $0.id < $1.id }
    }

    /// Deliveries not yet delivered nor given up.
    public static func pendingCount(on connection: PostgresConnection) throws -> Int {
        try connection.query("SELECT count(*) FROM alert_outbox WHERE status = 'pending'").rows.first?.int(0) ?? 0
    }

    /// The insights a delivery carries, oldest first.
    public static func insightIDs(outboxID: Int64, on connection: PostgresConnection) throws -> [Int64] {
        try connection.query("SELECT insight_id FROM alert_items WHERE outbox_id = $1 ORDER BY added_at, insight_id", [.int(outboxID)])
            .rows.map { Int64(try $0.int(0)) }
    }

    public static func setBody(id: Int64, body: String, on connection: PostgresConnection) throws {
        try connection.query("UPDATE alert_outbox SET body = $2 WHERE id = $1 AND body IS NULL", [.int(id), .text(body)])
    }

    public static func markDelivered(id: Int64, statusCode: Int, on connection: PostgresConnection) throws {
        try connection.query("""
            UPDATE alert_outbox SET status = 'delivered', attempts = attempts + 1, last_status_code = $2, last_error = NULL,
                delivered_at = now(), locked_until = NULL, updated_at = now()
            WHERE id = $1
            """, [.int(id), .int(Int64(statusCode))])
    }

    /// Records a failed attempt: tried again after `retryIn`, or failed for good when `retryIn` is nil.
    public static func markAttemptFailed(
        id: Int64, statusCode: Int?, error: String, retryIn: Duration?, on connection: PostgresConnection
    ) throws {
        try connection.query("""
            UPDATE alert_outbox SET attempts = attempts + 1, last_status_code = $2, last_error = left($3, 500),
                status = CASE WHEN $4::double precision IS NULL THEN 'failed' ELSE 'pending' END,
                next_attempt_at = CASE WHEN $4::double precision IS NULL THEN next_attempt_at
                                       ELSE now() + make_interval(secs => $4::double precision) END,
                locked_until = NULL, updated_at = now()
            WHERE id = $1
            """, [.int(id), statusCode.map { .int(Int64($0)) } ?? .null, .text(error), retryIn.map { .double(seconds($0)) } ?? .null])
    }

    /// Fails a delivery without an attempt (its subscription is gone or disabled).
    public static func markFailed(id: Int64, error: String, on connection: PostgresConnection) throws {
        try connection.query("""
            UPDATE alert_outbox SET status = 'failed', last_error = left($2, 500), locked_until = NULL, updated_at = now() WHERE id = $1
            """, [.int(id), .text(error)])
    }

    /// Gives a lease back unused, to be tried at `at`.
    public static func release(id: Int64, at: Date, on connection: PostgresConnection) throws {
        try connection.query("""
            UPDATE alert_outbox SET locked_until = NULL, next_attempt_at = greatest(next_attempt_at, $2), updated_at = now() WHERE id = $1
            """, [.int(id), .timestamp(at)])
    }

    // MARK: Circuit breakers

    /// A delivery to the subscription succeeded: its breaker closes.
    public static func endpointSucceeded(webhookID: Int64, on connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO alert_endpoints AS e (webhook_id) VALUES ($1)
            ON CONFLICT (webhook_id) DO UPDATE SET consecutive_failures = 0, open_until = NULL, updated_at = now()
            WHERE e.consecutive_failures <> 0 OR e.open_until IS NOT NULL
            """, [.int(webhookID)])
    }

    /// A delivery to the subscription failed in a way that may pass (timeout, 5xx, 429): from
    /// `threshold` consecutive failures on, the breaker opens for `base` doubled with each
    /// further failure, at most `maximum`.
    /// - Returns: until when the breaker is open, if it is.
    public static func endpointFailed(
        webhookID: Int64, threshold: Int, base: Duration, maximum: Duration, on connection: PostgresConnection
    ) throws -> Date? {
        let row = try connection.query("""
            INSERT INTO alert_endpoints AS e (webhook_id, consecutive_failures) VALUES ($1, 1)
            ON CONFLICT (webhook_id) DO UPDATE SET consecutive_failures = e.consecutive_failures + 1, updated_at = now()
            RETURNING consecutive_failures
            """, [.int(webhookID)])
        let failures = try row.one().int(0)
        guard failures >= threshold else { return nil }
        let open = min(seconds(maximum), seconds(base) * pow(2, Double(min(failures - threshold, 30))))
        return try connection.query("""
            UPDATE alert_endpoints SET open_until = now() + make_interval(secs => $2) WHERE webhook_id = $1 RETURNING open_until
            """, [.int(webhookID), .double(open)]).first?.date(0)
    }

    // MARK: API

    /// A subscription's deliveries, newest first.
    /// A delivery of `alert_outbox o` as the delivery log shows it.
    private static let deliveryJSON = """
        json_build_object('id', o.id, 'delivery_id', o.delivery_id, 'webhook_id', o.webhook_id, 'status', o.status,
            'attempts', o.attempts, 'last_status_code', o.last_status_code, 'last_error', o.last_error,
            'next_attempt_at', CASE WHEN o.status = 'pending' THEN api_time(o.next_attempt_at) END,
            'created_at', api_time(o.created_at), 'retried_at', api_time(o.retried_at), 'delivered_at', api_time(o.delivered_at),
            'insight_ids', coalesce((SELECT json_agg(i.insight_id ORDER BY i.added_at, i.insight_id)
                                     FROM alert_items i WHERE i.outbox_id = o.id), '[]'))::text
        """

    public static func deliveries(webhookID: Int64, after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> JSONPage {
        try page("""
            SELECT \(deliveryJSON), o.id
            FROM alert_outbox o WHERE o.webhook_id = $1 AND ($2::bigint IS NULL OR o.id < $2::bigint)
            ORDER BY o.id DESC LIMIT $3
            """, [.int(webhookID), try .optional(after) { try $0.int(0) }, .int(Int64(limit + 1))], limit: limit, keyColumns: 1,
            on: connection)
    }

    /// What a request to retry a delivery found.
    public enum RetryOutcome: Sendable, Equatable {
        case retried
        case notFound
        /// Only a delivery that failed for good is retried; this one is `status`.
        case notFailed(status: String)
    }

    /// Puts a delivery that failed for good back in the queue, due now, with the same id and
    /// body (its receiver never took it); its age counts again from now.
    public static func retry(webhookID: Int64, deliveryID: UUID, on connection: PostgresConnection) throws -> RetryOutcome {
        try connection.transaction { connection in
            let rows = try connection.query("""
                SELECT id, status FROM alert_outbox WHERE webhook_id = $1 AND delivery_id = $2 FOR UPDATE
                """, [.int(webhookID), .uuid(deliveryID)]).rows
            guard let row = rows.first else { return .notFound }
            let status = try row.string(1)
            guard status == "failed" else { return .notFailed(status: status) }
            try connection.query("""
                UPDATE alert_outbox SET status = 'pending', next_attempt_at = now(), retried_at = now(), locked_until = NULL,
                    updated_at = now()
                WHERE id = $1
                """, [.int(Int64(try row.int(0)))])
            return .retried
        }
    }

    /// One delivery as the delivery log shows it.
    public static func delivery(webhookID: Int64, deliveryID: UUID, on connection: PostgresConnection) throws -> String? {
        try connection.query("""
            SELECT \(deliveryJSON)
            FROM alert_outbox o WHERE o.webhook_id = $1 AND o.delivery_id = $2
            """, [.int(webhookID), .uuid(deliveryID)]).rows.first.map { try $0.string(0) }
    }

    /// Whether a subscription exists.
    public static func webhookExists(id: Int64, on connection: PostgresConnection) throws -> Bool {
        try connection.query("SELECT 1 FROM webhooks WHERE id = $1", [.int(id)]).count > 0
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
