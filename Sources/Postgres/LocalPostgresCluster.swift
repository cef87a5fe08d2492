import Foundation
import Logging
import Posix

#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL server in a folder of its own, for the demo, development and tests.
///
/// It listens on 127.0.0.1 only (on a port that does not clash with a system server) and has no
/// unix socket. PostgreSQL refuses to run as root, so when this process is root the server
/// runs as the `postgres` user, which must be able to reach the folder.
///
/// ```swift
/// let cluster = LocalPostgresCluster(directory: ".build/postgres")
/// try cluster.start()          // initdb on first use
/// let url = cluster.url(database: "faultline")
/// ```
public struct LocalPostgresCluster: Sendable {
    /// The folder holding `data/`, the log and the port file.
    public let directory: String
    /// Trades durability for speed (`fsync=off`); right for tests, wrong for benchmarks.
    public var fast: Bool

    public init(directory: String, fast: Bool = true) {
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.fast = fast
    }

    public var dataDirectory: String { directory + "/data" }
    public var logFile: String { directory + "/postgres.log" }
    private var portFile: String { directory + "/port" }

    /// The port the server listens on (chosen when it was first started).
    public var port: Int? {
        (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// A URL for `database` as the `postgres` superuser (trust authentication on loopback).
    public func url(database: String) -> String {
        "postgres://postgres@127.0.0.1:\(port ?? 5432)/\(database)"
    }

    private static var isRoot: Bool { getuid() == 0 }

    /// The folder of initdb and pg_ctl: `pg_config --bindir`'s server, or the newest
    /// /usr/lib/postgresql/N/bin.
    public static func binDirectory() throws -> String {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(base)/\(version)/bin/pg_ctl") {
            return "\(base)/\(version)/bin"
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(directory)/pg_ctl") {
            return String(directory)
        }
        throw PostgresError(
            .localServer, "PostgreSQL server programs not found (apt-get install postgresql)", operation: "find pg_ctl")
    }

    /// Creates the cluster if needed and starts it; does nothing if it is already running.
    public func start() throws {
        let bin = try Self.binDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if Self.isRoot {
            try run("/bin/chown", ["postgres:postgres", directory], asPostgres: false)
            // The server user must be able to reach the folder.
            do {
                try run("/usr/bin/test", ["-w", directory], asPostgres: true)
            } catch {
                throw PostgresError(
                    .localServer,
                    "the postgres user cannot write to \(directory); choose a folder it can reach (e.g. under /tmp)",
                    operation: "start")
            }
        }
        if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            try run(bin + "/initdb", ["-D", dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        }
        if isRunning(bin: bin) { return }
        let port = try self.port ?? Loopback.freePort()
        try "\(port)\n".write(toFile: portFile, atomically: true, encoding: .utf8)
        var options = [
            "-p \(port)", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''",
            "-c max_connections=200", "-c shared_buffers=128MB",
        ]
        if fast { options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"] }
        try run(bin + "/pg_ctl", ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-o", options.joined(separator: " "), "start"])
    }

    /// Stops the server (fast shutdown); does nothing if it is not running.
    public func stop() throws {
        let bin = try Self.binDirectory()
        guard isRunning(bin: bin) else { return }
        try run(bin + "/pg_ctl", ["-D", dataDirectory, "-w", "-t", "60", "-m", "fast", "stop"])
    }

    /// Restarts the server with the same options; open connections are cut.
    public func restart() throws {
        let bin = try Self.binDirectory()
        try run(bin + "/pg_ctl", ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-m", "fast", "restart"])
    }

    public var isRunning: Bool {
        guard let bin = try? Self.binDirectory() else { return false }
        return isRunning(bin: bin)
    }

    private func isRunning(bin: String) -> Bool {
        FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION")
            && (try? run(bin + "/pg_ctl", ["-D", dataDirectory, "status"])) != nil
    }

    /// Creates a database unless it exists.
    public func createDatabase(_ name: String, logger: Logger) throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw PostgresError(.localServer, "database names here are letters, digits and _", operation: "create database")
        }
        let connection = try PostgresConnection.connect(.init(url: url(database: "postgres")), logger: logger)
        let exists = try connection.query("SELECT 1 FROM pg_database WHERE datname = $1", [.text(name)]).count > 0
        if !exists { try connection.execute("CREATE DATABASE \"\(name)\"") }
    }

    /// Runs a program (as `postgres` when root) and throws with the end of its output on failure.
    @discardableResult
    private func run(_ program: String, _ arguments: [String], asPostgres: Bool = true) throws -> String {
        var command = [program] + arguments
        if asPostgres && Self.isRoot {
            let runuser = FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") ? "/usr/sbin/runuser" : "/sbin/runuser"
            command = [runuser, "-u", "postgres", "--"] + command
        }
        let outputPath = directory + "/command.log"
        let status: Int32
        do {
            status = try Subprocess.run(command[0], Array(command.dropFirst()), outputPath: outputPath)
        } catch {
            throw PostgresError(.localServer, "cannot run \(program): \(error)", operation: "run")
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let tail = text.split(separator: "\n").suffix(5).joined(separator: " | ")
            throw PostgresError(
                .localServer, "\((program as NSString).lastPathComponent) exited with \(status): \(tail)",
                operation: "run")
        }
        return text
    }
}
