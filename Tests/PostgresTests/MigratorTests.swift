import Foundation
import TestSupport
import Postgres
import Testing

@Suite struct MigratorTests {
    /// A folder of migration files.
    func folder(_ files: [String: String]) throws -> String {
        let path = NSTemporaryDirectory() + "migrations-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, sql) in files {
            try sql.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }
        return path
    }

    let base = [
        "0001_accounts.sql": "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL);",
        "0002_accounts_index.sql": "CREATE INDEX accounts_name ON accounts (name);\nINSERT INTO accounts (name) VALUES ('seed');",
        "README.md": "not a migration",
    ]

    @Test func appliesInOrderOnceAndThenIsANoOp() throws {
        let connection = try PostgresConnection.connect(.init(url: try TestDatabase.fresh("mig")), logger: testLogger)
        let migrations = try Migration.load(directory: try folder(base))
        #expect(migrations.map(\.filename) == ["0001_accounts.sql", "0002_accounts_index.sql"])
        let migrator = Migrator(migrations: migrations, logger: testLogger)

        let first = try migrator.migrate(connection)
        #expect(first == MigrationReport(applied: ["0001_accounts.sql", "0002_accounts_index.sql"], alreadyApplied: 0))
        let second = try migrator.migrate(connection)
        #expect(second == MigrationReport(applied: [], alreadyApplied: 2))
        #expect(try connection.query("SELECT count(*) FROM accounts").first?.int(0) == 1)
        let recorded = try connection.query("SELECT version, name, length(checksum) FROM \(Migrator.table) ORDER BY version")
        #expect(try recorded.rows.map { [try $0.int(0), try $0.int(2)] } == [[1, 64], [2, 64]])
    }

    @Test func refusesAFileChangedAfterItWasApplied() throws {
        let connection = try PostgresConnection.connect(.init(url: try TestDatabase.fresh("mig")), logger: testLogger)
        let directory = try folder(base)
        try Migrator(migrations: try Migration.load(directory: directory), logger: testLogger).migrate(connection)
        try "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text);".write(
            toFile: directory + "/0001_accounts.sql", atomically: true, encoding: .utf8)
        let error = #expect(throws: PostgresError.self) {
            try Migrator(migrations: try Migration.load(directory: directory), logger: testLogger).migrate(connection)
        }
        #expect(error?.code == .migration)
        #expect(error?.message.contains("0001_accounts.sql was changed after it was applied") == true)
        // The lock was released: another run on the same connection is not stuck.
        #expect(try connection.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()").first?.int(0) == 0)
    }

    @Test func aFailingMigrationIsRolledBackAndNamed() throws {
        let connection = try PostgresConnection.connect(.init(url: try TestDatabase.fresh("mig")), logger: testLogger)
        var files = base
        files["0003_broken.sql"] = "CREATE TABLE half_done (x int);\nSELEC 1;"
        let error = #expect(throws: PostgresError.self) {
            try Migrator(migrations: try Migration.load(directory: try folder(files)), logger: testLogger).migrate(connection)
        }
        #expect(error?.sqlState == PostgresError.SQLState.syntaxError)
        #expect(error?.message.hasPrefix("0003_broken.sql:") == true)
        #expect(try connection.query("SELECT count(*) FROM \(Migrator.table)").first?.int(0) == 2)
        #expect(try connection.query("SELECT to_regclass('half_done') IS NULL").first?.bool(0) == true)
    }

    @Test func refusesBadlyNamedOrDuplicateFiles() throws {
        #expect(throws: PostgresError.self) { try Migration.load(directory: try folder(["1_short.sql": "SELECT 1;"])) }
        #expect(throws: PostgresError.self) { try Migration.load(directory: try folder(["0001_Bad-Name.sql": "SELECT 1;"])) }
        #expect(throws: PostgresError.self) {
            try Migration.load(directory: try folder(["0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"]))
        }
        #expect(throws: PostgresError.self) { try Migration.load(directory: "/nonexistent/migrations") }
    }

    @Test func twoProcessesMigratingAtOnceDoNotCollide() async throws {
        let url = try TestDatabase.fresh("mig")
        var files = base
        // A slow migration widens the window in which the second process would collide.
        files["0003_slow.sql"] = "SELECT pg_sleep(1);\nCREATE TABLE slow_done (x int);"
        let directory = try folder(files)
        let processes = try (0..<2).map { _ -> (Process, Pipe) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try faultlineBinary())
            process.arguments = ["migrate"]
            process.environment = [
                "FAULTLINE_DATABASE_URL": url, "FAULTLINE_MIGRATIONS_DIR": directory, "FAULTLINE_LOG_LEVEL": "warning",
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            ]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            return (process, output)
        }
        var outputs: [String] = []
        for (process, output) in processes {
            let text = try await onThread {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                return String(decoding: data, as: UTF8.self)
            }
            #expect(process.terminationStatus == 0, "migrate failed: \(text)")
            outputs.append(text)
        }
        // Between them they applied each migration exactly once.
        #expect(outputs.contains { $0.contains("applied 3 migration(s), 0 already applied") })
        #expect(outputs.contains { $0.contains("applied 0 migration(s), 3 already applied") })
        let connection = try PostgresConnection.connect(.init(url: url), logger: testLogger)
        #expect(try connection.query("SELECT count(*) FROM \(Migrator.table)").first?.int(0) == 3)
        #expect(try connection.query("SELECT count(*) FROM accounts").first?.int(0) == 1)
    }
}
