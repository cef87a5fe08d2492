import Alerts
import Analysis
import AnalysisJob
import Foundation
import HTTPServer
import Ingest
import Kafka
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import Storage
import Synchronization

/// The composition root: builds Faultline's parts from a configuration and runs them.
public enum Faultline {
    /// Applies the migrations, retrying while the database is unreachable (it may still be
    /// starting, as in a Kubernetes rollout) for up to `patience`.
    @discardableResult
    public static func migrate(
        _ configuration: FaultlineConfiguration, logger: Logger, patience: Duration = .seconds(60)
    ) async throws -> MigrationReport {
        let directory = try ResourceLocator.migrations(configured: configuration.migrationsDirectory)
        let migrations = try Migration.load(directory: directory)
        let postgres = configuration.postgres
        let deadline = ContinuousClock.now + patience
        var delay = Duration.milliseconds(250)
        while true {
            do {
                let report = try await offloaded("migrate") {
                    let connection = try PostgresConnection.connect(postgres, logger: logger)
                    return try Migrator(migrations: migrations, logger: logger).migrate(connection)
                }
                logger.info(
                    "database schema is current",
                    metadata: ["applied": "\(report.applied.count)", "already_applied": "\(report.alreadyApplied)"])
                return report
            } catch let error as PostgresError
                where error.isConnectionError && !error.isPermanentConnectionError && ContinuousClock.now + delay < deadline {
                logger.warning("database not reachable, retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Longest an API request waits for a database connection before it is answered 503.
    public static let apiDatabaseWait: Duration = .seconds(2)

    /// Runs the service until SIGTERM or SIGINT, then shuts down gracefully.
    public static func serve(_ configuration: FaultlineConfiguration, logger: Logger) async throws {
        logger.info("starting faultline", metadata: configuration.redactedSummary)
        let roles = configuration.roles
        // Ingest and the API have pools of their own, so requests never make ingest wait for a
        // connection. Connections open as they are first needed. An API request waits at most
        // 2 s for a connection, then is answered 503 with Retry-After.
        let ingestPool = roles.contains(.ingest)
            ? PostgresPool(configuration: configuration.postgres, name: "postgres-ingest", logger: logger) : nil
        let pool = PostgresPool(
            configuration: configuration.postgres, name: "postgres-api", acquireTimeout: Self.apiDatabaseWait, logger: logger)
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        let lifecycle = Lifecycle()
        // Started in this order, stopped in the reverse: HTTP first (readiness turns 503, the
        // server goes on answering for the drain period, then in-flight requests finish), then
        // webhook deliveries in flight, then the analysis, then ingest (its batch is written and
        // committed, and it leaves the consumer group).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var ingestStatus: IngestStatus?
        // Ingest and the analysis read the same deployments when one process runs both.
        let deployments = DeploymentCache()
        if let ingestPool {
            let role = IngestRole(configuration: configuration.ingest, pool: ingestPool, producer: producer, logger: logger,
                                  deployments: deployments)
            ingestStatus = role.ingest.status
            services += role.services.map { .init(service: $0) }
        }
        if roles.contains(.analyze) {
            let analysis = AnalysisService(
                configuration: try analysisConfiguration(configuration), postgres: configuration.postgres,
                logger: Logger(label: "faultline.analysis"), deployments: deployments)
            services.append(.init(service: analysis))
            // Webhooks go out from the replicas that analyse; they share the outbox.
            services.append(.init(service: AlertDispatcher(
                configuration: configuration.alerts, postgres: configuration.postgres, logger: Logger(label: "faultline.alerts"))))
        }
        let openConnections = Gauge(label: "faultline_http_open_connections")
        let server = Mutex<HTTPServer?>(nil)
        let api = makeAPI(
            configuration, pool: pool, producer: producer,
            readiness: { [ingestStatus] in !lifecycle.isShuttingDown && (ingestStatus?.databaseAvailable ?? true) },
            metrics: {
                // Sampled when scraped: the only metric that is a state rather than an event.
                if let server = server.withLock({ $0 }) { openConnections.record(server.openConnections) }
                return FaultlineMetrics.render()
            }, logger: Logger(label: "faultline.api"))
        let http = HTTPService(
            configuration: configuration.http, api: api, servesAPI: roles.contains(.api), lifecycle: lifecycle,
            drain: configuration.shutdownDrain, logger: Logger(label: "faultline.http"))
        server.withLock { $0 = http.server }
        services.append(.init(service: http))
        // Everything that can be refused is refused before any side effect: the port is bound
        // before migrations run and before ingest joins the consumer group, so a second
        // process on a taken port takes no partition from the one that holds it.
        do {
            try http.server.bind()
        } catch {
            throw ConfigurationError(
                variable: "FAULTLINE_HTTP_PORT",
                reason: "cannot listen on \(configuration.httpHost):\(configuration.httpPort): \(error)")
        }
        if configuration.migrateOnStart {
            try await migrate(configuration, logger: logger)
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
        do {
            try await producer.flush(timeout: .seconds(5))
        } catch {
            // Dead letters and replays each wait for their delivery report, so nothing should be
            // left; if something is, say so.
            logger.warning("messages not delivered to Kafka at shutdown", metadata: ["error": "\(error)"])
        }
        await pool.close()
        await ingestPool?.close()
        logger.info("faultline stopped")
    }

    /// The analysis job's settings: the shipped recommendation rules with the user's laid over them.
    public static func analysisConfiguration(_ configuration: FaultlineConfiguration) throws -> AnalysisConfiguration {
        let shipped = try ResourceLocator.find("rules", configured: nil, variable: "FAULTLINE_RULES_FILE") + "/recommendations.json"
        var rules: RuleSet
        do {
            rules = try RuleSet(json: String(contentsOfFile: shipped, encoding: .utf8))
        } catch {
            throw ConfigurationError(variable: "FAULTLINE_RULES_FILE", reason: "the shipped rules \(shipped) cannot be used: \(error)")
        }
        if let file = configuration.rulesFile {
            do {
                rules = try rules.merging(json: String(contentsOfFile: file, encoding: .utf8))
            } catch {
                throw ConfigurationError(variable: "FAULTLINE_RULES_FILE", reason: "\(file): \(error)")
            }
        }
        var analysis = AnalysisConfiguration(rules: rules)
        analysis.interval = configuration.analysisInterval
        analysis.forecastThreshold = configuration.forecastThreshold
        analysis.clockSkew = configuration.clockSkew
        analysis.grace = configuration.analysisGrace
        analysis.retentionDays = configuration.retentionDays
        analysis.forecastHorizonBuckets = Int(configuration.forecastHorizon.components.seconds) / analysis.bucketSeconds
        return analysis
    }
}

extension FaultlineConfiguration {
    /// The webhook dispatcher's settings.
    public var alerts: AlertDispatcherConfiguration {
        var alerts = AlertDispatcherConfiguration()
        alerts.publicURL = publicURL
        alerts.http.allowPrivateAddresses = webhookAllowPrivate
        alerts.http.proxy = webhookProxy
        alerts.http.connectTimeout = webhookConnectTimeout
        alerts.http.totalTimeout = webhookTimeout
        alerts.retryMaxDelay = webhookRetryMaxDelay
        alerts.maxAge = webhookMaxAge
        return alerts
    }
}
