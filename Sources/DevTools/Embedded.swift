import App
import Foundation
import Kafka
import Logging
import Postgres

/// The demo's private infrastructure: a local PostgreSQL and the embedded Kafka cluster.
public struct EmbeddedEnvironment: Sendable {
    public let postgres: LocalPostgresCluster
    public let kafka: KafkaMockCluster
    public let databaseURL: String

    /// Starts both and creates the topics and the database; when anything fails on the way,
    /// PostgreSQL is stopped again before the error is thrown.
    /// - Parameter fresh: drop the `faultline` database of an earlier run first (the embedded
    ///   Kafka cluster always starts empty, so old rows would no longer match it).
    public static func start(directory: String, brokers: Int, partitions: Int, fresh: Bool = false,
                             logger: Logger) async throws -> EmbeddedEnvironment {
        let postgres = LocalPostgresCluster(directory: directory + "/postgres", fast: true)
        do {
            try await offloaded("postgres-start") {
                try postgres.start()
                if fresh {
                    let connection = try PostgresConnection.connect(.init(url: postgres.url(database: "postgres")), logger: logger)
                    _ = try connection.execute("DROP DATABASE IF EXISTS faultline WITH (FORCE)")
                }
                try postgres.createDatabase("faultline", logger: logger)
            }
            let kafka = try KafkaMockCluster(brokers: brokers, logger: logger)
            for (topic, count) in [("errors", partitions), ("errors.dlq", 1), ("deployments", 1)] {
                try kafka.createTopic(topic, partitions: count, replicationFactor: min(3, brokers))
            }
            return EmbeddedEnvironment(postgres: postgres, kafka: kafka, databaseURL: postgres.url(database: "faultline"))
        } catch {
            _ = try? await offloaded("postgres-stop") { try postgres.stop() }
            throw error
        }
    }

    /// Stops PostgreSQL; the Kafka cluster ends with this process.
    public func stop() async {
        _ = try? await offloaded("postgres-stop") { [postgres] in try postgres.stop() }
    }
}
