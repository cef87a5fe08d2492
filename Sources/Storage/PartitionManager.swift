import Foundation
import Logging
import Postgres

/// Creates the daily partitions of `events` before rows need them and drops those older than
/// the retention period.
public enum PartitionManager {
    /// `events_p20261122` for a day.
    public static func name(of day: Date) -> String {
        "events_p" + dayString(day).replacingOccurrences(of: "-", with: "")
    }

    /// Midnight UTC of the day holding `date`.
    public static func day(of date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
    }

    static func dayString(_ day: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: day)
    }

    /// Partitions that exist now.
    public static func existing(on connection: PostgresConnection) throws -> Set<String> {
        Set(try connection.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'events'::regclass
            """).rows.map { try $0.string(0) })
    }

    /// Creates the partitions of these days unless they exist. Each in its own statement, out
    /// of any batch transaction; a replica that creates the same one at the same time is fine.
    public static func ensure(days: Set<Date>, on connection: PostgresConnection) throws {
        for day in days.sorted() {
            let start = dayString(day)
            let end = dayString(day.addingTimeInterval(86_400))
            do {
                try connection.execute("""
                    CREATE TABLE IF NOT EXISTS \(name(of: day)) PARTITION OF events
                    FOR VALUES FROM ('\(start) 00:00:00+00') TO ('\(end) 00:00:00+00')
                    """)
            } catch let error as PostgresError where error.sqlState == "42P07" || error.sqlState == "23505" {
                continue  // created by another replica a moment ago
            }
        }
    }

    /// Drops the partitions whose whole day is older than `retentionDays`; returns their names.
    @discardableResult
    public static func dropOlderThan(days retentionDays: Int, now: Date = Date(), on connection: PostgresConnection) throws -> [String] {
        let cutoff = name(of: day(of: now).addingTimeInterval(-Double(retentionDays) * 86_400))
        var dropped: [String] = []
        for partition in try existing(on: connection).sorted() where partition.count == cutoff.count && partition < cutoff {
            try connection.execute("DROP TABLE IF EXISTS \(partition)")
            dropped.append(partition)
        }
        return dropped
    }
}
