import App
import AnalysisJob
import Foundation
import HTTPClient
import HTTPServer
import Kafka
import Logging
import Posix
import Postgres
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `faultline demo`: the embedded Kafka cluster, a private PostgreSQL, every role of the
/// service, a simulator telling a story the analysis finds, a local webhook receiver, and a
/// progress display.
///
/// The order matters. The analysis needs history (30 minutes per series for spikes, an hour of
/// baseline for new errors and patterns, up to three hours for forecasts), so the simulator
/// first back-fills hours of past-dated traffic. The analysis runs meanwhile, as it would for
/// any back-fill: it scores each minute once ingest's watermark says the minute is complete.
/// The scenarios start once the history is in.
public enum DemoRun {
    public struct Options: Sendable {
        /// The demo's folder: the database, the service's log and the webhook log.
        public var directory = ".faultline/demo"
        public var brokers = 3
        public var partitions = 6
        /// Background errors per second (0: no simulation at all).
        public var rate: Double = 20
        /// History back-filled before the scenarios.
        public var history: Duration = .seconds(3 * 3600)
        /// Scenario times, from the moment the history is in.
        public var deploymentAfter: Duration = .seconds(60)
        public var outageAfter: Duration = .seconds(120)
        public var outageLength: Duration = .seconds(120)
        /// The service with a slow memory leak.
        public var leakService = "catalog"
        /// How often a status line is printed.
        public var statusEvery: Duration = .seconds(10)
        /// The service's logs go here (nil: standard output).
        public var logFile: String?
        public init() {}
    }

    /// Runs the demo until SIGINT or SIGTERM; returns normally after a clean stop.
    public static func run(_ configuration: FaultlineConfiguration, options: Options, logger: Logger) async throws {
        // Another server on the port would answer the demo's own requests: say so plainly.
        if configuration.httpPort != 0 && Loopback.isListening(port: configuration.httpPort) {
            throw ToolError("port \(configuration.httpPort) is already in use on 127.0.0.1; choose another with FAULTLINE_HTTP_PORT")
        }

        let console = DemoConsole()
        let stop = StopSignal()
        let signals = Task {
            for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                console.say("\(signal == .sigint ? "SIGINT" : "SIGTERM") received: stopping")
                stop.request()
                break
            }
        }
        defer { signals.cancel() }
        console.say("starting PostgreSQL in \(options.directory)/postgres and the embedded Kafka cluster")
        let embedded: EmbeddedEnvironment
        do {
            embedded = try await EmbeddedEnvironment.start(
                directory: options.directory, brokers: options.brokers, partitions: options.partitions, fresh: true, logger: logger)
        } catch {
            console.say("could not start: \(error)")
            throw error
        }
        do {
            try await runServices(configuration, embedded: embedded, options: options, console: console, stop: stop, logger: logger)
        } catch {
            console.say("stopping after an error: \(error)")
            await embedded.stop()
            throw error
        }
        await embedded.stop()
        console.say("stopped: PostgreSQL is down, no port is open")
    }

    private static func runServices(
        _ configuration: FaultlineConfiguration, embedded: EmbeddedEnvironment, options: Options, console: DemoConsole,
        stop: StopSignal, logger: Logger
    ) async throws {
        var configuration = configuration
        configuration.databaseURL = embedded.databaseURL
        configuration.kafkaBrokers = embedded.kafka.bootstrapServers
        configuration.webhookAllowPrivate = true
        let token = configuration.adminToken ?? "demo-" + UUID().uuidString.lowercased()
        configuration.adminToken = token
        try await Faultline.migrate(configuration, logger: logger)
        if stop.requested { return }

        let database = try await DemoDatabase.open(configuration.postgres, logger: logger)
        defer { database.close() }
        let simulating = options.rate > 0

        // The webhook receiver, subscribed through the REST API once the service answers.
        let webhookLog = options.directory + "/webhooks.log"
        let secret = "demo-secret-" + UUID().uuidString.prefix(8).lowercased()
        let receiver = try DemoWebhookReceiver(secret: secret, logPath: webhookLog, console: console, logger: logger)
        async let receiving: Void = receiver.server.run()
        let receiverPort = try await receiver.server.waitUntilStarted()

        let serviceConfiguration = configuration
        let serviceEnd = Mutex<String?>(nil)
        let service = Task {
            do {
                try await Faultline.serve(serviceConfiguration, logger: logger)
                serviceEnd.withLock { $0 = "the service stopped" }
            } catch {
                serviceEnd.withLock { $0 = "\(error)" }
                throw error
            }
        }
        let web = "http://127.0.0.1:\(configuration.httpPort)"
        var simulation: Task<Void, Error>?
        var monitor: Task<Void, Never>?
        do {
            let webhookID = try await subscribe(
                api: web, token: token, url: "http://127.0.0.1:\(receiverPort)/alerts", secret: secret, stop: stop,
                serviceEnded: { serviceEnd.withLock { $0 } })
            if let webhookID {
                printBanner(configuration, embedded: embedded, options: options, web: web, token: token, webhookID: webhookID,
                            receiverPort: receiverPort, webhookLog: webhookLog, console: console)
                let progress = SimulationProgress()
                if simulating {
                    var producerConfiguration = configuration
                    // History moves many megabytes at once: the mock keeps only 5 MiB per partition.
                    producerConfiguration.kafkaProperties["compression.type"] = "zstd"
                    let producer = try KafkaProducer(configuration: producerConfiguration.kafka, logger: logger)
                    var scenario = Simulator.Scenario()
                    scenario.rate = options.rate
                    scenario.history = options.history
                    scenario.deploymentAt = options.deploymentAfter
                    scenario.outageAt = options.outageAfter
                    scenario.outageLength = options.outageLength
                    scenario.leakService = options.leakService
                    scenario.startScenariosAtOnce = false
                    let simulator = Simulator(producer: producer, topic: configuration.kafkaTopic,
                                              deploymentsTopic: configuration.kafkaDeploymentsTopic, logger: logger, progress: progress)
                    simulation = Task { try await simulator.run(scenario) }
                }
                monitor = Task {
                    await watch(database: database, progress: simulating ? progress : nil, console: console, every: options.statusEvery,
                                stop: stop)
                }
            }
        } catch {
            console.say("startup failed: \(error)")
            stop.request()
            service.cancel()
        }
        // The service stops on SIGINT/SIGTERM by itself; a stop requested before it trapped the
        // signals (or after a failed start) ends it here.
        let patience = configuration.shutdownGracePeriod + .seconds(5)
        let watchdog = Task {
            while !stop.requested { try await Task.sleep(for: .milliseconds(200)) }
            // A graceful shutdown under way is given its full time first.
            try await Task.sleep(for: patience)
            service.cancel()
        }
        let outcome = await service.result
        watchdog.cancel()
        simulation?.cancel()
        monitor?.cancel()
        _ = await simulation?.result
        await monitor?.value
        receiver.server.beginShutdown()
        try? await receiving
        if case .failure(let error) = outcome, !(error is CancellationError) { throw error }
    }

    /// Creates the webhook subscription through the REST API, retrying while the service
    /// starts; nil when the demo is stopped first.
    private static func subscribe(
        api: String, token: String, url: String, secret: String, stop: StopSignal, serviceEnded: @Sendable () -> String?
    ) async throws -> Int? {
        var settings = HTTPClientConfiguration()
        settings.allowPrivateAddresses = true
        let http = settings
        let body = #"{"url": "\#(url)", "secret": "\#(secret)", "format": "generic"}"#
        let deadline = ContinuousClock.now + .seconds(120)
        var lastError = "no answer"
        while !stop.requested && ContinuousClock.now < deadline {
            let answer: Result<HTTPClient.HTTPResponse, HTTPClientError> = await (try? offloaded("webhook-subscribe") {
                let client = try CurlClient(configuration: http)
                return Result { () throws(HTTPClientError) -> HTTPClient.HTTPResponse in
                    try client.post(url: api + "/v1/webhooks", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                                    body: Array(body.utf8))
                }
            }) ?? .failure(HTTPClientError(.transfer, "the request could not be made"))
            switch answer {
            case .success(let response) where response.status == 201:
                let object = try? JSONSerialization.jsonObject(with: Data(response.bodyPrefix)) as? [String: Any]
                return (object?["id"] as? NSNumber)?.intValue ?? 0
            case .success(let response):
                throw ToolError("creating the webhook subscription answered \(response.status): \(String(decoding: response.bodyPrefix, as: UTF8.self))")
            case .failure(let error):
                lastError = "\(error)"
            }
            // The service ended (a port in use, a bad setting): its error is what matters.
            if let ended = serviceEnded() { throw ToolError("the service ended while starting: \(ended)") }
            try await Task.sleep(for: .milliseconds(300))
        }
        if stop.requested { return nil }
        throw ToolError("the REST API did not answer within 120 s: \(lastError)")
    }

    private static func printBanner(
        _ configuration: FaultlineConfiguration, embedded: EmbeddedEnvironment, options: Options, web: String, token: String,
        webhookID: Int, receiverPort: Int, webhookLog: String, console: DemoConsole
    ) {
        let auth = "-H 'Authorization: Bearer \(token)'"
        let history = Simulator.describe(options.history)
        var lines = """

            Faultline demo
              Dashboard:         \(web)/#key=\(token)
              Try the REST API:  curl -s \(auth) \(web)/v1/insights
                                 curl -s \(auth) \(web)/v1/recommendations
                                 curl -s \(auth) \(web)/v1/clusters
                                 curl -s \(auth) \(web)/v1/predictions
              Webhooks:          subscription \(webhookID) (generic JSON, HMAC-SHA256 signed) to http://127.0.0.1:\(receiverPort)/alerts
                                 received alerts are logged here and in \(webhookLog)
              Kafka (embedded):  \(embedded.kafka.bootstrapServers)  topics: errors, errors.dlq, deployments
              Produce errors:    kcat -P -b \(embedded.kafka.bootstrapServers) -t errors
              PostgreSQL:        \(embedded.databaseURL)
              Service log:       \(options.logFile ?? "standard output (FAULTLINE_LOG_LEVEL is set)")
              Analysis:          every \(configuration.analysisInterval); forecasts warn at \(Int(configuration.forecastThreshold)) errors/min within \(configuration.forecastHorizon.components.seconds / 60) min
              Stop:              Ctrl-C (or SIGTERM): everything stops, exit status 0

            """
        if options.rate > 0 {
            func at(_ label: String) -> String { "  " + label.padding(toLength: 10, withPad: " ", startingAt: 0) + " " }
            lines += "The story (times from when the history is in):\n"
            lines += at("first") + "\(history) of history: \(formatRate(options.rate)) background errors/s with a daily shape in five services,\n"
            let leak = Simulator.Scenario()
            lines += at("") + "and a memory leak in \(options.leakService) whose warnings grow by \(Int(leak.leakGrowth * 100)) % a minute (\(Int(leak.leakRateNow))/min at the end)\n"
            lines += at("at once") + "the leak's forecast: a predicted breach, \"raise the memory limit\"\n"
            lines += at("+\(Int(options.deploymentAfter.seconds)) s") + "checkout 1.8.3 rolls out with a new NullPointerException: new error, spike, roll back to 1.8.2\n"
            lines += at("+\(Int(options.outageAfter.seconds)) s") + "payments-db times out for \(Int(options.outageLength.seconds)) s in checkout, payments and orders: a cross-service pattern\n"
            lines += at("always") + "search and inventory only have background noise: no spike there\n\n"
        } else {
            lines += "No simulated traffic (--rate 0).\n"
        }
        console.raw(lines)
    }

    private static func formatRate(_ rate: Double) -> String {
        rate == rate.rounded() ? String(Int(rate)) : String(rate)
    }

    /// Prints progress and every new insight until cancelled; starts the scenarios and lets the
    /// analysis run once the history is in.
    private static func watch(
        database: DemoDatabase, progress: SimulationProgress?, console: DemoConsole, every: Duration, stop: StopSignal
    ) async {
        var lastInsight: Int64 = 0
        var lastStatus = ContinuousClock.now - every
        var released = progress == nil
        var lastIngested = -1
        var stalledSince = ContinuousClock.now
        let started = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let ingested = try await database.ingestedEvents()
                progress?.noteIngested(ingested)
                if !released, let progress, let history = progress.historyProduced {
                    if ingested != lastIngested { stalledSince = .now }
                    let stalled = ContinuousClock.now - stalledSince > .seconds(30)
                    if ingested >= history || stalled {
                        if stalled {
                            console.say("the history stopped at \(ingested) of \(history) events ingested; starting the scenarios anyway")
                        }
                        progress.startScenarios()
                        released = true
                        console.say("history ingested (\(ingested) events in \(Int((ContinuousClock.now - started).seconds)) s): scenarios start now")
                    }
                }
                lastIngested = ingested
                for insight in try await database.insights(after: lastInsight) {
                    lastInsight = max(lastInsight, insight.id)
                    console.say("INSIGHT \(insight.kind): \(insight.title)")
                    if let recommendation = insight.recommendation { console.raw("          → \(recommendation)\n") }
                }
                if ContinuousClock.now - lastStatus >= every && !stop.requested {
                    lastStatus = .now
                    let produced = progress.map { "events produced \($0.produced), " } ?? ""
                    let step = progress.map { " · \($0.step)" } ?? ""
                    console.say("\(produced)ingested \(ingested)\(step)")
                }
            } catch {
                console.say("status unavailable: \(error)")
            }
            // Faster while the history goes in: the simulator paces it by this count.
            try? await Task.sleep(for: released ? .seconds(1) : .milliseconds(200))
        }
    }
}

/// Set once, read anywhere.
final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    func request() { flag.store(true, ordering: .relaxed) }
    var requested: Bool { flag.load(ordering: .relaxed) }
}

/// Plain lines on standard output, each with the time since the demo started; no escape codes,
/// so it reads the same in a terminal, a pipe or a file.
final class DemoConsole: Sendable {
    private let start = ContinuousClock.now
    private let lock = Mutex(())

    func say(_ text: String) {
        let elapsed = Int((ContinuousClock.now - start).seconds)
        raw(String(format: "[%02d:%02d] ", elapsed / 60, elapsed % 60) + text + "\n")
    }

    func raw(_ text: String) {
        lock.withLock { _ in
            var text = text
            text.withUTF8 { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 { if errno == EINTR { continue } else { return } }
                    offset += written
                }
            }
        }
    }
}

/// The demo's own database session: counts for the progress display and new insights. Every
/// call runs on the session's thread.
final class DemoDatabase: Sendable {
    /// Touched only on `thread` (every use is a job submitted to it).
    final class Box: @unchecked Sendable {
        var connection: PostgresConnection?
    }

    struct InsightLine: Sendable {
        var id: Int64
        var kind: String
        var title: String
        var recommendation: String?
    }

    private let thread = DedicatedThread(name: "demo-db")
    private let box = Box()

    static func open(_ configuration: PostgresConfiguration, logger: Logger) async throws -> DemoDatabase {
        let database = DemoDatabase()
        var configuration = configuration
        configuration.applicationName = "faultline-demo"
        try await database.thread.run { [box = database.box, configuration] in
            box.connection = try PostgresConnection.connect(configuration, logger: logger)
        }
        return database
    }

    private func with<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await thread.run { [box] in
            guard let connection = box.connection else { throw ToolError("the demo's database session is closed") }
            return try body(connection)
        }
    }

    /// Events stored (group counters move only for rows really inserted).
    func ingestedEvents() async throws -> Int {
        try await with { try $0.query("SELECT coalesce(sum(event_count), 0)::bigint FROM groups").first?.int(0) ?? 0 }
    }

    func insights(after id: Int64) async throws -> [InsightLine] {
        try await with { connection in
            try connection.query("""
                SELECT i.id, i.kind, i.title,
                       (SELECT r.title || ' (confidence ' || round(r.confidence::numeric, 2) || ')' FROM recommendations r
                         WHERE r.insight_id = i.id ORDER BY r.position LIMIT 1)
                FROM insights i WHERE i.id > $1 ORDER BY i.id
                """, [.int(id)]).rows.map { row in
                InsightLine(id: Int64(try row.int(0)), kind: try row.string(1), title: try row.string(2), recommendation: row.optionalString(3))
            }
        }
    }

    func close() {
        _ = thread.submit { [box] in box.connection = nil }
        thread.shutdown()
    }
}

/// A loopback HTTP receiver for the demo's webhook subscription: checks each delivery's
/// `Faultline-Signature` and logs every alert in it to the terminal and to a file.
final class DemoWebhookReceiver: Sendable {
    let server: HTTPServer

    init(secret: String, logPath: String, console: DemoConsole, logger: Logger) throws {
        let fd = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ToolError("cannot open \(logPath): \(String(cString: strerror(errno)))") }
        let file = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        let lock = Mutex(())
        let handler: HTTPHandler = { request in
            let header = request.headers[WebhookSignature.headerName] ?? ""
            let verified = WebhookSignature.verify(header: header, secret: secret, body: request.body, now: Int(Date().timeIntervalSince1970))
            let object = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any]
            let alerts = object?["alerts"] as? [[String: Any]] ?? []
            let time = RFC3339Now.string()
            var lines: [String] = []
            for alert in alerts {
                let kind = alert["kind"] as? String ?? "?"
                let title = alert["title"] as? String ?? "?"
                lines.append("\(time) signature verified: \(verified ? "yes" : "no") kind: \(kind) title: \(title)")
            }
            if alerts.isEmpty {
                lines.append("\(time) signature verified: \(verified ? "yes" : "no") kind: ? title: (no alerts in the body)")
            }
            lock.withLock { _ in file.write(Data(lines.map { $0 + "\n" }.joined().utf8)) }
            for line in lines { console.say("WEBHOOK " + line.dropFirst(time.count + 1)) }
            return verified ? .text("ok\n") : .text("bad signature\n", status: 401)
        }
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.shutdownGrace = .seconds(2)
        server = HTTPServer(configuration: configuration, handler: handler, logger: logger)
    }
}

enum RFC3339Now {
    static func string() -> String { LogTime.now() }
}
