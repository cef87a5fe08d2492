import Foundation
import Kafka
import Logging
import Postgres
import ServiceLifecycle

/// The composition root: builds Faultline's parts from a configuration and runs them.
public enum Faultline {
    /// Applies the migrations, retrying while the database is unreachable (it may still be
    /// starting, as in a Kubernetes rollout) for up to `patience`.
    @discardableResult
    public static func migrate(
        _ configuration: FaultlineConfiguration, logger: Logger, patience: Duration = .seconds(60)
    ) async throws -> MigrationReport {
        let directory = try MigrationsLocator.find(configured: configuration.migrationsDirectory)
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
            } catch let error as PostgresError where error.isConnectionError && ContinuousClock.now + delay < deadline {
                logger.warning("database not reachable, retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Runs the service until SIGTERM or SIGINT, then shuts down gracefully.
    public static func serve(_ configuration: FaultlineConfiguration, logger: Logger) async throws {
        logger.info("starting faultline", metadata: configuration.redactedSummary)
        if configuration.migrateOnStart {
            try await migrate(configuration, logger: logger)
        }
        let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
        let monitor = try ConnectivityMonitor(configuration: configuration, pool: pool, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: monitor)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        await pool.close()
        logger.info("faultline stopped")
    }
}

/// Watches that PostgreSQL and Kafka answer, logging each change, until shutdown.
final class ConnectivityMonitor: Service {
    private let pool: PostgresPool
    private let producer: KafkaProducer
    private let logger: Logger
    private let topic: String

    init(configuration: FaultlineConfiguration, pool: PostgresPool, logger: Logger) throws {
        self.pool = pool
        self.producer = try KafkaProducer(configuration: configuration.kafka, logger: logger, idempotent: false)
        self.logger = logger
        self.topic = configuration.kafkaTopic
    }

    func run() async throws {
        var last: (database: Bool, kafka: Bool)?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let database: Bool
            do {
                _ = try await pool.withConnection { try $0.query("SELECT 1") }
                database = true
            } catch {
                database = false
                logger.warning("PostgreSQL check failed", metadata: ["error": "\(error)"])
            }
            let kafka: Bool
            do {
                let topics = try await producer.topics(timeout: .seconds(5))
                kafka = true
                if topics[topic] == nil {
                    logger.warning("the Kafka topic does not exist (yet)", metadata: ["topic": "\(topic)"])
                }
            } catch {
                kafka = false
                logger.warning("Kafka check failed", metadata: ["error": "\(error)"])
            }
            if last.map({ $0.database != database || $0.kafka != kafka }) ?? true {
                logger.info("dependencies", metadata: ["postgres": "\(database ? "up" : "down")", "kafka": "\(kafka ? "up" : "down")"])
                last = (database, kafka)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
        }
    }
}
