import Alerts
import AnalysisJob
import App
import DevTools
import Foundation
import Ingest
import Kafka
import Postgres
import ServiceLifecycle
import Storage
import Testing
import TestSupport

@Suite(.serialized) struct EndToEndAlertTests {
    /// Deliveries pending while `faultline serve` is killed with SIGKILL all arrive after it
    /// starts again, each once per delivery id.
    @Test func deliveriesPendingWhenServeIsKilledArriveAfterTheRestart() async throws {
        let fixture = try Fixture()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        for topic in ["errors", "deployments", "errors.dlq"] { try cluster.createTopic(topic, partitions: 1) }
        var receiver = try Receiver()
        let port = receiver.port
        try await receiver.stop()
        try fixture.webhook("http://127.0.0.1:\(port)/hook")
        try fixture.webhook("http://127.0.0.1:\(port)/teams", format: "teams")
        for n in 1...3 { try fixture.insight(n) }
        let environment = [
            "FAULTLINE_DATABASE_URL": fixture.url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers, "FAULTLINE_HTTP_PORT": "0",
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000", "FAULTLINE_LOG_LEVEL": "warning",
            "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_WEBHOOK_ALLOW_PRIVATE": "true", "FAULTLINE_WEBHOOK_RETRY_MAX_DELAY": "1s", "FAULTLINE_WEBHOOK_TIMEOUT": "2s",
            // Proxies from the environment are not used: through one, the address check would
            // judge the proxy, not the receiver (and this one does not exist).
            "http_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
        ]
        var serve = try launch(["serve"], environment: environment)
        defer { kill(serve.processIdentifier, SIGKILL) }
        // Every delivery has been tried against the dead receiver: then the process dies hard.
        #expect(try await eventually(.seconds(60)) {
            try fixture.deliveries().allSatisfy { $0.attempts >= 1 && $0.status == "pending" }
        })
        kill(serve.processIdentifier, SIGKILL)
        let killed = serve
        try await onThread { killed.waitUntilExit() }
        #expect(try fixture.deliveries().allSatisfy { $0.status == "pending" })

        receiver = try Receiver(port: port)
        serve = try launch(["serve"], environment: environment)
        // The breaker may have opened for 30 s while the receiver was down.
        #expect(try await eventually(.seconds(120)) { try fixture.deliveries().allSatisfy { $0.status == "delivered" } })
        let requests = try await receiver.requests()
        let outbox = try fixture.deliveries()
        #expect(outbox.count == 6)
        #expect(Set(requests.compactMap(\.delivery)) == Set(outbox.map(\.delivery)))
        #expect(requests.count == outbox.count, "each delivery once")
        #expect(requests.allSatisfy { $0.signatureOK })
    }

    /// The simulator's outage, produced into Kafka after forty minutes of background errors:
    /// ingested while the analysis runs, detected and delivered as one signed message, not one
    /// per event.
    @Test func aSpikeInKafkaBecomesOneSignedWebhook() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        // The outage's spikes in three services may be found a few runs apart on a loaded
        // machine (one from the minute still filling, the others once it is complete): a
        // minute's digest window folds them into one message, as a team that wants one message
        // per incident would set it. With the default 5 s, a later one waits out the 60 s
        // cooldown and comes as a second message.
        try fixture.webhook(receiver.base + "/hook", filters: #"{"kinds": ["spike"], "digest_window": 60}"#)
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        for (topic, partitions) in [("errors", 4), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: partitions)
        }
        var configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": fixture.url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers, "FAULTLINE_HTTP_PORT": "0",
            "FAULTLINE_INGEST_BATCH_DELAY": "100ms", "FAULTLINE_ANALYSIS_INTERVAL": "2s", "FAULTLINE_WEBHOOK_ALLOW_PRIVATE": "true",
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ])
        configuration.publicURL = "https://faultline.example.com"
        var scenario = Simulator.Scenario()
        scenario.realTime = false
        scenario.rate = 5
        scenario.duration = .seconds(40 * 60)
        scenario.outageAt = .seconds(39 * 60)
        scenario.outageLength = .seconds(60)
        scenario.outageRate = 60
        var producerConfiguration = configuration.kafka
        producerConfiguration.properties["compression.type"] = "zstd"
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let simulator = Simulator(producer: producer, topic: "errors", deploymentsTopic: "deployments", logger: logger)
        try await simulator.run(scenario)
        let producedEvents = simulator.progress.produced
        let produced = ContinuousClock.now

        let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
        let ingest = IngestRole(configuration: configuration.ingest, pool: pool, producer: producer, logger: logger)
        let ingestGroup = ServiceGroup(configuration: .init(services: ingest.services.map { .init(service: $0) }, logger: logger))
        let ingesting = Task { try await ingestGroup.run() }
        defer { ingesting.cancel() }
        // The analysis runs while the history is ingested, as after any back-fill or backlog:
        // ingest's watermark holds the scoring of each minute until its events are in.
        let analysis = AnalysisService(configuration: try Faultline.analysisConfiguration(configuration), postgres: configuration.postgres,
                                       logger: logger)
        let alerts = AlertDispatcher(configuration: configuration.alerts, postgres: configuration.postgres, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: analysis), .init(service: alerts)], logger: logger))
        let task = Task { try await group.run() }
        defer { task.cancel() }
        #expect(try await eventually(.seconds(120)) {
            try fixture.connection.query("SELECT count(*) FROM events").first!.int(0) == producedEvents
        }, "\(producedEvents) events produced")
        // The digest window adds a minute: 125 s after the outage was produced in a CI run.
        let arrived = try await eventually(.seconds(300)) { try await receiver.requests().count >= 1 }
        // Where the chain broke, if it did: the job's runs, what it found, what was queued.
        if !arrived {
            let minutes = try fixture.connection.query(
                "SELECT to_char(date_trunc('minute', occurred_at), 'HH24:MI') || '=' || count(*) FROM events GROUP BY date_trunc('minute', occurred_at) ORDER BY date_trunc('minute', occurred_at) DESC LIMIT 6"
            ).rows.map { try $0.string(0) }
            let insights = try fixture.connection.query("SELECT kind || ' ' || title FROM insights ORDER BY id").rows.map { try $0.string(0) }
            let status = analysis.status
            Issue.record("""
                no webhook arrived. analysis: \(status.runs) runs, \(status.failures) failed, last \(status.lastReport); \
                events by minute: \(minutes); now \(Date()); insights: \(insights); \
                deliveries: \(try fixture.deliveries().map { "\($0.status)/\($0.attempts)" })
                """)
        }
        let first = ContinuousClock.now
        // Later buckets of the same outage grow the same insights and send nothing more: once
        // the analysis has scored past the last event and the outbox holds nothing unsent.
        let lastEvent = try fixture.connection.query("SELECT max(occurred_at) FROM events").one().date(0)
        #expect(try await eventually(.seconds(180)) {
            guard let scored = analysis.status.lastReport.scoredUntil, scored > lastEvent else { return false }
            return try fixture.deliveries().allSatisfy { $0.status != "pending" }
        }, "the analysis scored past \(lastEvent) (until \(String(describing: analysis.status.lastReport.scoredUntil))) with nothing left to send")
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        await ingestGroup.triggerGracefulShutdown()
        _ = try? await ingesting.value
        await pool.close()

        let requests = try await receiver.requests()
        let received = requests.map { request in
            (request.json["alerts"] as? [[String: Any]] ?? []).map { "\($0["kind"] ?? "?") \($0["title"] ?? "?") at \($0["started_at"] ?? "?")" }
        }
        #expect(requests.count == 1, "one message for the outage, got \(requests.count): \(received)")
        let request = try #require(requests.first)
        #expect(request.signatureOK && request.delivery != nil)
        let alertsSent = request.json["alerts"] as? [[String: Any]] ?? []
        #expect(!alertsSent.isEmpty && alertsSent.allSatisfy { ($0["kind"] as? String) == "spike" })
        let services = Set(alertsSent.compactMap { $0["service"] as? String })
        #expect(!services.isDisjoint(with: ["checkout", "payments", "orders"]), "\(services)")
        let events = try fixture.connection.query("SELECT count(*) FROM events").first!.int(0)
        #expect(events > 5_000, "the outage and its history were ingested (\(events) events)")
        print("alert arrived \(first - produced) after the outage was produced")
    }
}
