import Foundation
import Logging

/// One numbered SQL file of `migrations/`, e.g. `0003_add_groups.sql`.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    public var filename: String {
        let digits = String(version)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits + "_" + name + ".sql"
    }

    /// Reads `NNNN_name.sql` files, sorted by version.
    ///
    /// - Throws: ``PostgresError/Code/migration`` for a `.sql` file whose name is not of that
    ///   form, for two files with one version, or for an unreadable folder.
    public static func load(directory: String) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PostgresError(.migration, "cannot read migrations folder \(directory)", operation: "load migrations")
        }
        var migrations: [Migration] = []
        for file in names.sorted() where file.hasSuffix(".sql") {
            let stem = file.dropLast(4)
            let parts = stem.split(separator: "_", maxSplits: 1)
            guard parts.count == 2, parts[0].count >= 4, let version = Int(parts[0]), version > 0,
                parts[1].allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
            else {
                throw PostgresError(
                    .migration, "migration file \(file) is not named NNNN_name.sql (lower case, digits, _)",
                    operation: "load migrations")
            }
            let path = (directory as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8) else {
                throw PostgresError(.migration, "cannot read \(path) as UTF-8", operation: "load migrations")
            }
            if let other = migrations.first(where: { $0.version == version }) {
                throw PostgresError(
                    .migration, "\(other.filename) and \(file) have the same version \(version)", operation: "load migrations")
            }
            migrations.append(Migration(version: version, name: String(parts[1]), sql: sql))
        }
        return migrations.sorted { $0.version < $1.version }
    }
}

/// What ``Migrator/migrate(_:)`` did.
public struct MigrationReport: Sendable, Equatable {
    /// Files applied by this run, in order.
    public var applied: [String]
    /// Files found already applied (with matching checksums).
    public var alreadyApplied: Int

    public init(applied: [String], alreadyApplied: Int) {
        self.applied = applied
        self.alreadyApplied = alreadyApplied
    }
}

/// Applies migrations in order, each in its own transaction, under an advisory lock so that
/// replicas starting together do not collide; records each with its SHA-256 checksum and
/// refuses to run when an applied file has changed.
public struct Migrator: Sendable {
    /// The advisory lock key (`"faultmig"` as bytes), shared by every Faultline process.
    public static let lockKey: Int64 = 0x6661_756C_746D_6967
    public static let table = "faultline_schema_migrations"

    public let migrations: [Migration]
    private let logger: Logger

    public init(migrations: [Migration], logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies every migration not yet applied.
    ///
    /// - Throws: ``PostgresError/Code/migration`` when an applied file has changed (the error
    ///   names it and both checksums), or the error of a failing migration (whose transaction
    ///   is rolled back; the ones before it stay applied).
    @discardableResult
    public func migrate(_ connection: PostgresConnection) throws -> MigrationReport {
        // A session lock: held across the per-migration transactions, released below or when
        // the connection closes, whichever comes first.
        try connection.query("SELECT pg_advisory_lock($1)", [.int(Self.lockKey)])
        defer {
            do {
                try connection.query("SELECT pg_advisory_unlock($1)", [.int(Self.lockKey)])
            } catch {
                logger.warning("could not release the migration lock: \(error)")
            }
        }
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS \(Self.table) (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL
            )
            """)
        var recorded: [Int: (name: String, checksum: String)] = [:]
        for row in try connection.query("SELECT version, name, checksum FROM \(Self.table)") {
            recorded[try row.int(0)] = (try row.string(1), try row.string(2))
        }

        var report = MigrationReport(applied: [], alreadyApplied: 0)
        for migration in migrations {
            let checksum = try Self.checksum(of: migration, on: connection)
            if let existing = recorded[migration.version] {
                guard existing.checksum == checksum else {
                    throw PostgresError(
                        .migration,
                        "\(migration.filename) was changed after it was applied (recorded checksum \(existing.checksum.prefix(12))…, "
                            + "file has \(checksum.prefix(12))…); restore the file and put the change in a new migration",
                        operation: "migrate")
                }
                report.alreadyApplied += 1
                continue
            }
            let started = ContinuousClock.now
            do {
                try connection.transaction { connection in
                    try connection.execute(migration.sql)
                    let elapsed = ContinuousClock.now - started
                    try connection.query(
                        "INSERT INTO \(Self.table) (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
                        [.int(Int64(migration.version)), .text(migration.name), .text(checksum),
                         .int(Int64(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000))])
                }
            } catch let error as PostgresError {
                throw PostgresError(
                    error.code, "\(migration.filename): \(error.message)", operation: "migrate", sqlState: error.sqlState,
                    detail: error.detail, hint: error.hint, constraint: error.constraint, table: error.table)
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.filename)"])
            report.applied.append(migration.filename)
        }
        let known = Set(migrations.map(\.version))
        for (version, entry) in recorded where !known.contains(version) {
            logger.warning(
                "the database has a migration this build does not know; is it older than the schema?",
                metadata: ["version": "\(version)", "name": "\(entry.name)"])
        }
        return report
    }

    /// SHA-256 of the file's text, computed by the server so no crypto code is needed here.
    private static func checksum(of migration: Migration, on connection: PostgresConnection) throws -> String {
        try connection.query("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", [.text(migration.sql)])
            .one().string(0)
    }
}
