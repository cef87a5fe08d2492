import Foundation
import Testing
import Logging
import Postgres

/// What the integration tests share: the private test server, the faultline binary, and a way
/// to wait for blocking work without holding a thread every running test needs.

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The package's root folder.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The faultline executable built with the tests.
public func faultlineBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["FAULTLINE_BIN"] { return path }
    let path = repositoryRoot.appendingPathComponent(".build/debug/faultline").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestFailure("faultline binary not found; run the tests with scripts/test")
    }
    return path
}

/// Runs blocking work (waiting for a child process, initdb, pg_ctl) on a thread of its own, so
/// that it does not hold one of the few threads all concurrently running tests share.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Expectations checked on a thread that is not the test's task. Swift Testing attributes an
/// issue to the test through a task-local value, which a plain `Thread` does not have: an
/// `#expect` there is reported under "Test «unknown»" while the test passes. These record
/// the failures instead, and ``onThread(checking:)`` reports them in the test's own task.
public final class Checks: @unchecked Sendable {
    // Unchecked: used by one thread at a time (the test's body, then the test's task).
    fileprivate var failures: [(comment: String, location: SourceLocation)] = []

    public struct Unmet: Error, CustomStringConvertible {
        public let description: String
    }

    fileprivate init() {}

    /// Records a failure when `condition` is false.
    public func expect(_ condition: Bool, _ comment: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        if !condition { failures.append((comment().isEmpty ? "expectation failed" : comment(), sourceLocation)) }
    }

    /// `value`, or a recorded failure and a thrown error that ends the body.
    public func require<T>(_ value: T?, _ comment: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
        guard let value else {
            let text = comment().isEmpty ? "required value was nil" : comment()
            failures.append((text, sourceLocation))
            throw Unmet(description: text)
        }
        return value
    }
}

/// Runs blocking work on a thread of its own with ``Checks`` for its expectations, then
/// reports each failure in the calling test's task, where it belongs.
public func onThread<T: Sendable>(checking body: @escaping @Sendable (Checks) throws -> T) async throws -> T {
    let checks = Checks()
    let result: Result<T, any Error>
    do {
        result = .success(try await onThread { try body(checks) })
    } catch {
        result = .failure(error)
    }
    for failure in checks.failures {
        Issue.record(Comment(rawValue: failure.comment), sourceLocation: failure.location)
    }
    return try result.get()
}

/// The private test server started by scripts/test.
public enum TestDatabase {
    static let logger: Logger = {
        var logger = Logger(label: "tests")
        logger.logLevel = .error
        return logger
    }()

    public static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["FAULTLINE_TEST_DATABASE_URL"] else {
            throw TestFailure("FAULTLINE_TEST_DATABASE_URL is not set: run the tests with scripts/test")
        }
        return url
    }

    public static func connect() throws -> PostgresConnection {
        try PostgresConnection.connect(PostgresConfiguration(url: url()), logger: logger)
    }

    /// A new, empty database on the test server; its URL.
    public static func fresh(_ prefix: String) throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try connect().execute("CREATE DATABASE \(name)")
        let base = try url()
        return String(base[..<base.lastIndex(of: "/")!]) + "/" + name
    }

    /// A new database with the project's migrations applied; its URL.
    public static func migrated(_ prefix: String) throws -> String {
        let url = try fresh(prefix)
        let migrations = try Migration.load(directory: repositoryRoot.appendingPathComponent("migrations").path)
        try Migrator(migrations: migrations, logger: logger).migrate(PostgresConnection.connect(.init(url: url), logger: logger))
        return url
    }

    /// A table name no other test uses.
    public static func table(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// curl's status code and body for a request (curl is a real HTTP client, not ours).
public func curl(_ url: String, _ arguments: [String] = []) async throws -> (status: Int, body: String) {
    let output = NSTemporaryDirectory() + "curl-\(UUID().uuidString.prefix(8))"
    defer { try? FileManager.default.removeItem(atPath: output) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-sS", "-o", output, "-w", "%{http_code}", "--max-time", "10"] + arguments + [url]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let status = try await onThread { () -> String in
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
    let body = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    return (Int(status) ?? 0, body)
}

/// Starts the built `faultline` with `arguments`, the caller's environment without its own
/// `FAULTLINE_*` settings, and `environment` laid over it; its output goes to `output` or nowhere.
public func launch(_ arguments: [String], environment: [String: String] = [:], output: FileHandle? = nil) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try faultlineBinary())
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FAULTLINE_") }
    env.merge(environment) { $1 }
    process.environment = env
    process.standardOutput = output ?? FileHandle.nullDevice
    process.standardError = output ?? FileHandle.nullDevice
    try process.run()
    return process
}

/// The first line a process writes to `pipe` (blocking until it ends); `nil` when the pipe
/// closes first.
public func firstLine(of pipe: Pipe) -> String? {
    var line: [UInt8] = []
    while true {
        guard let byte = pipe.fileHandleForReading.readData(ofLength: 1).first else { return nil }
        if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
        line.append(byte)
    }
}


/// Waits until `condition` holds, checking it every `interval`, for at most `timeout`; returns
/// whether it held (the last check is made at the deadline). For the caller to assert on, so a
/// slow machine costs time, never a wrong answer.
public func eventually(
    _ timeout: Duration = .seconds(60), every interval: Duration = .milliseconds(100),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
