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
    logger.logLevel = ProcessInfo.processInfo.environment["FAULTLINE_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
    return logger
}()

let secret = "test-signing-secret"

typealias Receiver = WebhookReceiver

extension WebhookReceiver {
    /// A receiver that checks signatures with the tests' `secret`.
    convenience init(port: Int = 0) throws {
        try self.init(port: port, secret: secret)
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
        try self.init(existing: TestDatabase.migrated("alerts"))
    }

    /// Another connection to the database of a fixture.
    init(existing url: String) throws {
        self.url = url
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

