import Foundation
import HTTPServer
import Ingest
import Kafka
import Logging
import Postgres

/// Everything Faultline can be told, with its defaults. Read from `FAULTLINE_*` environment
/// variables (see ``FaultlineConfiguration/settings`` for the list) and overridden by flags.
public struct FaultlineConfiguration: Sendable {
    public var databaseURL = "postgres://faultline@127.0.0.1:5432/faultline"
    public var databasePoolSize = 8
    public var kafkaBrokers = "127.0.0.1:9092"
    public var kafkaTopic = "errors"
    public var kafkaDeadLetterTopic = "errors.dlq"
    public var kafkaDeploymentsTopic = "deployments"
    public var kafkaGroup = "faultline"
    /// librdkafka properties from `FAULTLINE_KAFKA_*` variables Faultline does not use itself.
    public var kafkaProperties: [String: String] = [:]
    public var httpHost = "0.0.0.0"
    public var httpPort = 8080
    public var httpMaxConnectionsPerClient = 1_000
    /// The HTTP server's event loops; 0: one per core the process may use.
    public var httpEventLoops = 0
    public var logLevel: Logger.Level = .info
    public var logFormat: LogFormat = .json
    public var migrateOnStart = true
    public var migrationsDirectory: String?
    public var openAPIDirectory: String?
    public var shutdownGracePeriod: Duration = .seconds(25)
    /// After SIGTERM, how long the HTTP server goes on serving with `/readyz` answering 503
    /// before it closes its listener; part of ``shutdownGracePeriod``.
    public var shutdownDrain: Duration = .seconds(2)
    public var retentionDays = 30
    public var ingestMaxMessageBytes = 1 << 20
    public var ingestBatchSize = 20000
    public var ingestBatchDelay: Duration = .milliseconds(250)
    public var defaultEnvironment = "production"
    public var analysisInterval: Duration = .seconds(15)
    public var forecastThreshold: Double = 60
    public var forecastHorizon: Duration = .seconds(3600)
    /// How far event clocks and deployment records' clocks may disagree.
    public var clockSkew: Duration = .seconds(60)
    /// How long past a minute's end event time must be complete before the minute is scored.
    public var analysisGrace: Duration = .seconds(10)
    public var rulesFile: String?
    public var roles: Set<Role> = Set(Role.allCases)
    /// The bootstrap admin key of the REST API; never logged.
    public var adminToken: String?
    public var apiCacheTimeToLive: Duration = .seconds(5)
    /// The external base URL of the REST API, for links in alerts.
    public var publicURL = "http://localhost:8080"
    public var webhookAllowPrivate = false
    public var webhookProxy: String?
    public var webhookConnectTimeout: Duration = .seconds(5)
    public var webhookTimeout: Duration = .seconds(10)
    public var webhookMaxAge: Duration = .seconds(86_400)
    public var webhookRetryMaxDelay: Duration = .seconds(600)

    public init() {}

    public enum LogFormat: String, Sendable, CaseIterable {
        case json, text
    }

    /// What one process does; each role can run as its own Deployment and scale on its own.
    public enum Role: String, Sendable, CaseIterable, Comparable {
        /// Consumes the errors topic into PostgreSQL.
        case ingest
        /// Serves the REST API and the dashboard (every role serves health and metrics).
        case api
        /// Takes part in the analysis (one replica at a time runs it).
        case analyze

        public static func < (a: Role, b: Role) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }

        /// `ingest,api` → the roles; an unknown name is an error naming it.
        public static func parse(_ variable: String, _ value: String) throws(ConfigurationError) -> Set<Role> {
            var roles: Set<Role> = []
            for name in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !name.isEmpty {
                guard let role = Role(rawValue: name) else {
                    throw ConfigurationError(variable: variable, reason: "'\(name)' is not a role: ingest, api or analyze")
                }
                roles.insert(role)
            }
            guard !roles.isEmpty else { throw ConfigurationError(variable: variable, reason: "name at least one role: ingest, api or analyze") }
            return roles
        }
    }

    /// The Kafka connection settings, for every client Faultline creates.
    public var kafka: KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: kafkaBrokers, properties: kafkaProperties)
    }

    /// The HTTP server's settings.
    public var http: HTTPServerConfiguration {
        var http = HTTPServerConfiguration()
        http.host = httpHost
        http.port = httpPort
        http.maxConnectionsPerClient = httpMaxConnectionsPerClient
        if httpEventLoops > 0 { http.eventLoops = httpEventLoops }
        // The server's own shutdown fits inside the process's budget.
        http.shutdownGrace = min(.seconds(10), shutdownGracePeriod)
        return http
    }

    /// The consumer loop's settings.
    public var ingest: IngestConfiguration {
        var ingest = IngestConfiguration(
            kafka: kafka, group: kafkaGroup, topic: kafkaTopic, deploymentsTopic: kafkaDeploymentsTopic,
            deadLetterTopic: kafkaDeadLetterTopic)
        ingest.maxBatchMessages = ingestBatchSize
        ingest.maxBatchDelay = ingestBatchDelay
        ingest.retentionDays = retentionDays
        ingest.limits.maxMessageBytes = ingestMaxMessageBytes
        ingest.limits.maxAge = .seconds(Int64(retentionDays) * 86_400)
        ingest.limits.defaultEnvironment = defaultEnvironment
        return ingest
    }

    public var postgres: PostgresConfiguration {
        PostgresConfiguration(url: databaseURL, poolSize: databasePoolSize, onError: DatabaseErrors.record)
    }

    /// A summary safe to log: no passwords, no secret Kafka properties.
    public var redactedSummary: Logger.Metadata {
        [
            "database_url": "\(PostgresConfiguration.redact(databaseURL))",
            "kafka": "\(kafka)",
            "kafka_topic": "\(kafkaTopic)",
            "kafka_group": "\(kafkaGroup)",
            "http": "\(httpHost):\(httpPort)",
            "roles": "\(roles.sorted().map(\.rawValue).joined(separator: ","))",
            "log_level": "\(logLevel)",
        ]
    }
}

/// A configuration value that cannot be used. The message names the variable (or flag) and
/// says what is expected, never echoing a secret.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let variable: String
    public let reason: String

    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }

    public var description: String { "\(variable): \(reason)" }
}

/// One documented `FAULTLINE_*` variable.
public struct ConfigurationSetting: Sendable {
    public let name: String
    public let defaultValue: String
    public let meaning: String
    let apply: @Sendable (inout FaultlineConfiguration, String) throws(ConfigurationError) -> Void
}

extension FaultlineConfiguration {
    /// Prefix of the variables passed to librdkafka: `FAULTLINE_KAFKA_SASL_MECHANISM` sets
    /// `sasl.mechanism`.
    public static let kafkaPassthroughPrefix = "FAULTLINE_KAFKA_"

    /// Every variable Faultline reads, in documentation order. The configuration reference in
    /// docs/ is generated from this list.
    public static let settings: [ConfigurationSetting] = [
        .init(name: "FAULTLINE_DATABASE_URL", defaultValue: "postgres://faultline@127.0.0.1:5432/faultline",
              meaning: "PostgreSQL URL (`postgres://user:password@host:port/db?sslmode=require`; a unix socket: `postgres://user@/db?host=/run/postgresql`).") {
            config, value throws(ConfigurationError) in
            do { try PostgresConfiguration.validate(url: value) } catch let error as PostgresError {
                throw ConfigurationError(variable: "FAULTLINE_DATABASE_URL", reason: "not a PostgreSQL URL: \(error.message)")
            } catch {
                throw ConfigurationError(variable: "FAULTLINE_DATABASE_URL", reason: "not a PostgreSQL URL")
            }
            config.databaseURL = value
        },
        .init(name: "FAULTLINE_DATABASE_POOL_SIZE", defaultValue: "8", meaning: "PostgreSQL connections per pool (1–100): the REST API and ingest each have a pool of this size, opened as needed; an API request waits at most 2 s for a connection, then gets 503.") {
            config, value throws(ConfigurationError) in
            config.databasePoolSize = try parseInt("FAULTLINE_DATABASE_POOL_SIZE", value, 1...100)
        },
        .init(name: "FAULTLINE_KAFKA_BROKERS", defaultValue: "127.0.0.1:9092", meaning: "Kafka bootstrap servers, comma-separated `host:port`.") {
            config, value throws(ConfigurationError) in
            config.kafkaBrokers = try parseBrokers("FAULTLINE_KAFKA_BROKERS", value)
        },
        .init(name: "FAULTLINE_KAFKA_TOPIC", defaultValue: "errors", meaning: "Topic the error events are read from.") {
            config, value throws(ConfigurationError) in
            config.kafkaTopic = try parseTopic("FAULTLINE_KAFKA_TOPIC", value)
        },
        .init(name: "FAULTLINE_KAFKA_DLQ_TOPIC", defaultValue: "errors.dlq", meaning: "Dead-letter topic for messages that cannot be ingested.") {
            config, value throws(ConfigurationError) in
            config.kafkaDeadLetterTopic = try parseTopic("FAULTLINE_KAFKA_DLQ_TOPIC", value)
        },
        .init(name: "FAULTLINE_KAFKA_DEPLOYMENTS_TOPIC", defaultValue: "deployments", meaning: "Topic of deployment records (service, environment, version, commit, region, started_at).") {
            config, value throws(ConfigurationError) in
            config.kafkaDeploymentsTopic = try parseTopic("FAULTLINE_KAFKA_DEPLOYMENTS_TOPIC", value)
        },
        .init(name: "FAULTLINE_KAFKA_GROUP", defaultValue: "faultline", meaning: "Kafka consumer group; replicas with the same group share the partitions.") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, value.utf8.count <= 255 else {
                throw ConfigurationError(variable: "FAULTLINE_KAFKA_GROUP", reason: "must be 1 to 255 characters")
            }
            config.kafkaGroup = value
        },
        .init(name: "FAULTLINE_KAFKA_<PROPERTY>", defaultValue: "—",
              meaning: "Any other `FAULTLINE_KAFKA_*` variable is passed to librdkafka: the rest of the name in lower case with `_` as `.` (`FAULTLINE_KAFKA_SECURITY_PROTOCOL=SASL_SSL` sets `security.protocol`). Values of secret properties are never logged.") {
            _, _ throws(ConfigurationError) in
        },
        .init(name: "FAULTLINE_RETENTION_DAYS", defaultValue: "30", meaning: "Days of events and hourly counts kept; older daily partitions and hourly counts are dropped, and older events are refused (1–3650).") {
            config, value throws(ConfigurationError) in
            config.retentionDays = try parseInt("FAULTLINE_RETENTION_DAYS", value, 1...3650)
        },
        .init(name: "FAULTLINE_INGEST_MAX_MESSAGE_BYTES", defaultValue: "1048576", meaning: "Larger Kafka messages go to the dead-letter topic (1 KiB–64 MiB).") {
            config, value throws(ConfigurationError) in
            config.ingestMaxMessageBytes = try parseInt("FAULTLINE_INGEST_MAX_MESSAGE_BYTES", value, 1024...(64 << 20))
        },
        .init(name: "FAULTLINE_INGEST_BATCH_SIZE", defaultValue: "20000", meaning: "Most messages written in one database transaction (1–100000).") {
            config, value throws(ConfigurationError) in
            config.ingestBatchSize = try parseInt("FAULTLINE_INGEST_BATCH_SIZE", value, 1...100_000)
        },
        .init(name: "FAULTLINE_INGEST_BATCH_DELAY", defaultValue: "250ms", meaning: "Longest a batch waits to fill before it is written.") {
            config, value throws(ConfigurationError) in
            config.ingestBatchDelay = try parseDuration("FAULTLINE_INGEST_BATCH_DELAY", value)
        },
        .init(name: "FAULTLINE_DEFAULT_ENVIRONMENT", defaultValue: "production", meaning: "Environment of events that name none.") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty, value.count <= 100 else {
                throw ConfigurationError(variable: "FAULTLINE_DEFAULT_ENVIRONMENT", reason: "must be 1 to 100 characters")
            }
            config.defaultEnvironment = value
        },
        .init(name: "FAULTLINE_ROLES", defaultValue: "ingest,api,analyze", meaning: "What this process runs, comma-separated: `ingest` (the consumer), `api` (REST API and dashboard), `analyze` (the periodic analysis, on one replica at a time). Every role serves /healthz, /readyz and /metrics. `faultline serve --role` overrides it.") {
            config, value throws(ConfigurationError) in
            config.roles = try Role.parse("FAULTLINE_ROLES", value)
        },
        .init(name: "FAULTLINE_ANALYSIS_INTERVAL", defaultValue: "15s", meaning: "How often the analysis runs (on one replica at a time); below a minute so a spike is reported within a minute of its start.") {
            config, value throws(ConfigurationError) in
            config.analysisInterval = try parseDuration("FAULTLINE_ANALYSIS_INTERVAL", value, .seconds(1)...(.seconds(600)))
        },
        .init(name: "FAULTLINE_ANALYSIS_GRACE", defaultValue: "10s", meaning: "How long past a minute's end event time must be complete before the analysis scores the minute (0s–10m): room for events that producers send out of order. Event time is complete where every partition's watermark is (faultline_event_time_lag_seconds); counts that arrive later still are late data, and their series are scored again.") {
            config, value throws(ConfigurationError) in
            config.analysisGrace = try parseDuration("FAULTLINE_ANALYSIS_GRACE", value, .zero...(.seconds(600)))
        },
        .init(name: "FAULTLINE_FORECAST_THRESHOLD", defaultValue: "60", meaning: "Errors per minute, of a service or a group, that a forecast warns about before they are reached.") {
            config, value throws(ConfigurationError) in
            guard let number = Double(value.trimmingCharacters(in: .whitespaces)), number >= 1, number <= 1e9 else {
                throw ConfigurationError(variable: "FAULTLINE_FORECAST_THRESHOLD", reason: "'\(value)' is not a number from 1 to 1e9")
            }
            config.forecastThreshold = number
        },
        .init(name: "FAULTLINE_FORECAST_HORIZON", defaultValue: "1h", meaning: "How far ahead forecasts look (5m–24h).") {
            config, value throws(ConfigurationError) in
            config.forecastHorizon = try parseDuration("FAULTLINE_FORECAST_HORIZON", value, .seconds(300)...(.seconds(86_400)))
        },
        .init(name: "FAULTLINE_CLOCK_SKEW", defaultValue: "60s", meaning: "How far the clocks of error events and of deployment records may disagree (0s–10m): an error group first seen up to this long before a rollout's recorded start is still reported as new in that version, and its insight says it came before the recorded start.") {
            config, value throws(ConfigurationError) in
            config.clockSkew = try parseDuration("FAULTLINE_CLOCK_SKEW", value, .zero...(.seconds(600)))
        },
        .init(name: "FAULTLINE_RULES_FILE", defaultValue: "(none)", meaning: "A JSON file of recommendation rules laid over the shipped `rules/recommendations.json`: a rule with a shipped id replaces it, `\"enabled\": false` turns it off, new ids add rules (docs/recommendations.md).") {
            config, value throws(ConfigurationError) in
            guard FileManager.default.isReadableFile(atPath: value) else {
                throw ConfigurationError(variable: "FAULTLINE_RULES_FILE", reason: "\(value) is not a readable file")
            }
            config.rulesFile = value
        },
        .init(name: "FAULTLINE_HTTP_HOST", defaultValue: "0.0.0.0", meaning: "Address the HTTP server listens on.") {
            config, value throws(ConfigurationError) in
            guard !value.isEmpty else { throw ConfigurationError(variable: "FAULTLINE_HTTP_HOST", reason: "must not be empty") }
            config.httpHost = value
        },
        .init(name: "FAULTLINE_HTTP_PORT", defaultValue: "8080", meaning: "TCP port of the HTTP server (1–65535; 0 picks a free port and logs it).") {
            config, value throws(ConfigurationError) in
            config.httpPort = try parseInt("FAULTLINE_HTTP_PORT", value, 0...65535)
        },
.init(name: "FAULTLINE_HTTP_MAX_CONNECTIONS_PER_CLIENT", defaultValue: "1000", meaning: "Most open HTTP connections from one client address (1–100000); beyond it a new connection is answered 503 and closed. Raise it behind a load balancer that connects from few addresses.") {
            config, value throws(ConfigurationError) in
            config.httpMaxConnectionsPerClient = try parseInt("FAULTLINE_HTTP_MAX_CONNECTIONS_PER_CLIENT", value, 1...100_000)
        },
        .init(name: "FAULTLINE_HTTP_EVENT_LOOPS", defaultValue: "0", meaning: "HTTP event loops, a thread each (0–64; 0: one per core the process may use, at most 16). Set it to the pod's CPU limit where the runtime counts the node's cores instead.") {
            config, value throws(ConfigurationError) in
            config.httpEventLoops = try parseInt("FAULTLINE_HTTP_EVENT_LOOPS", value, 0...64)
        },
                .init(name: "FAULTLINE_ADMIN_TOKEN", defaultValue: "(none)", meaning: "A bootstrap REST API key with every scope (at least 16 characters), for creating the first API keys; compared in constant time and never logged. Without it, keys are created with `faultline keys create`.") {
            config, value throws(ConfigurationError) in
            guard value.count >= 16, value.count <= 256, !value.contains(where: { $0.isWhitespace }) else {
                throw ConfigurationError(variable: "FAULTLINE_ADMIN_TOKEN", reason: "must be 16 to 256 characters without spaces")
            }
            config.adminToken = value
        },
        .init(name: "FAULTLINE_API_CACHE_TTL", defaultValue: "5s", meaning: "How long the REST API serves the insights list and the services summary from memory before reading them again (0s–1m).") {
            config, value throws(ConfigurationError) in
            config.apiCacheTimeToLive = try parseDuration("FAULTLINE_API_CACHE_TTL", value, .zero...(.seconds(60)))
        },
        .init(name: "FAULTLINE_PUBLIC_URL", defaultValue: "http://localhost:8080", meaning: "External base URL of the REST API; alerts link to `<url>/v1/insights/{id}`.") {
            config, value throws(ConfigurationError) in
            guard let url = URL(string: value), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                url.host?.isEmpty == false, value.count <= 2048
            else {
                throw ConfigurationError(variable: "FAULTLINE_PUBLIC_URL", reason: "'\(value)' is not an absolute http or https URL")
            }
            config.publicURL = value
        },
.init(name: "FAULTLINE_WEBHOOK_PROXY", defaultValue: "(none)", meaning: "An HTTP proxy for webhook deliveries (`http://proxy.internal:3128`). Proxies in the environment (`HTTPS_PROXY`, `ALL_PROXY`) are never used. Through the proxy, webhook hosts are checked as this process resolves them; have the proxy refuse private ranges too.") {
            config, value throws(ConfigurationError) in
            guard let url = URLComponents(string: value), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                url.host?.isEmpty == false, url.path.isEmpty || url.path == "/", url.query == nil
            else {
                throw ConfigurationError(variable: "FAULTLINE_WEBHOOK_PROXY", reason: "must be an http:// or https:// URL of a proxy, such as http://proxy.internal:3128")
            }
            config.webhookProxy = value
        },
                .init(name: "FAULTLINE_WEBHOOK_ALLOW_PRIVATE", defaultValue: "false", meaning: "Let webhooks reach private, loopback and link-local addresses (checked after DNS resolution); off so a webhook URL cannot reach into the private network.") {
            config, value throws(ConfigurationError) in
            config.webhookAllowPrivate = try parseBool("FAULTLINE_WEBHOOK_ALLOW_PRIVATE", value)
        },
        .init(name: "FAULTLINE_WEBHOOK_CONNECT_TIMEOUT", defaultValue: "5s", meaning: "Longest wait for a webhook's connection (TCP and TLS), 100ms–1m.") {
            config, value throws(ConfigurationError) in
            config.webhookConnectTimeout = try parseDuration("FAULTLINE_WEBHOOK_CONNECT_TIMEOUT", value, .milliseconds(100)...(.seconds(60)))
        },
        .init(name: "FAULTLINE_WEBHOOK_TIMEOUT", defaultValue: "10s", meaning: "Longest a webhook request may take in all, 100ms–2m; a slower receiver is retried.") {
            config, value throws(ConfigurationError) in
            config.webhookTimeout = try parseDuration("FAULTLINE_WEBHOOK_TIMEOUT", value, .milliseconds(100)...(.seconds(120)))
        },
        .init(name: "FAULTLINE_WEBHOOK_RETRY_MAX_DELAY", defaultValue: "10m", meaning: "Longest wait between two attempts of a delivery (backoff doubles from 2 s with jitter), 1s–1h.") {
            config, value throws(ConfigurationError) in
            config.webhookRetryMaxDelay = try parseDuration("FAULTLINE_WEBHOOK_RETRY_MAX_DELAY", value, .seconds(1)...(.seconds(3600)))
        },
        .init(name: "FAULTLINE_WEBHOOK_MAX_AGE", defaultValue: "24h", meaning: "A delivery still failing this long after it was queued is marked failed (1m–24h).") {
            config, value throws(ConfigurationError) in
            config.webhookMaxAge = try parseDuration("FAULTLINE_WEBHOOK_MAX_AGE", value, .seconds(60)...(.seconds(86_400)))
        },
        .init(name: "FAULTLINE_LOG_LEVEL", defaultValue: "info", meaning: "trace, debug, info, notice, warning, error or critical.") {
            config, value throws(ConfigurationError) in
            guard let level = Logger.Level(rawValue: value.lowercased()) else {
                throw ConfigurationError(
                    variable: "FAULTLINE_LOG_LEVEL",
                    reason: "'\(value)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.logLevel = level
        },
        .init(name: "FAULTLINE_LOG_FORMAT", defaultValue: "json", meaning: "`json` (one object per line) or `text`.") {
            config, value throws(ConfigurationError) in
            guard let format = LogFormat(rawValue: value.lowercased()) else {
                throw ConfigurationError(variable: "FAULTLINE_LOG_FORMAT", reason: "'\(value)' is not json or text")
            }
            config.logFormat = format
        },
        .init(name: "FAULTLINE_MIGRATE", defaultValue: "true", meaning: "Apply database migrations when `faultline serve` starts.") {
            config, value throws(ConfigurationError) in
            config.migrateOnStart = try parseBool("FAULTLINE_MIGRATE", value)
        },
        .init(name: "FAULTLINE_MIGRATIONS_DIR", defaultValue: "(found)", meaning: "Folder of the SQL migrations; by default `./migrations`, the `migrations` folder above the executable, or /usr/share/faultline/migrations.") {
            config, value throws(ConfigurationError) in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: value, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ConfigurationError(variable: "FAULTLINE_MIGRATIONS_DIR", reason: "\(value) is not a folder")
            }
            config.migrationsDirectory = value
        },
        .init(name: "FAULTLINE_OPENAPI_DIR", defaultValue: "(found)", meaning: "Folder holding `openapi.yaml`, served at `/openapi.yaml`; by default `./openapi`, the `openapi` folder above the executable, or /usr/share/faultline/openapi. Without it `/openapi.yaml` answers 404 and a warning is logged at start.") {
            config, value throws(ConfigurationError) in
            guard FileManager.default.fileExists(atPath: value + "/openapi.yaml") else {
                throw ConfigurationError(variable: "FAULTLINE_OPENAPI_DIR", reason: "\(value) holds no openapi.yaml")
            }
            config.openAPIDirectory = value
        },
        .init(name: "FAULTLINE_SHUTDOWN_GRACE", defaultValue: "25s", meaning: "How long a graceful shutdown may take (e.g. `25s`, `1m`); keep it below Kubernetes' terminationGracePeriodSeconds.") {
            config, value throws(ConfigurationError) in
            config.shutdownGracePeriod = try parseDuration("FAULTLINE_SHUTDOWN_GRACE", value)
        },
        .init(name: "FAULTLINE_SHUTDOWN_DRAIN", defaultValue: "2s", meaning: "After SIGTERM, how long the HTTP server goes on answering (with `/readyz` at 503, so load balancers stop sending requests) before it refuses new connections; part of, and shorter than, `FAULTLINE_SHUTDOWN_GRACE` (0s–1m).") {
            config, value throws(ConfigurationError) in
            config.shutdownDrain = try parseDuration("FAULTLINE_SHUTDOWN_DRAIN", value, .zero ... .seconds(60))
        },
    ]

    /// Reads the configuration from environment variables.
    ///
    /// - Parameter warn: told of `FAULTLINE_*` variables that mean nothing (likely typos).
    /// - Throws: ``ConfigurationError`` naming the first variable with a bad value.
    public static func fromEnvironment(
        _ environment: [String: String], warn: (String) -> Void = { _ in }
    ) throws(ConfigurationError) -> FaultlineConfiguration {
        var config = FaultlineConfiguration()
        let known = Dictionary(uniqueKeysWithValues: settings.map { ($0.name, $0) })
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("FAULTLINE_") {
            if let setting = known[name] {
                try setting.apply(&config, value)
            } else if isKubernetesServiceLink(name, value: value) {
                continue  // injected by Kubernetes for Services named faultline…, not for us
            } else if name.hasPrefix(kafkaPassthroughPrefix) {
                let property = librdkafkaProperty(name)
                guard !property.isEmpty, property.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." }) else {
                    throw ConfigurationError(variable: name, reason: "does not name a librdkafka property")
                }
                if let problem = KafkaConfiguration.problem(property: property, value: value) {
                    let hint = nearestSetting(to: name).map { "; did you mean \($0)?" } ?? ""
                    throw ConfigurationError(variable: name, reason: "librdkafka refuses it as \(property): \(problem)\(hint)")
                }
                config.kafkaProperties[property] = value
            } else {
                let hint = nearestSetting(to: name).map { " (did you mean \($0)?)" } ?? ""
                warn("\(name) is not a Faultline setting and is ignored\(hint)")
            }
        }
        if environment["FAULTLINE_SHUTDOWN_DRAIN"] == nil {
            // The default never takes more than half of a short grace period.
            config.shutdownDrain = min(config.shutdownDrain, config.shutdownGracePeriod / 2)
        } else if config.shutdownDrain > .zero && config.shutdownDrain >= config.shutdownGracePeriod {
            throw ConfigurationError(
                variable: "FAULTLINE_SHUTDOWN_DRAIN",
                reason: "\(config.shutdownDrain) is not shorter than FAULTLINE_SHUTDOWN_GRACE (\(config.shutdownGracePeriod))")
        }
        return config
    }

    /// `FAULTLINE_KAFKA_SASL_MECHANISM` → `sasl.mechanism`.
    /// The known setting nearest to a misspelt `name` (at most three edits away), if any.
    public static func nearestSetting(to name: String) -> String? {
        let candidates = settings.map { ($0.name, editDistance(Array(name.utf8), Array($0.name.utf8))) }
        guard let best = candidates.min(by: { $0.1 < $1.1 }), best.1 <= 3, best.1 > 0 else { return nil }
        return best.0
    }

    /// Levenshtein distance between two byte strings.
    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    public static func librdkafkaProperty(_ variable: String) -> String {
        variable.dropFirst(kafkaPassthroughPrefix.count).lowercased().replacingOccurrences(of: "_", with: ".")
    }

    /// Kubernetes gives every pod `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT_8080_TCP` and the
    /// like for each Service in its namespace; a Service called `faultline-kafka` would
    /// otherwise look like Kafka properties.
    static func isKubernetesServiceLink(_ name: String, value: String) -> Bool {
        let parts = name.split(separator: "_")
        for (index, part) in parts.enumerated() {
            let next = index + 1 < parts.count ? parts[index + 1] : nil
            // X_SERVICE_HOST, X_SERVICE_PORT, X_SERVICE_PORT_<NAME>
            if part == "SERVICE", next == "PORT" || (next == "HOST" && index + 2 == parts.count) { return true }
            // X_PORT_8080_TCP, X_PORT_8080_TCP_ADDR, …
            if part == "PORT", let next, Int(next) != nil, index + 2 < parts.count,
                ["TCP", "UDP", "SCTP"].contains(parts[index + 2])
            {
                return true
            }
        }
        // X_PORT=tcp://10.0.0.11:8080
        return parts.last == "PORT" && ["tcp://", "udp://", "sctp://"].contains { value.hasPrefix($0) }
    }
}

private func parseInt(_ variable: String, _ value: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
    guard let number = Int(value.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
        throw ConfigurationError(variable: variable, reason: "'\(value)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
    }
    return number
}

private func parseBool(_ variable: String, _ value: String) throws(ConfigurationError) -> Bool {
    switch value.lowercased() {
    case "true", "1", "yes", "on": return true
    case "false", "0", "no", "off": return false
    default: throw ConfigurationError(variable: variable, reason: "'\(value)' is not true or false")
    }
}

/// `500ms`, `30s`, `5m`, `1h`; a bare number is seconds.
func parseDuration(_ variable: String, _ value: String) throws(ConfigurationError) -> Duration {
    let text = value.trimmingCharacters(in: .whitespaces).lowercased()
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let number = Double(text.dropLast(suffix.count)), number >= 0, number.isFinite, number * scale <= 86_400 {
            return .milliseconds(Int64((number * scale * 1000).rounded()))
        }
    }
    if let number = Double(text), number >= 0, number <= 86_400 { return .milliseconds(Int64(number * 1000)) }
    throw ConfigurationError(variable: variable, reason: "'\(value)' is not a duration such as 500ms, 30s or 2m (at most a day)")
}

private func parseBrokers(_ variable: String, _ value: String) throws(ConfigurationError) -> String {
    let brokers = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard !brokers.isEmpty else { throw ConfigurationError(variable: variable, reason: "must list at least one host:port") }
    for broker in brokers {
        let withoutScheme = broker.split(separator: "://").last.map(String.init) ?? broker
        guard let colon = withoutScheme.lastIndex(of: ":"), let port = Int(withoutScheme[withoutScheme.index(after: colon)...]),
            (1...65535).contains(port), colon > withoutScheme.startIndex
        else {
            throw ConfigurationError(variable: variable, reason: "'\(broker)' is not host:port")
        }
    }
    return brokers.joined(separator: ",")
}

private func parseDuration(_ variable: String, _ value: String, _ range: ClosedRange<Duration>) throws(ConfigurationError) -> Duration {
    let duration = try parseDuration(variable, value)
    guard range.contains(duration) else {
        throw ConfigurationError(variable: variable, reason: "'\(value)' is outside \(range.lowerBound)…\(range.upperBound)")
    }
    return duration
}

/// Kafka topic names: 1–249 characters of letters, digits, `.`, `_` and `-`.
private func parseTopic(_ variable: String, _ value: String) throws(ConfigurationError) -> String {
    guard (1...249).contains(value.count), value != ".", value != "..",
        value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") })
    else {
        throw ConfigurationError(variable: variable, reason: "'\(value)' is not a Kafka topic name (letters, digits, . _ -)")
    }
    return value
}
