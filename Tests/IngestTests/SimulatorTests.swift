import App
import DevTools
import Foundation
import TestSupport
import Kafka
import Testing

@Suite struct SimulatorTests {
    /// The simulator's scenarios, compressed into seconds, land as the groups they describe.
    @Test func scenariosProduceTheirErrorsAndDeployments() async throws {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        for (topic, partitions) in [("errors", 3), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: partitions)
        }
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_INGEST_BATCH_DELAY": "100ms",
        ])
        var scenario = Simulator.Scenario()
        scenario.rate = 100
        scenario.realTime = false
        scenario.deploymentAt = .seconds(1)
        scenario.outageAt = .seconds(2)
        scenario.outageLength = .seconds(3)
        scenario.outageRate = 300
        scenario.duration = .seconds(6)
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        try await Simulator(producer: producer, topic: "errors", deploymentsTopic: "deployments", logger: logger).run(scenario)

        try await withIngest(configuration) { status async throws in
            #expect(try await eventually { try status.eventsInserted > 400 && count(url, "SELECT count(*) FROM deployments") == 2 })
            // Everything produced is in: no new rows for a second.
            var previous = -1
            #expect(try await eventually { () throws -> Bool in
                let now = try count(url, "SELECT count(*) FROM events")
                defer { previous = now }
                return now == previous && now == status.eventsInserted
            })
        }
        // The bad release: a new error, only in checkout 1.8.3, enriched with that rollout.
        let regression = try query(url, """
            SELECT service, first_version, last_version, event_count FROM groups WHERE error_type = 'NullPointerException'
            """)
        #expect(regression.count == 1)
        #expect(regression.first?.values.prefix(3) == ["checkout", "1.8.3", "1.8.3"])
        let regressionCount = try regression.first?.int(3) ?? -1
        let enrichedCount = try count(url, "SELECT count(*) FROM events WHERE error_type = 'NullPointerException' AND commit_sha = '9b7e3d0'")
        #expect(enrichedCount == regressionCount)
        // The outage: timeouts in three services, one group each.
        let outage = try query(url, "SELECT service FROM groups WHERE error_type = 'TimeoutException' ORDER BY service")
        #expect(outage.rows.map { $0.optionalString(0) } == ["checkout", "orders", "payments"])
        // Background noise: each kind stays one group, however its values vary.
        #expect(try count(url, "SELECT count(*) FROM groups WHERE error_type = 'ValidationError'") == 1)
        #expect(try count(url, "SELECT count(*) FROM groups WHERE error_type = 'CardDeclined'") == 1)
        #expect(try count(url, "SELECT count(*) FROM dead_letters") == 0)
    }
}
