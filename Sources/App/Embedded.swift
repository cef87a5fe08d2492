import Foundation
import Kafka
import Logging
import Postgres

/// The demo's private infrastructure: a local PostgreSQL and the embedded Kafka cluster.
public struct EmbeddedEnvironment: Sendable {
    public let postgres: LocalPostgresCluster
    public let kafka: KafkaMockCluster
    public let databaseURL: String

    /// Starts both and creates the topics and the database.
    public static func start(directory: String, brokers: Int, partitions: Int, logger: Logger) async throws -> EmbeddedEnvironment {
        let postgres = LocalPostgresCluster(directory: directory + "/postgres", fast: true)
        try await offloaded("postgres-start") {
            try postgres.start()
            try postgres.createDatabase("faultline", logger: logger)
        }
        let kafka = try KafkaMockCluster(brokers: brokers, logger: logger)
        for (topic, count) in [("errors", partitions), ("errors.dlq", 1), ("deployments", 1)] {
            try kafka.createTopic(topic, partitions: count, replicationFactor: min(3, brokers))
        }
        return EmbeddedEnvironment(postgres: postgres, kafka: kafka, databaseURL: postgres.url(database: "faultline"))
    }

    /// Stops PostgreSQL; the Kafka cluster ends with this process.
    public func stop() async {
        _ = try? await offloaded("postgres-stop") { [postgres] in try postgres.stop() }
    }
}
