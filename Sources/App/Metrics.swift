import CoreMetrics
import Postgres
import Prometheus

/// Faultline's metrics: every name the libraries record through swift-metrics, with its help
/// text and buckets, and the Prometheus registry that `/metrics` renders.
///
/// The libraries (Ingest, Alerts, AnalysisJob…) record through the global `MetricsSystem`; only
/// `main` bootstraps it, with ``factory``. A process that never bootstraps (a test) records
/// nothing.
public enum FaultlineMetrics {
    public struct Metric: Sendable {
        public enum Kind: String, Sendable { case counter, gauge, histogram }
        public let name: String
        public let kind: Kind
        public let labels: [String]
        public let help: String
        /// Upper bounds of a latency histogram's buckets.
        public let buckets: [Duration]?

        init(_ name: String, _ kind: Kind, _ labels: [String] = [], _ help: String, buckets: [Duration]? = nil) {
            self.name = name
            self.kind = kind
            self.labels = labels
            self.help = help
            self.buckets = buckets
        }
    }

    static let fast: [Duration] = [.milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                   .seconds(2.5), .seconds(5), .seconds(10)]
    static let slow: [Duration] = [.milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                                   .seconds(5), .seconds(10), .seconds(15), .seconds(30), .seconds(60), .seconds(120)]

    /// Every metric Faultline exports (documented in docs/operations.md, used by deploy/prometheus
    /// and deploy/grafana).
    public static let catalog: [Metric] = [
        Metric("faultline_events_ingested_total", .counter, ["outcome"],
               "Messages and events taken from Kafka, by outcome: inserted, duplicate (already stored), dead_letter, skipped (below the minimum severity)."),
        Metric("faultline_batch_write_seconds", .histogram, [], "Time to write one batch to PostgreSQL in one transaction.", buckets: fast),
        Metric("faultline_consumer_lag", .gauge, ["topic", "partition"],
               "Messages behind the end of each partition this replica consumes."),
        Metric("faultline_event_time_lag_seconds", .gauge, [],
               "How far behind the clock event time is complete on the least complete errors partition this replica consumes (the watermark the analysis scores by)."),
        Metric("faultline_assigned_partitions", .gauge, [], "Kafka partitions this replica consumes."),
        Metric("faultline_dead_letters_total", .counter, [], "Messages set aside in the dead-letter topic."),
        Metric("faultline_database_available", .gauge, [], "1 while ingest reaches PostgreSQL."),
        Metric("faultline_database_errors_total", .counter, ["kind"],
               "Failed PostgreSQL operations: connection (cannot connect or connection lost) or statement."),
        Metric("faultline_webhook_deliveries_total", .counter, ["status"],
               "Webhook delivery attempts by result: delivered, retried (will be tried again), failed (given up)."),
        Metric("faultline_webhook_pending", .gauge, [], "Webhook deliveries waiting in the outbox."),
        Metric("faultline_http_requests_total", .counter, ["route", "method", "status"], "HTTP requests answered, by route pattern."),
        Metric("faultline_http_request_duration_seconds", .histogram, ["route"], "Time to answer an HTTP request.", buckets: fast),
        Metric("faultline_http_open_connections", .gauge, [], "Open HTTP connections."),
        Metric("faultline_analysis_run_seconds", .histogram, [], "Duration of an analysis run.", buckets: slow),
        Metric("faultline_analysis_runs_total", .counter, ["outcome"], "Analysis runs on this replica: ok or failed."),
        Metric("faultline_analysis_leader", .gauge, [], "1 on the replica that runs the analysis now, else 0."),
        Metric("faultline_analysis_series", .gauge, [], "Series (services and groups) the analysis leader follows, as of its last run."),
        Metric("faultline_analysis_awake_series", .gauge, [], "Of those, the series with a detector: a minute of at least the minimum count in the last 26 hours."),
    ]

    /// The registry `/metrics` renders.
    public static let registry = PrometheusCollectorRegistry()

    /// The factory to bootstrap `MetricsSystem` with.
    public static var factory: any MetricsFactory { CatalogMetricsFactory(registry: registry) }

    /// Makes swift-metrics record into ``registry``; only `main` calls this, once.
    public static func bootstrap() {
        MetricsSystem.bootstrap(factory)
        DatabaseErrors.connection.increment(by: 0)
        DatabaseErrors.statement.increment(by: 0)
    }

    /// The metrics in Prometheus' text format.
    public static func render() -> String { registry.emitToString() }
}

/// A swift-metrics factory over a Prometheus registry that knows the help text and buckets of
/// each of Faultline's metrics (PrometheusMetricsFactory gives every metric an empty help).
struct CatalogMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    private static let byName = Dictionary(uniqueKeysWithValues: FaultlineMetrics.catalog.map { ($0.name, $0) })

    /// The name as given (no namespace or unit parts added) with the catalog's help text.
    private func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: Self.byName[name]?.help ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            let buckets = Self.byName[label]?.buckets.map { $0.map { $0.seconds } } ?? [0.001, 0.01, 0.1, 1, 10, 100, 1000]
            return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
        }
        return registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions, buckets: Self.byName[label]?.buckets ?? FaultlineMetrics.fast)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}

/// Failed PostgreSQL operations, told by every connection (``PostgresConfiguration/onError``).
enum DatabaseErrors {
    static let connection = Counter(label: "faultline_database_errors_total", dimensions: [("kind", "connection")])
    static let statement = Counter(label: "faultline_database_errors_total", dimensions: [("kind", "statement")])

    @Sendable static func record(_ error: PostgresError) {
        (error.isConnectionError ? connection : statement).increment()
    }
}
