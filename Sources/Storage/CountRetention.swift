import Foundation
import Postgres

/// How long counts stay per minute, and how long at all: per-minute counts older than
/// ``minuteDays`` are summed into hours (`event_counts_hourly`), and hourly counts (of groups and
/// of services) older than the retention period are deleted. Both steps are single statements, safe to repeat and to run
/// while ingest adds counts: a minute rolled up is deleted in the statement that adds it to its
/// hour, and a late minute stored after its hour was rolled up is added to it at the next pass.
public enum CountRetention {
    /// Days of per-minute counts kept: more than the analysis' history (a day and two hours) and
    /// the API's 24-hour totals read.
    public static let minuteDays = 2

    public struct Pass: Sendable, Equatable {
        /// Per-minute rows summed into hours and deleted.
        public var minutesRolledUp = 0
        /// Hourly rows written (added to).
        public var hoursWritten = 0
        /// Hourly rows deleted as older than the retention period.
        public var hoursDeleted = 0

        public init(minutesRolledUp: Int = 0, hoursWritten: Int = 0, hoursDeleted: Int = 0) {
            self.minutesRolledUp = minutesRolledUp
            self.hoursWritten = hoursWritten
            self.hoursDeleted = hoursDeleted
        }
    }

    /// Rolls up the per-minute counts older than ``minuteDays`` (whole hours only): one statement
    /// moving the oldest `minutes` minutes of them (aligned to `minutes`), or all of them when
    /// `nil`, a day per statement so that a long backlog is not one huge transaction. An hour
    /// moved in pieces is added to piece by piece. Then deletes the hours that ended more than
    /// `retentionDays` ago.
    @discardableResult
    public static func apply(retentionDays: Int, now: Date = Date(), minutes: Int? = nil, on connection: PostgresConnection) throws -> Pass {
        var pass = Pass()
        var passes = 0
        let cutoff = (now.timeIntervalSince1970 / 3600).rounded(.down) * 3600 - Double(minuteDays) * 86_400
        while let oldest = try connection.query("SELECT extract(epoch FROM min(bucket))::float8 FROM event_counts").first?
            .optionalString(0).flatMap(Double.init), oldest < cutoff
        {
            guard passes < (minutes == nil ? 10_000 : 1) else { break }  // (ingest writing ever older minutes: the next call goes on)
            let step = Double(max(1, minutes ?? 1440) * 60)
            let until = Date(timeIntervalSince1970: min(cutoff, (oldest / step).rounded(.down) * step + step))
            let row = try connection.query("""
                WITH moved AS (DELETE FROM event_counts WHERE bucket < $1 RETURNING fingerprint, service, bucket, count),
                written AS (
                    INSERT INTO event_counts_hourly AS h (fingerprint, service, hour, count)
                    SELECT fingerprint, min(service), to_timestamp(floor(extract(epoch FROM bucket) / 3600) * 3600), sum(count)
                    FROM moved GROUP BY 1, 3
                    ON CONFLICT (fingerprint, hour) DO UPDATE SET count = h.count + excluded.count
                    RETURNING 1)
                SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM written)
                """, [.timestamp(until)]).one()
            pass.minutesRolledUp += try row.int(0)
            pass.hoursWritten += try row.int(1)
            passes += 1
        }
        let expired = Date(timeIntervalSince1970: now.timeIntervalSince1970 - Double(retentionDays) * 86_400)
        let lastExpired = expired.addingTimeInterval(-3600)
        pass.hoursDeleted = try connection.query("DELETE FROM event_counts_hourly WHERE hour <= $1", [.timestamp(lastExpired)]).affectedRows
        try connection.query("DELETE FROM service_counts WHERE hour <= $1", [.timestamp(lastExpired)])
        return pass
    }
}
