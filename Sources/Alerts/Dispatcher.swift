import Domain
import Foundation
import HTTPClient
import Logging
import Metrics
import Posix
import Postgres
import ServiceLifecycle
import Storage
import Synchronization

/// How deliveries are sent and retried.
public struct AlertDispatcherConfiguration: Sendable {
    public var http = HTTPClientConfiguration()
    /// The API's external base URL, for the links in messages.
    public var publicURL = "http://localhost:8080"
    /// How often an idle dispatcher looks for due deliveries.
    public var pollInterval: Duration = .milliseconds(500)
    /// Deliveries leased at once by one worker.
    public var batchSize = 10
    /// Workers per replica, each with its own thread, connection and easy handle, so one slow
    /// endpoint does not hold every other delivery back.
    public var workers = 2
    /// The first retry waits about this long; each further one twice as long (with jitter).
    public var retryBase: Duration = .seconds(2)
    /// The longest wait between two attempts.
    public var retryMaxDelay: Duration = .seconds(600)
    /// A delivery still failing this long after it was queued is given up (status `failed`).
    public var maxAge: Duration = .seconds(86_400)
    /// Consecutive failures of one subscription that open its circuit breaker.
    public var breakerThreshold = 5
    /// How long an opened breaker stays open at first; doubled with each further failure.
    public var breakerOpen: Duration = .seconds(30)
    public var breakerMaxOpen: Duration = .seconds(600)

    public init() {}

    /// How long a claim is held: long enough to send a whole batch, so no other replica takes
    /// a delivery this one is still sending.
    public var lease: Duration { http.totalTimeout * batchSize + .seconds(10) }
}

/// Counters for metrics and tests.
public final class AlertDispatcherStatus: Sendable {
    struct State {
        var delivered = 0
        var retried = 0
        var failed = 0
        var cycles = 0
    }

    let state = Mutex(State())
    private let delivered_ = Counter(label: "faultline_webhook_deliveries_total", dimensions: [("status", "delivered")])
    private let retried_ = Counter(label: "faultline_webhook_deliveries_total", dimensions: [("status", "retried")])
    private let failed_ = Counter(label: "faultline_webhook_deliveries_total", dimensions: [("status", "failed")])
    let pending = Gauge(label: "faultline_webhook_pending")

    public init() {
        for counter in [delivered_, retried_, failed_] { counter.increment(by: 0) }
    }

    enum Outcome { case delivered, retried, failed }

    func count(_ outcome: Outcome) {
        state.withLock {
            switch outcome {
            case .delivered: $0.delivered += 1
            case .retried: $0.retried += 1
            case .failed: $0.failed += 1
            }
        }
        switch outcome {
        case .delivered: delivered_.increment()
        case .retried: retried_.increment()
        case .failed: failed_.increment()
        }
    }

    public var delivered: Int { state.withLock { $0.delivered } }
    public var retried: Int { state.withLock { $0.retried } }
    public var failed: Int { state.withLock { $0.failed } }
    /// Passes over the outbox that ended without an error, by every worker: one that began after
    /// a row was queued has seen it (and sent it or left it to wait).
    public var cycles: Int { state.withLock { $0.cycles } }

    func cycleEnded() { state.withLock { $0.cycles += 1 } }
}

/// Sends the outbox's due deliveries to their webhooks.
///
/// Every replica may run one: a dispatcher leases due rows with `FOR UPDATE SKIP LOCKED` and
/// a `locked_until` lease, so two never take the same row, and a replica that dies mid-send
/// leaves rows that become due again when their lease ends (sent again with the same
/// `Faultline-Delivery` id, so receivers can drop the repeat). libpq and libcurl block, so
/// both run on the dispatcher's own thread with one connection and one reused easy handle.
public final class AlertDispatcher: Service {
    private let configuration: AlertDispatcherConfiguration
    private let postgres: PostgresConfiguration
    private let logger: Logger
    public let status: AlertDispatcherStatus
    private let workers: [(thread: DedicatedThread, worker: Worker)]

    public init(configuration: AlertDispatcherConfiguration, postgres: PostgresConfiguration, logger: Logger,
                status: AlertDispatcherStatus = AlertDispatcherStatus()) {
        self.configuration = configuration
        var postgres = postgres
        postgres.applicationName = "faultline-alerts"
        self.postgres = postgres
        self.logger = logger
        self.status = status
        self.workers = (0..<max(1, configuration.workers)).map { index in
            (DedicatedThread(name: "alerts-\(index)"), Worker(configuration: configuration, postgres: postgres, logger: logger, status: status))
        }
    }

    deinit {
        for (thread, _) in workers { thread.shutdown() }
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for (thread, worker) in workers {
                group.addTask { await self.loop(thread, worker) }
            }
        }
        logger.info("alert dispatcher stopped")
    }

    private func loop(_ thread: DedicatedThread, _ worker: Worker) async {
        // One worker reports the outbox's backlog (every replica's dispatcher sees the same).
        let reportsBacklog = worker === workers.first?.worker
        var lastBacklog = ContinuousClock.now - .seconds(60)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var idle = true
            do {
                if reportsBacklog && ContinuousClock.now - lastBacklog >= .seconds(10) {
                    let pending = try await thread.run { [worker] in try worker.pendingCount() }
                    status.pending.record(pending)
                    lastBacklog = .now
                }
                let handled = try await thread.run { [worker] in try worker.cycle() }
                status.cycleEnded()
                idle = handled == 0
            } catch {
                logger.warning("alert dispatch failed", metadata: ["error": "\(error)"])
                _ = try? await thread.run { [worker] in worker.connection = nil }
                try? await Task.sleep(for: .seconds(1))
            }
            if idle {
                try? await Task.sleep(for: configuration.pollInterval)
            }
        }
        _ = try? await thread.run { [worker] in worker.connection = nil }
        thread.shutdown()
    }

    /// One replica's sender. Unchecked: its connection and easy handle are used only on the
    /// dispatcher's thread (every access is a job submitted to it).
    final class Worker: @unchecked Sendable {
        let configuration: AlertDispatcherConfiguration
        let postgres: PostgresConfiguration
        let logger: Logger
        let status: AlertDispatcherStatus
        var connection: PostgresConnection?
        var client: CurlClient?

        init(configuration: AlertDispatcherConfiguration, postgres: PostgresConfiguration, logger: Logger, status: AlertDispatcherStatus) {
            self.configuration = configuration
            self.postgres = postgres
            self.logger = logger
            self.status = status
        }

        /// Deliveries waiting in the outbox, due or not.
        func pendingCount() throws -> Int {
            try AlertStore.pendingCount(on: openConnection())
        }

        /// The worker's connection, opened (or reopened) as needed.
        private func openConnection() throws -> PostgresConnection {
            let connection = try self.connection ?? PostgresConnection.connect(postgres, logger: logger)
            self.connection = connection
            try connection.ensureOpen()
            return connection
        }

        /// Leases a batch, sends it, records the outcomes. Returns how many were claimed.
        func cycle() throws -> Int {
            let connection = try openConnection()
            if client == nil { client = try CurlClient(configuration: configuration.http) }
            guard let client else { return 0 }

            let claimedAt = ContinuousClock.now
            let (claims, subscriptions) = try connection.transaction { connection in
                let claims = try AlertStore.claim(limit: configuration.batchSize, lease: configuration.lease, on: connection)
                let subscriptions = try AlertStore.subscriptions(ids: Array(Set(claims.map(\.webhookID))), on: connection)
                var rendered: [ClaimedDelivery] = []
                for var claim in claims {
                    if claim.body == nil, let subscription = subscriptions[claim.webhookID] {
                        // Rendered once, under the lease: the message is fixed from now on, so
                        // every retry sends the same body, and no later insight folds into it.
                        let insights = try AnalysisStore.insights(
                            ids: try AlertStore.insightIDs(outboxID: claim.id, on: connection), on: connection
                        ).sorted { ($0.id ?? 0) < ($1.id ?? 0) }
                        let body = AlertPayload.render(
                            insights, format: AlertPayload.Format(rawValue: subscription.format) ?? .generic,
                            deliveryID: claim.deliveryID, publicURL: configuration.publicURL)
                        try AlertStore.setBody(id: claim.id, body: body, on: connection)
                        claim.body = body
                    }
                    rendered.append(claim)
                }
                return (rendered, subscriptions)
            }
            var openUntil: [Int64: Date] = [:]
            for claim in claims {
                guard let subscription = subscriptions[claim.webhookID], subscription.enabled, let body = claim.body else {
                    try AlertStore.markFailed(id: claim.id, error: "the subscription is disabled or gone", on: connection)
                    status.count(.failed)
                    continue
                }
                if let until = openUntil[claim.webhookID] {
                    try AlertStore.release(id: claim.id, at: until, on: connection)
                    continue
                }
                // Never send on a lease that might end before the request does.
                if ContinuousClock.now - claimedAt > configuration.lease - configuration.http.totalTimeout - .seconds(2) {
                    try AlertStore.release(id: claim.id, at: Date(), on: connection)
                    continue
                }
                let result = send(claim, subscription, body: body, client: client)
                try record(result, claim: claim, connection: connection, openUntil: &openUntil)
            }
            return claims.count
        }

        enum Outcome {
            case delivered(Int)
            case retry(status: Int?, error: String, after: Duration?)
            case fail(status: Int?, error: String)
        }

        func send(_ claim: ClaimedDelivery, _ subscription: AlertSubscription, body: String, client: CurlClient) -> Outcome {
            let bytes = Array(body.utf8)
            var headers: [(String, String)] = [
                ("Content-Type", "application/json"),
                ("Faultline-Delivery", claim.deliveryID),
                ("Faultline-Attempt", String(claim.attempts + 1)),
            ]
            if let secret = subscription.secret {
                let timestamp = Int(Date().timeIntervalSince1970)
                headers.append((WebhookSignature.headerName, WebhookSignature.header(secret: secret, timestamp: timestamp, body: bytes)))
            }
            do {
                let response = try client.post(url: subscription.url, headers: headers, body: bytes)
                switch response.status {
                case 200..<300:
                    return .delivered(response.status)
                case 408, 429, 500..<600:
                    return .retry(status: response.status, error: "HTTP \(response.status)",
                                  after: response.headers["retry-after"].flatMap { RetryAfter.parse($0, now: Date()) })
                default:
                    return .fail(status: response.status, error: "HTTP \(response.status) is not retried")
                }
            } catch {
                switch error.code {
                case .invalidURL, .refusedAddress: return .fail(status: nil, error: error.description)
                case .timeout, .connect, .tls, .transfer: return .retry(status: nil, error: error.description, after: nil)
                }
            }
        }

        func record(_ outcome: Outcome, claim: ClaimedDelivery, connection: PostgresConnection, openUntil: inout [Int64: Date]) throws {
            let attempt = claim.attempts + 1
            let metadata: Logger.Metadata = ["delivery": "\(claim.deliveryID)", "webhook": "\(claim.webhookID)", "attempt": "\(attempt)"]
            switch outcome {
            case .delivered(let code):
                try connection.transaction { connection in
                    try AlertStore.markDelivered(id: claim.id, statusCode: code, on: connection)
                    try AlertStore.endpointSucceeded(webhookID: claim.webhookID, on: connection)
                }
                status.count(.delivered)
                logger.info("alert delivered", metadata: metadata.merging(["status": "\(code)"]) { $1 })
            case let .fail(code, error):
                try AlertStore.markAttemptFailed(id: claim.id, statusCode: code, error: error, retryIn: nil, on: connection)
                status.count(.failed)
                logger.warning("alert delivery failed, not retried", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            case let .retry(code, error, after):
                var delay = Backoff.delay(attempt: attempt, base: configuration.retryBase, maximum: configuration.retryMaxDelay)
                if let after, after > delay { delay = after }  // the receiver said when
                let giveUp = Date().addingTimeInterval(delay.seconds) > claim.createdAt.addingTimeInterval(configuration.maxAge.seconds)
                try connection.transaction { connection in
                    try AlertStore.markAttemptFailed(
                        id: claim.id, statusCode: code, error: giveUp ? "\(error); gave up after \(attempt) attempts" : error,
                        retryIn: giveUp ? nil : delay, on: connection)
                    if let until = try AlertStore.endpointFailed(
                        webhookID: claim.webhookID, threshold: configuration.breakerThreshold, base: configuration.breakerOpen,
                        maximum: configuration.breakerMaxOpen, on: connection)
                    {
                        openUntil[claim.webhookID] = until
                    }
                }
                if giveUp {
                    status.count(.failed)
                    logger.warning("alert delivery given up", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                } else {
                    status.count(.retried)
                    logger.info("alert delivery will be retried", metadata: metadata.merging(["error": "\(error)", "retry_in": "\(delay)"]) { $1 })
                }
            }
        }
    }
}

/// Capped exponential backoff with equal jitter: attempt n waits between half and all of
/// `base · 2^(n-1)`, at most `maximum`.
public enum Backoff {
    public static func delay(attempt: Int, base: Duration, maximum: Duration) -> Duration {
        let full = min(maximum.seconds, base.seconds * pow(2, Double(min(max(attempt - 1, 0), 40))))
        let jittered = full / 2 + Double.random(in: 0...(full / 2))
        return .milliseconds(Int64(jittered * 1000))
    }
}

/// `Retry-After`: delay seconds, or an HTTP date.
public enum RetryAfter {
    public static func parse(_ value: String, now: Date) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(text), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
            }
        }
        return nil
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
