import Analysis
import Domain
import Foundation
import Logging
import Postgres
import Storage
import Synchronization
import Testing
import TestSupport

@testable import API

let logger: Logger = {
    var logger = Logger(label: "api-tests")
    logger.logLevel = .critical
    return logger
}()

let adminToken = "test-admin-token-0123456789"

/// Records what the API asked to replay (our own protocol; the App implements it with Kafka).
final class RecordingReplayer: DeadLetterReplayer {
    struct Call: Sendable {
        let topic: String
        let key: [UInt8]?
        let value: [UInt8]
        let headers: [(String, [UInt8]?)]
    }
    let calls = Mutex<[Call]>([])

    func replay(topic: String, key: [UInt8]?, value: [UInt8], headers: [(String, [UInt8]?)]) async throws {
        calls.withLock { $0.append(Call(topic: topic, key: key, value: value, headers: headers)) }
    }
}

final class Flag: Sendable {
    private let state = Mutex(true)
    var value: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// A parsed response.
struct Reply {
    let response: APIResponse
    var status: Int { response.status }
    var object: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:] }
    var items: [[String: Any]] { object["items"] as? [[String: Any]] ?? [] }
    var nextCursor: String? { object["next_cursor"] as? String }
    var text: String { String(decoding: response.body, as: UTF8.self) }
}

/// A migrated database with events, and the API over it.
final class Fixture: Sendable {
    let url: String
    let pool: PostgresPool
    let api: FaultlineAPI
    let replayer: RecordingReplayer
    let readiness: Flag
    let sequence = Mutex(0)
    /// Whole minutes, two hours ago: inside the default series window of 5m steps.
    let base = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60 - 7200)

    init(cachedInsights: Int = 2000) throws {
        url = try TestDatabase.migrated("api")
        pool = PostgresPool(configuration: .init(url: url, poolSize: 4), logger: logger)
        var configuration = APIConfiguration(
            adminToken: adminToken, openAPIPath: repositoryRoot.appendingPathComponent("openapi/openapi.yaml").path)
        configuration.cachedInsights = cachedInsights
        configuration.maxBodyBytes = 64 * 1024
        // Readiness semantics, not timing: a loaded test machine may take seconds to connect.
        configuration.readinessTimeout = .seconds(30)
        let replayer = RecordingReplayer()
        let readiness = Flag()
        self.replayer = replayer
        self.readiness = readiness
        api = FaultlineAPI(pool: pool, configuration: configuration, readiness: { readiness.value },
                           metrics: { "faultline_test_metric 1\n" }, replayer: replayer, logger: logger)
    }

    func connection() throws -> PostgresConnection {
        try PostgresConnection.connect(.init(url: url), logger: logger)
    }

    /// Stores events the way ingest does; returns their group's fingerprint.
    @discardableResult
    func events(service: String, environment: String = "production", version: String? = nil, errorType: String = "TimeoutError",
                message: String, at times: [Date]) throws -> String {
        var batch = IngestBatch()
        var fingerprint = ""
        for time in times {
            let n = sequence.withLock { $0 += 1; return $0 }
            let event = ErrorEvent(eventID: StableHash.uuid("api-test/\(url)/\(n)"), timestamp: time, service: service,
                                   environment: environment, version: version, errorType: errorType, message: message)
            let print = Fingerprint(event)
            fingerprint = print.value
            batch.events.append(EnrichedEvent(event: event, fingerprint: print.value, template: print.template, frames: print.frames,
                                              deployment: nil, origin: MessageOrigin(topic: "errors", partition: 0, offset: Int64(n))))
        }
        let connection = try connection()
        try PartitionManager.ensure(days: Set(batch.events.map { PartitionManager.day(of: $0.event.timestamp) }), on: connection)
        _ = try EventStore.write(batch, on: connection)
        return fingerprint
    }

    func call(_ method: String, _ target: String, key: String? = adminToken, body: String? = nil,
              headers: [String: String] = [:]) async -> Reply {
        var headers = headers
        if let key { headers["authorization"] = "Bearer \(key)" }
        return Reply(response: await api.handle(APIRequest(method: method, target: target, headers: headers,
                                                           body: body.map { Array($0.utf8) } ?? [])))
    }

    /// Creates a key through the API; returns it.
    func key(scopes: [String], prefix: String? = nil) async throws -> String {
        let prefixJSON = prefix.map { ", \"service_prefix\": \"\($0)\"" } ?? ""
        let reply = await call("POST", "/v1/api-keys", body: "{\"name\": \"test\", \"scopes\": [\(scopes.map { "\"\($0)\"" }.joined(separator: ","))]\(prefixJSON)}")
        try #require(reply.status == 201, "\(reply.text)")
        return try #require(reply.object["key"] as? String)
    }

    /// Every item of a list, following next_cursor, with the pages it took.
    func all(_ target: String, key: String? = adminToken) async throws -> (items: [[String: Any]], pages: Int) {
        var items: [[String: Any]] = []
        var cursor: String?
        var pages = 0
        repeat {
            let separator = target.contains("?") ? "&" : "?"
            let reply = await call("GET", target + (cursor.map { "\(separator)cursor=\($0)" } ?? ""), key: key)
            try #require(reply.status == 200, "\(reply.text)")
            items += reply.items
            cursor = reply.nextCursor
            pages += 1
            try #require(pages < 1000)
        } while cursor != nil
        return (items, pages)
    }
}

/// Checks an error is an RFC 9457 problem with the given status.
func expectProblem(_ reply: Reply, _ status: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(reply.status == status, "\(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.response.header("content-type") == "application/problem+json", sourceLocation: sourceLocation)
    let object = reply.object
    #expect(object["status"] as? Int == status, sourceLocation: sourceLocation)
    #expect(object["type"] is String && object["title"] is String && object["detail"] is String && object["instance"] is String,
            "\(reply.text)", sourceLocation: sourceLocation)
    let text = reply.text.lowercased()
    #expect(!text.contains("select ") && !text.contains("sqlstate"), sourceLocation: sourceLocation)
}
