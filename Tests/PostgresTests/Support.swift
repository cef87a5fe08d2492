import Foundation
import Logging
import Postgres

let testLogger: Logger = {
    var logger = Logger(label: "postgres-tests")
    logger.logLevel = .warning
    return logger
}()

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The private test server started by scripts/test.
enum TestDatabase {
    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["FAULTLINE_TEST_DATABASE_URL"] else {
            throw TestFailure("FAULTLINE_TEST_DATABASE_URL is not set: run the tests with scripts/test")
        }
        return url
    }

    static func connect() throws -> PostgresConnection {
        try PostgresConnection.connect(PostgresConfiguration(url: url()), logger: testLogger)
    }

    /// A new, empty database on the test server; its URL.
    static func fresh(_ prefix: String) throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try connect().execute("CREATE DATABASE \(name)")
        let base = try url()
        return String(base[..<base.lastIndex(of: "/")!]) + "/" + name
    }

    /// A table name no other test uses.
    static func table(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }
}

func faultlineBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["FAULTLINE_BIN"] { return path }
    let path = FileManager.default.currentDirectoryPath + "/.build/debug/faultline"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestFailure("faultline binary not found; run the tests with scripts/test")
    }
    return path
}

/// Runs blocking work (waiting for a child process, initdb, pg_ctl) on a thread of its own, so
/// that it does not hold one of the few threads all concurrently running tests share.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
