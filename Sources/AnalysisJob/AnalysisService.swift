import Foundation
import Logging
import Metrics
import Posix
import Postgres
import Storage
import ServiceLifecycle
import Synchronization

/// State of the analysis job, for readiness and metrics.
public final class AnalysisStatus: Sendable {
    struct State {
        var isLeader = false
        var runs = 0
        var failures = 0
        var lastRun: Date?
        var lastDuration: Duration = .zero
        var lastReport = CycleReport()
    }

    let state = Mutex(State())
    public init() {}

    /// Whether this replica holds the analysis lock now.
    public var isLeader: Bool { state.withLock { $0.isLeader } }
    public var runs: Int { state.withLock { $0.runs } }
    public var failures: Int { state.withLock { $0.failures } }
    public var lastRun: Date? { state.withLock { $0.lastRun } }
    public var lastDuration: Duration { state.withLock { $0.lastDuration } }
    public var lastReport: CycleReport { state.withLock { $0.lastReport } }
}

/// Runs the analysis periodically on exactly one replica at a time.
///
/// The replica that holds a PostgreSQL session advisory lock on its own connection is the
/// leader; the others try to take the lock at every tick. When the leader dies its session
/// ends, the lock is released, and another replica takes over at its next tick. Blocking
/// libpq calls and the computation run on a thread of the job's own.
public final class AnalysisService: Service {
    static let lock = AdvisoryLock.analysisLeader

    private let configuration: AnalysisConfiguration
    private let postgres: PostgresConfiguration
    private let logger: Logger
    public let status: AnalysisStatus
    private let thread = DedicatedThread(name: "analysis")
    private let box: Box
    private let leader = Gauge(label: "faultline_analysis_leader")
    private let seriesGauge = Gauge(label: "faultline_analysis_series")
    private let awakeGauge = Gauge(label: "faultline_analysis_awake_series")
    private let runDuration = Metrics.Timer(label: "faultline_analysis_run_seconds")
    private let runsSucceeded = Counter(label: "faultline_analysis_runs_total", dimensions: [("outcome", "ok")])
    private let runsFailed = Counter(label: "faultline_analysis_runs_total", dimensions: [("outcome", "failed")])

    /// The engine and the leader connection. Unchecked: they are touched only on the job's
    /// thread (every access is inside a job submitted to `thread`), never concurrently.
    final class Box: @unchecked Sendable {
        var connection: PostgresConnection?
        var engine: AnalysisEngine
        var holdsLock = false
        init(engine: AnalysisEngine) { self.engine = engine }
    }

    /// - Parameter deployments: the process's deployments, shared with ingest when it runs there.
    public init(configuration: AnalysisConfiguration, postgres: PostgresConfiguration, logger: Logger,
                status: AnalysisStatus = AnalysisStatus(), deployments: DeploymentCache = DeploymentCache()) {
        self.configuration = configuration
        var postgres = postgres
        postgres.applicationName = "faultline-analysis"
        self.postgres = postgres
        self.logger = logger
        self.status = status
        self.box = Box(engine: AnalysisEngine(configuration: configuration, logger: logger, deployments: deployments))
        recordNotLeading()
        runsSucceeded.increment(by: 0)
        runsFailed.increment(by: 0)
    }

    /// Only the leader follows series: the others say 0, not what they followed when they led.
    private func recordNotLeading() {
        leader.record(0)
        seriesGauge.record(0)
        awakeGauge.record(0)
    }

    deinit {
        thread.shutdown()
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                let report = try await thread.run { [box, postgres, logger] in
                    try Self.tick(box, postgres: postgres, logger: logger)
                }
                let elapsed = ContinuousClock.now - started
                status.state.withLock { state in
                    state.isLeader = report != nil
                    if let report {
                        state.runs += 1
                        state.lastRun = Date()
                        state.lastDuration = elapsed
                        state.lastReport = report
                    }
                }
                if report == nil { recordNotLeading() } else { leader.record(1) }
                if let report {
                    runDuration.record(duration: elapsed)
                    runsSucceeded.increment()
                    seriesGauge.record(report.series)
                    awakeGauge.record(report.awakeSeries)
                }
                if let report, report.insightsCreated > 0 || report.rebuilt || report.minutesRolledUp > 0 {
                    logger.info("analysis run", metadata: [
                        "insights_created": "\(report.insightsCreated)", "spikes": "\(report.spikes)",
                        "groups": "\(report.groupsAnalyzed)", "clusters": "\(report.clustersTrained)",
                        "rebuilt": "\(report.rebuilt)", "duration": "\(elapsed)",
                        "series": "\(report.series)", "awake_series": "\(report.awakeSeries)",
                        "minutes_rolled_up": "\(report.minutesRolledUp)",
                    ])
                }
            } catch {
                status.state.withLock { $0.failures += 1; $0.isLeader = false }
                recordNotLeading()
                runsFailed.increment()
                logger.warning("analysis run failed", metadata: ["error": "\(error)"])
                // A broken connection loses the lock with the session; start again from a new one.
                _ = try? await thread.run { [box] in box.connection = nil; box.holdsLock = false }
            }
            let wait = configuration.interval - (ContinuousClock.now - started)
            if wait > .zero {
                // Shutdown must not wait out the interval.
                _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            }
        }
        // Leaving: give the lock up at once so another replica takes over without waiting.
        _ = try? await thread.run { [box] in
            if box.holdsLock, let connection = box.connection {
                try? Self.lock.unlock(on: connection)
            }
            box.connection = nil
            box.holdsLock = false
        }
        recordNotLeading()
        thread.shutdown()
        logger.info("analysis stopped")
    }

    /// One tick on the job's thread: take or keep the lock, then run. `nil` when another
    /// replica leads.
    static func tick(_ box: Box, postgres: PostgresConfiguration, logger: Logger) throws -> CycleReport? {
        guard let connection = box.connection else {
            box.connection = try PostgresConnection.connect(postgres, logger: logger)
            box.holdsLock = false
            return try tick(box, postgres: postgres, logger: logger)
        }
        try connection.ensureOpen()
        if box.holdsLock {
            // ensureOpen may have reconnected, and a new session does not hold the lock.
            box.holdsLock = try lock.isHeld(on: connection)
        }
        if !box.holdsLock {
            box.holdsLock = try lock.tryLock(on: connection)
            if box.holdsLock { logger.info("this replica now runs the analysis") }
        }
        guard box.holdsLock else { return nil }
        return try box.engine.run(on: connection)
    }
}
