import Alerts
import Domain
import Foundation
import HTTPClient
import Logging
import Postgres
import ServiceLifecycle
import Storage
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

let logger: Logger = {
    var logger = Logger(label: "alerts-tests")
    logger.logLevel = .error
    return logger
}()

let secret = "test-signing-secret"

/// The Python receiver (Tests/AlertsTests/receiver.py) in a process of its own.
final class Receiver: @unchecked Sendable {
    let process: Process
    let port: Int

    /// Starts on `port` (0: any free port).
    init(port: Int = 0) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [repositoryRoot.appendingPathComponent("Tests/AlertsTests/receiver.py").path, "--port", "\(port)", "--secret", secret]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line: [UInt8] = []
        while true {
            guard let byte = pipe.fileHandleForReading.readData(ofLength: 1).first else { throw TestFailure("receiver ended") }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        guard let bound = Int(String(decoding: line, as: UTF8.self)) else { throw TestFailure("receiver printed no port") }
        self.process = process
        self.port = bound
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// Ends the receiver at once (SIGKILL: it goes down as a crashed receiver would).
    func stop() async throws {
        kill(process.processIdentifier, SIGKILL)
        let process = process
        try await onThread { process.waitUntilExit() }
    }

    struct Request: Sendable {
        var path: String
        var delivery: String?
        var attempt: String?
        var signatureOK: Bool
        var body: String
        var time: Double
        var status: Int
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    func requests() async throws -> [Request] {
        let url = URL(string: base + "/_requests")!
        let data = try await onThread { try Data(contentsOf: url) }
        let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        return list.map {
            Request(path: $0["path"] as? String ?? "", delivery: $0["delivery"] as? String, attempt: $0["attempt"] as? String,
                    signatureOK: $0["signature_ok"] as? Bool ?? false, body: $0["body"] as? String ?? "",
                    time: $0["time"] as? Double ?? 0, status: $0["status"] as? Int ?? 0)
        }
    }

    /// The next answers, in order, then `fallback`.
    func script(_ responses: [[String: Any]], fallback: [String: Any] = ["status": 200]) async throws {
        let body = try JSONSerialization.data(withJSONObject: ["responses": responses, "default": fallback])
        let url = base + "/_script"
        _ = try await onThread {
            var configuration = HTTPClientConfiguration()
            configuration.allowPrivateAddresses = true
            return try CurlClient(configuration: configuration).post(url: url, headers: [("Content-Type", "application/json")], body: Array(body))
        }
    }
}

/// A migrated database with webhooks and insights.
struct Fixture {
    let url: String
    let connection: PostgresConnection

    init() throws {
        url = try TestDatabase.migrated("alerts")
        connection = try PostgresConnection.connect(.init(url: url), logger: logger)
    }

    @discardableResult
    func webhook(_ url: String, format: String = "generic", filters: String = #"{"digest_window": 0, "cooldown": 0}"#,
                 secret: String? = secret) throws -> Int64 {
        let json = try WebhookStore.create(
            WebhookInput(url: url, secret: secret, format: format, filtersJSON: filters, enabled: true), on: connection)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        return Int64(object["id"] as! Int)
    }

    @discardableResult
    func insight(_ n: Int, kind: Insight.Kind = .spike, service: String = "checkout", fingerprint: String? = nil,
                 severity: Insight.Severity = .critical, count: Int = 180) throws -> Int64 {
        let insight = Insight(
            dedupeKey: "test:\(n):\(UUID().uuidString)", kind: kind, severity: severity, service: service, environment: "production",
            fingerprint: fingerprint ?? "fp-\(n)", version: "1.8.3", previousVersion: "1.8.2",
            title: "Spike in \(service): \(count)/min vs 6 expected", summary: "\(count) errors in the minute against 6 expected.",
            observed: Double(count), expected: 6, eventCount: count, startedAt: Date(),
            details: ["series": "group:fp-\(n)"],
            recommendations: [Recommendation(ruleID: "rollback-after-deploy", action: "rollback", title: "Roll back checkout from 1.8.3 to 1.8.2",
                                             confidence: 0.9, evidence: ["the spike began 2 min after checkout 1.8.3 was deployed"])])
        return try AlertOutbox.record(insight, on: connection).id
    }

    func deliveries(_ webhook: Int64? = nil) throws -> [(id: Int64, delivery: String, status: String, attempts: Int, code: Int?, error: String?)] {
        try connection.query("""
            SELECT id, delivery_id::text, status, attempts, last_status_code, last_error FROM alert_outbox
            WHERE $1::bigint IS NULL OR webhook_id = $1::bigint ORDER BY id
            """, [webhook.map { .int($0) } ?? .null]).rows.map {
            (Int64(try $0.int(0)), try $0.string(1), try $0.string(2), try $0.int(3), $0.isNull(4) ? nil : try $0.int(4), $0.optionalString(5))
        }
    }
}

func testDispatcherConfiguration() -> AlertDispatcherConfiguration {
    var configuration = AlertDispatcherConfiguration()
    configuration.http.allowPrivateAddresses = true
    configuration.http.connectTimeout = .seconds(1)
    configuration.http.totalTimeout = .seconds(1)
    configuration.pollInterval = .milliseconds(100)
    configuration.retryBase = .milliseconds(200)
    configuration.retryMaxDelay = .seconds(1)
    configuration.publicURL = "https://faultline.example.com"
    return configuration
}

/// Runs a dispatcher until `body` returns.
func withDispatcher<T>(
    _ fixture: Fixture, _ configuration: AlertDispatcherConfiguration = testDispatcherConfiguration(),
    _ body: (AlertDispatcherStatus) async throws -> T
) async throws -> T {
    let dispatcher = AlertDispatcher(configuration: configuration, postgres: .init(url: fixture.url), logger: logger)
    let group = ServiceGroup(configuration: .init(services: [.init(service: dispatcher)], logger: logger))
    let task = Task { try await group.run() }
    defer { task.cancel() }
    do {
        let result = try await body(dispatcher.status)
        await group.triggerGracefulShutdown()
        try await task.value
        return result
    } catch {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        throw error
    }
}

/// Waits until `condition` holds, checking every 100 ms, at most `timeout`.
func eventually(_ timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}
