import API
import Analysis
import AnalysisJob
import Foundation
import HTTPClient
import Kafka
import Logging
import Postgres
import Storage

/// Produces replayed dead letters with the Kafka producer and waits for their delivery.
public struct KafkaDeadLetterReplayer: DeadLetterReplayer {
    let producer: KafkaProducer

    public init(producer: KafkaProducer) {
        self.producer = producer
    }

    public func replay(topic: String, key: [UInt8]?, value: [UInt8], headers: [(String, [UInt8]?)]) async throws {
        _ = try await producer.send(KafkaOutgoingMessage(
            topic: topic, key: key, value: value, headers: headers.map { KafkaHeader(name: $0.0, value: $0.1) }))
    }
}

extension FaultlineConfiguration {
    /// The REST API's settings.
    public var api: APIConfiguration {
        var api = APIConfiguration(adminToken: adminToken, openAPIPath: try? ResourceLocator.find(
            "openapi", configured: openAPIDirectory, variable: "FAULTLINE_OPENAPI_DIR") + "/openapi.yaml")
        api.cacheTimeToLive = apiCacheTimeToLive
        api.defaultEnvironment = defaultEnvironment
        // What the analysis needs (its defaults: a bucket is a minute).
        let detector = SpikeDetector.Configuration.default
        api.learning.spikes = .seconds(detector.warmup * 60)
        api.learning.newErrors = AnalysisConfiguration.defaultNewGroupWarmup
        api.learning.dailyPattern = .seconds((detector.seasonPeriod ?? 1440) * 60)
        return api
    }
}

/// `faultline keys create|list|revoke`: API keys managed straight in the database.
public enum KeyTool {
    /// Creates a key; returns the lines to print, the key first.
    public static func create(_ configuration: FaultlineConfiguration, name: String, scopes: [String], servicePrefix: String?,
                              logger: Logger) async throws -> [String] {
        guard (1...200).contains(name.count) else { throw ToolError("--name must be 1 to 200 characters") }
        guard !scopes.isEmpty, scopes.allSatisfy({ Scope(rawValue: $0) != nil }) else {
            throw ToolError("--scope must be read, write or admin (repeatable)")
        }
        if let servicePrefix, !(1...200).contains(servicePrefix.count) { throw ToolError("--service-prefix must be 1 to 200 characters") }
        let postgres = configuration.postgres
        let created = try await offloaded("keys") {
            let connection = try PostgresConnection.connect(postgres, logger: logger)
            return try APIKeyStore.create(name: name, scopes: Array(Set(scopes)).sorted(), servicePrefix: servicePrefix, on: connection)
        }
        return [created.key, "# \(created.json)", "# the key is shown only now; only its SHA-256 is stored"]
    }

    /// Every key, one JSON object a line (no secrets).
    public static func list(_ configuration: FaultlineConfiguration, logger: Logger) async throws -> [String] {
        let postgres = configuration.postgres
        return try await offloaded("keys") {
            let connection = try PostgresConnection.connect(postgres, logger: logger)
            var lines: [String] = []
            var cursor: Cursor?
            repeat {
                let page = try APIKeyStore.list(after: cursor, limit: 500, on: connection)
                lines += page.items
                cursor = page.next.map(Cursor.init)
            } while cursor != nil
            return lines
        }
    }

    /// Revokes a key by id.
    public static func revoke(_ configuration: FaultlineConfiguration, id: Int64, logger: Logger) async throws -> [String] {
        let postgres = configuration.postgres
        guard let json = try await offloaded("keys", {
            let connection = try PostgresConnection.connect(postgres, logger: logger)
            return try APIKeyStore.revoke(id: id, on: connection)
        }) else { throw ToolError("no API key \(id)") }
        return [json]
    }
}

extension Faultline {
    /// The REST API over the process's pool: dead letters are replayed with `producer`, and
    /// `/readyz` follows `readiness`. The HTTP server hands each request to ``FaultlineAPI/handle(_:)``.
    public static func makeAPI(
        _ configuration: FaultlineConfiguration, pool: PostgresPool, producer: KafkaProducer?,
        readiness: @escaping @Sendable () -> Bool, metrics: @escaping @Sendable () -> String = { "" }, logger: Logger
    ) -> FaultlineAPI {
        let allowPrivate = configuration.webhookAllowPrivate
        return FaultlineAPI(
            pool: pool, configuration: configuration.api, readiness: readiness, metrics: metrics,
            replayer: producer.map(KafkaDeadLetterReplayer.init(producer:)),
            webhookCheck: { url in
                let refusal = try? await offloaded("webhook-check") { WebhookTarget.refusal(url: url, allowPrivate: allowPrivate) }
                guard let refusal = refusal ?? nil else { return nil }
                switch refusal.code {
                case .refusedAddress:
                    return "\(refusal.message); set FAULTLINE_WEBHOOK_ALLOW_PRIVATE=true where the service runs to allow private receivers"
                default:
                    return refusal.message
                }
            }, logger: logger)
    }
}
