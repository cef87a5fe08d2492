import Postgres

/// The PostgreSQL advisory locks Faultline takes, each a pair of int4 keys in its own space
/// ("flt", 0x666C74), written down in one place so that no two uses share a key. (The
/// migrator's lock lives with the migrator, in the Postgres module.)
public struct AdvisoryLock: Sendable, Equatable, CustomStringConvertible {
    public let space: Int64
    public let id: Int64

    init(id: Int64) {
        self.space = 0x666C74
        self.id = id
    }

    /// Held for its whole session by the replica that runs the analysis.
    public static let analysisLeader = AdvisoryLock(id: 2)
    /// Orders publishing the scored watermark against ingest's marking of late minutes
    /// (transaction locks, ``EventTimeStore``).
    public static let scoredWatermark = AdvisoryLock(id: 3)
    /// Held while expired partitions are dropped, so that one replica at a time does it.
    public static let partitionRetention = AdvisoryLock(id: 4)

    public var description: String { "advisory lock (\(space), \(id))" }

    /// Takes the session lock if no other session holds it.
    public func tryLock(on connection: PostgresConnection) throws -> Bool {
        try connection.query("SELECT pg_try_advisory_lock($1, $2)", [.int(space), .int(id)]).one().bool(0)
    }

    public func unlock(on connection: PostgresConnection) throws {
        try connection.query("SELECT pg_advisory_unlock($1, $2)", [.int(space), .int(id)])
    }

    /// Whether this connection's session holds the lock (a reconnected session holds nothing).
    public func isHeld(on connection: PostgresConnection) throws -> Bool {
        try connection.query("""
            SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                           AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted)
            """, [.int(space), .int(id)]).one().bool(0)
    }

    /// Runs `body` holding the lock, or returns `nil` at once when another session holds it.
    public func ifFree<T>(on connection: PostgresConnection, _ body: () throws -> T) throws -> T? {
        guard try tryLock(on: connection) else { return nil }
        defer { try? unlock(on: connection) }
        return try body()
    }
}
