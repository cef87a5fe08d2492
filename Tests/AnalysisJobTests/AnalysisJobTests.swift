import Analysis
import Domain
import Foundation
import Logging
import Postgres
import Storage
import Testing
import TestSupport

@testable import AnalysisJob

let logger: Logger = {
    var logger = Logger(label: "analysis-tests")
    logger.logLevel = .error
    return logger
}()

/// The shipped rules, read from the repository.
func shippedRules() throws -> RuleSet {
    try RuleSet(json: String(contentsOf: repositoryRoot.appendingPathComponent("rules/recommendations.json"), encoding: .utf8))
}

/// Writes events into a fresh, migrated database the way ingest does.
struct Fixture {
    let connection: PostgresConnection
    let url: String
    var sequence = 0

    init() throws {
        url = try TestDatabase.migrated("analysis")
        connection = try PostgresConnection.connect(.init(url: url), logger: logger)
    }

    mutating func events(
        service: String, environment: String = "production", version: String? = nil, errorType: String, message: String,
        at times: [Date], frames: [StackFrame] = [], progress: PartitionProgress? = nil
    ) throws {
        var batch = IngestBatch()
        batch.progress = progress.map { [$0] } ?? []
        for time in times {
            sequence += 1
            let event = ErrorEvent(
                eventID: StableHash.uuid("analysis-test/\(sequence)"), timestamp: time, service: service, environment: environment,
                version: version, errorType: errorType, message: message, frames: frames)
            let fingerprint = Fingerprint(event)
            batch.events.append(EnrichedEvent(
                event: event, fingerprint: fingerprint.value, template: fingerprint.template, frames: fingerprint.frames,
                deployment: nil, origin: MessageOrigin(topic: "errors", partition: 0, offset: Int64(sequence))))
        }
        try PartitionManager.ensure(days: Set(batch.events.map { PartitionManager.day(of: $0.event.timestamp) }), on: connection)
        _ = try EventStore.write(batch, on: connection)
    }

    func deploy(_ service: String, _ version: String, at time: Date, environment: String = "production") throws {
        var batch = IngestBatch()
        batch.deployments = [Deployment(service: service, environment: environment, version: version, commit: "c-\(version)", startedAt: time)]
        _ = try EventStore.write(batch, on: connection)
    }

    func insights() throws -> [Insight] { try AnalysisStore.insights(limit: 1000, on: connection) }
}

/// `count` times spread evenly over the minute that starts at `minute`.
func spread(_ count: Int, in minute: Date) -> [Date] {
    (0..<count).map { minute.addingTimeInterval(Double($0) * 60 / Double(max(count, 1)) + 0.5) }
}

/// A deterministic pseudo-random count around `mean` (small noise, never negative).
func noisy(_ mean: Double, _ index: Int) -> Int {
    let wobble = Double((index &* 2_654_435_761) % 7) - 3  // -3…3
    return max(0, Int((mean + wobble * mean / 6).rounded()))
}

let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60 - 4 * 3600)

func configuration(_ rules: RuleSet) -> AnalysisConfiguration {
    var configuration = AnalysisConfiguration(rules: rules)
    configuration.newGroupWarmup = .seconds(0)
    return configuration
}

@Suite(.serialized) struct AnalysisJobTests {
    /// Three hours of steady checkout errors, then 1.8.3 rolls out and a new exception floods in.
    @Test func aSpikeAfterADeploymentIsReportedWithinOneBucketWithARollbackNamingBothVersions() async throws {
        // libpq blocks: the test runs on a thread of its own, not on the shared pool.
        try await onThread { check in
            var fixture = try Fixture()
            try fixture.deploy("checkout", "1.8.2", at: start.addingTimeInterval(-3600))
            for minute in 0..<180 {
                let time = start.addingTimeInterval(Double(minute) * 60)
                try fixture.events(service: "checkout", version: "1.8.2", errorType: "TimeoutError",
                                   message: "upstream inventory timed out after \(minute % 9 + 1)s", at: spread(noisy(6, minute), in: time))
            }
            let rollout = start.addingTimeInterval(180 * 60)
            try fixture.deploy("checkout", "1.8.3", at: rollout)
            // Background goes on; the new error starts two minutes after the rollout.
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            _ = try engine.run(on: fixture.connection, now: rollout)
            check.expect(try fixture.insights().filter { $0.kind == .spike }.isEmpty, "steady background must not alert")

            let spikeStart = rollout.addingTimeInterval(120)
            for minute in 0..<2 {
                let time = rollout.addingTimeInterval(Double(minute) * 60)
                try fixture.events(service: "checkout", version: "1.8.3", errorType: "TimeoutError",
                                   message: "upstream inventory timed out after 3s", at: spread(6, in: time))
            }
            try fixture.events(service: "checkout", version: "1.8.3", errorType: "NullPointerException",
                               message: "Cannot invoke \"Cart.total()\" because \"cart\" is null", at: spread(180, in: spikeStart))
            // One bucket after the spike began (the bucket has closed, plus the grace period).
            let report = try engine.run(on: fixture.connection, now: spikeStart.addingTimeInterval(66))
            check.expect(report.spikes >= 1)
            let insights = try fixture.insights()
            let spike = try check.require(insights.first { $0.kind == .spike && $0.service == "checkout" && $0.fingerprint != nil })
            check.expect(spike.startedAt == spikeStart)
            check.expect(spike.version == "1.8.3" && spike.previousVersion == "1.8.2")
            let rollback = try check.require(spike.recommendations.first { $0.action == "rollback" })
            check.expect(rollback.title.contains("1.8.3") && rollback.title.contains("1.8.2"), "\(rollback.title)")
            check.expect(spike.recommendations.first?.action == "rollback", "rollback should be the first recommendation: \(spike.recommendations)")

            let new = try check.require(insights.first { $0.kind == .newGroup })
            check.expect(new.version == "1.8.3" && new.previousVersion == "1.8.2")
            check.expect(new.title.contains("NullPointerException"))
            check.expect(new.recommendations.contains { $0.action == "rollback" })

            // The same minute again adds nothing; a second replica taking over rebuilds its
            // detectors from the counts and adds nothing either.
            let again = try engine.run(on: fixture.connection, now: spikeStart.addingTimeInterval(70))
            check.expect(again.insightsCreated == 0)
            let takeover = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let report2 = try takeover.run(on: fixture.connection, now: spikeStart.addingTimeInterval(75))
            check.expect(report2.rebuilt && report2.insightsCreated == 0)
            check.expect(try fixture.insights().count == insights.count)
        }
    }

    /// A rollout late in a minute: the old version still carries most of that minute's errors,
    /// yet the rise is the new version's, and the spike names it and recommends rolling it back.
    @Test func aSpikeInTheMinuteOfARolloutBlamesTheNewVersionThoughTheOldOneOutnumbersIt() async throws {
        try await onThread { check in
            var fixture = try Fixture()
            // Deployed long ago: beyond the rollback window when the spike comes.
            try fixture.deploy("checkout", "1.8.2", at: start.addingTimeInterval(-86_400))
            for minute in 0..<180 {
                try fixture.events(service: "checkout", version: "1.8.2", errorType: "TimeoutError",
                                   message: "upstream inventory timed out after 3s", at: spread(120, in: start.addingTimeInterval(Double(minute) * 60)))
            }
            let minute = start.addingTimeInterval(180 * 60)
            let rollout = minute.addingTimeInterval(55)
            try fixture.deploy("checkout", "1.8.3", at: rollout)
            // 110 old errors before the rollout, 10 of the same and 90 new ones after it.
            try fixture.events(service: "checkout", version: "1.8.2", errorType: "TimeoutError",
                               message: "upstream inventory timed out after 3s", at: (0..<110).map { minute.addingTimeInterval(Double($0) / 2) })
            try fixture.events(service: "checkout", version: "1.8.3", errorType: "TimeoutError",
                               message: "upstream inventory timed out after 3s", at: (0..<10).map { rollout.addingTimeInterval(Double($0) / 2) })
            try fixture.events(service: "checkout", version: "1.8.3", errorType: "NullPointerException",
                               message: "Cannot invoke \"Cart.total()\" because \"cart\" is null",
                               at: (0..<90).map { rollout.addingTimeInterval(Double($0) / 20) })
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            _ = try engine.run(on: fixture.connection, now: minute.addingTimeInterval(66))
            let spike = try check.require(try fixture.insights().first { $0.kind == .spike && $0.service == "checkout" })
            check.expect(spike.startedAt == minute)
            check.expect(spike.version == "1.8.3" && spike.previousVersion == "1.8.2", "\(spike.version ?? "-") \(spike.previousVersion ?? "-")")
            let rollback = try check.require(spike.recommendations.first { $0.action == "rollback" })
            check.expect(rollback.title == "Roll back checkout from 1.8.3 to 1.8.2", "\(rollback.title)")
        }
    }

    /// A service whose errors burst for 2 minutes every 4 minutes: one spike insight and one
    /// alert, and every later burst inside the detector's quiet period grows that insight and
    /// is listed as a suppressed spike.
    @Test func burstsInTheQuietPeriodGrowTheirInsightAndAreListedButNotSent() async throws {
        try await onThread { check in
            var fixture = try Fixture()
            _ = try WebhookStore.create(WebhookInput(url: "https://hooks.example.com/all", secret: nil, format: "generic",
                                                     filtersJSON: #"{"kinds": ["spike"]}"#, enabled: true), on: fixture.connection)
            for minute in 0..<180 {
                try fixture.events(service: "orders", errorType: "TimeoutError", message: "db timed out after \(minute % 7 + 1)s",
                                   at: spread(noisy(8, minute), in: start.addingTimeInterval(Double(minute) * 60)))
            }
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let burstsStart = start.addingTimeInterval(180 * 60)
            _ = try engine.run(on: fixture.connection, now: burstsStart)
            // Five bursts of two minutes at ~130/min, four minutes apart, with the usual 8/min between.
            for minute in 0..<20 {
                let time = burstsStart.addingTimeInterval(Double(minute) * 60)
                let bursting = minute % 4 < 2
                try fixture.events(service: "orders", errorType: "TimeoutError", message: "db timed out after 3s",
                                   at: spread(bursting ? 130 : noisy(8, minute), in: time))
                _ = try engine.run(on: fixture.connection, now: time.addingTimeInterval(66))
            }
            let spikes = try fixture.insights().filter { $0.kind == .spike && $0.service == "orders" }
            check.expect(spikes.count == 1, "\(spikes.map(\.title))")
            let insight = try check.require(spikes.first)
            check.expect(insight.details["bursts"] == "5", "\(insight.details)")
            check.expect((insight.eventCount ?? 0) >= 5 * 2 * 120, "\(insight.eventCount ?? 0) events")
            check.expect(insight.lastSeenAt >= burstsStart.addingTimeInterval(17 * 60), "\(insight.lastSeenAt)")
            let rows = try fixture.connection.query(
                "SELECT suppressed, count(DISTINCT bucket) FROM spikes WHERE service = 'orders' AND fingerprint IS NULL GROUP BY suppressed ORDER BY suppressed"
            ).rows.map { (try $0.bool(0), try $0.int(1)) }
            check.expect(rows.count == 2 && rows[0] == (false, 1) && rows[1].0 && rows[1].1 >= 4, "\(rows)")
            let queued = try fixture.connection.query("SELECT count(*) FROM alert_items").first?.int(0)
            check.expect(queued == 1, "one alert for all the bursts: \(queued ?? -1)")
        }
    }

    /// A new insight queues its alert in the insight's own transaction; an update queues nothing.
    @Test func newInsightsAndOnlyNewOnesQueueAlertsForMatchingSubscriptions() async throws {
        // libpq blocks: the test runs on a thread of its own, not on the shared pool.
        try await onThread { check in
            var fixture = try Fixture()
            for (filters, enabled) in [(#"{"kinds": ["new_group"], "digest_window": 0, "cooldown": 0}"#, true),
                                       (#"{"kinds": ["regression"]}"#, true), ("{}", false)] {
                _ = try WebhookStore.create(WebhookInput(url: "https://hooks.example.com/x", secret: nil, format: "generic",
                                                         filtersJSON: filters, enabled: enabled), on: fixture.connection)
            }
            try fixture.events(service: "billing", errorType: "KeyError", message: "missing key 'currency'", at: [start])
            try fixture.events(service: "billing", errorType: "ValueError", message: "amount must be positive", at: [start])
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let report = try engine.run(on: fixture.connection, now: start.addingTimeInterval(120))
            check.expect(report.insightsCreated == 2)
            let queued = try fixture.connection.query("""
                SELECT w.filters->'kinds'->>0, count(*) FROM alert_items i JOIN webhooks w ON w.id = i.webhook_id GROUP BY 1
                """).rows.map { (try $0.string(0), try $0.int(1)) }
            check.expect(queued.count == 1 && queued.first?.0 == "new_group" && queued.first?.1 == 2, "\(queued)")
            check.expect(try fixture.connection.query("SELECT count(*) FROM alert_outbox").first!.int(0) == 2)
            // The same groups again: the insights are updated, nothing more is queued.
            try fixture.events(service: "billing", errorType: "KeyError", message: "missing key 'currency'", at: [start.addingTimeInterval(60)])
            let again = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            _ = try again.run(on: fixture.connection, now: start.addingTimeInterval(180))
            check.expect(try fixture.connection.query("SELECT count(*) FROM alert_items").first!.int(0) == 2)
        }
    }

    @Test func lowVolumeNoiseNeverAlerts() async throws {
        // libpq blocks: the test runs on a thread of its own, not on the shared pool.
        try await onThread { check in
            var fixture = try Fixture()
            // About one error every three minutes, sometimes two in a minute.
            for minute in 0..<240 where minute % 3 == 0 || minute % 47 == 0 {
                let time = start.addingTimeInterval(Double(minute) * 60)
                try fixture.events(service: "quiet", errorType: "IOException", message: "read failed on socket \(minute)",
                                   at: spread(minute % 47 == 0 ? 2 : 1, in: time))
            }
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let report = try engine.run(on: fixture.connection, now: start.addingTimeInterval(240 * 60 + 10))
            check.expect(report.bucketsScored > 200)
            check.expect(try fixture.insights().filter { $0.kind == .spike || $0.kind == .levelShift }.isEmpty)
        }
    }

    /// Rare groups keep no detector (none of their minutes could alert); one that bursts gets
    /// one rebuilt from its stored counts, and it judges the burst exactly as a detector that
    /// had seen every minute.
    @Test func rareGroupsStayDormantAndOneThatBurstsIsJudgedAsIfItHadBeenWatchedAllAlong() async throws {
        try await onThread { check in
            var fixture = try Fixture()
            for minute in 0..<180 {
                try fixture.events(service: "search", errorType: "TimeoutError", message: "index shard timed out",
                                   at: spread(noisy(200, minute), in: start.addingTimeInterval(Double(minute) * 60)))
            }
            var dense = [Double](repeating: 0, count: 180)
            for rare in 0..<30 {
                // The first of them a few errors every minute, the others one every 15 minutes.
                for minute in stride(from: rare % 15, to: 180, by: rare == 0 ? 1 : 15) {
                    let count = rare == 0 ? minute % 4 + 1 : 1
                    if rare == 0 { dense[minute] = Double(count) }
                    try fixture.events(service: "search", errorType: "RareError\(rare)", message: "rare failure",
                                       at: spread(count, in: start.addingTimeInterval(Double(minute) * 60)))
                }
            }
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let first = try engine.run(on: fixture.connection, now: start.addingTimeInterval(180 * 60 + 6))
            check.expect(first.series == 32, "\(first.series)")
            check.expect(first.awakeSeries == 2, "the service and its busy group: \(first.awakeSeries)")

            let burst = start.addingTimeInterval(180 * 60)
            try fixture.events(service: "search", errorType: "RareError0", message: "rare failure", at: spread(40, in: burst))
            let second = try engine.run(on: fixture.connection, now: burst.addingTimeInterval(66))
            check.expect(second.awakeSeries == 3, "\(second.awakeSeries)")
            let reference = SpikeDetector.scores(of: dense + [40], configuration: engine.configuration.groupDetector).last!
            check.expect(reference.isAlert)
            let spike = try check.require(try fixture.insights().first { $0.kind == .spike && $0.fingerprint != nil })
            check.expect(spike.title.contains("RareError0"), "\(spike.title)")
            check.expect(spike.startedAt == burst && spike.expected == reference.expected
                            && spike.details["score"] == String(format: "%.3f", reference.score),
                         "\(spike.expected ?? -1) expected, score \(spike.details["score"] ?? "-"); watched all along: \(reference.expected), \(reference.score)")
        }
    }

    /// A replica taking over rebuilds every series from the stored counts, a series at a time;
    /// the leader it replaces scored them a minute at a time. Both judge the next burst alike.
    @Test func aTakeoverRebuildsTheSeriesALeaderScoringEveryMinuteWouldHave() async throws {
        try await onThread { check in
            var judged: [[String]] = []
            for takeover in [false, true] {
                var fixture = try Fixture()
                for minute in 0..<150 {
                    let at = start.addingTimeInterval(Double(minute) * 60)
                    try fixture.events(service: "search", errorType: "TimeoutError", message: "index shard timed out",
                                       at: spread(noisy(60, minute), in: at))
                    try fixture.events(service: "search", errorType: "KeyError", message: "missing key 'tenant'",
                                       at: spread(minute % 3 == 0 ? 6 : 1, in: at))
                    if minute % 20 == 7 {
                        try fixture.events(service: "search", errorType: "RareError", message: "rare failure", at: [at])
                    }
                }
                let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
                if !takeover {
                    // The leader scores as the minutes come, from before the first of them.
                    for minute in stride(from: 0, through: 150, by: 10) {
                        let report = try engine.run(on: fixture.connection, now: start.addingTimeInterval(Double(minute) * 60 + 6))
                        check.expect(report.rebuilt == (minute == 0))
                    }
                } else {
                    let report = try engine.run(on: fixture.connection, now: start.addingTimeInterval(150 * 60 + 6))
                    check.expect(report.rebuilt && report.awakeSeries == 3, "\(report.awakeSeries) awake")
                }
                let burst = start.addingTimeInterval(150 * 60)
                try fixture.events(service: "search", errorType: "KeyError", message: "missing key 'tenant'", at: spread(80, in: burst))
                _ = try engine.run(on: fixture.connection, now: burst.addingTimeInterval(66))
                let spikes = try fixture.connection.query(
                    "SELECT series, kind, observed, expected, score FROM spikes WHERE bucket >= $1 ORDER BY series, bucket",
                    [.timestamp(burst)]).rows.map { row in
                    try (0..<5).map { try row.string($0) }.joined(separator: " ")
                }
                check.expect(!spikes.isEmpty, "the burst is a spike")
                judged.append(spikes)
            }
            check.expect(judged[0] == judged[1], "minute by minute: \(judged[0]); taken over: \(judged[1])")
        }
    }

    @Test func aResolvedGroupReturningInALaterVersionIsARegressionButNotInAnOlderOne() async throws {
        // libpq blocks: the test runs on a thread of its own, not on the shared pool.
        try await onThread { check in
            var fixture = try Fixture()
            let t0 = start
            try fixture.events(service: "billing", version: "2.3.0", errorType: "KeyError", message: "missing key 'currency'",
                               at: [t0, t0.addingTimeInterval(60)])
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            _ = try engine.run(on: fixture.connection, now: t0.addingTimeInterval(120))
            let fingerprint = try check.require(try fixture.connection.query("SELECT fingerprint FROM groups WHERE service = 'billing'").first?.string(0))
            try AnalysisStore.setStatus(fingerprint, "resolved", at: t0.addingTimeInterval(300), on: fixture.connection)

            // An old replica still running 2.3.0 logs it again: not a regression.
            try fixture.events(service: "billing", version: "2.3.0", errorType: "KeyError", message: "missing key 'currency'",
                               at: [t0.addingTimeInterval(600)])
            _ = try engine.run(on: fixture.connection, now: t0.addingTimeInterval(660))
            check.expect(try fixture.insights().filter { $0.kind == .regression }.isEmpty)
            check.expect(try AnalysisStore.group(fingerprint, on: fixture.connection)?.status == "resolved")

            // 2.4.0 brings it back.
            try fixture.events(service: "billing", version: "2.4.0", errorType: "KeyError", message: "missing key 'currency'",
                               at: [t0.addingTimeInterval(900)])
            let report = try engine.run(on: fixture.connection, now: t0.addingTimeInterval(960))
            check.expect(report.regressions == 1)
            let regression = try check.require(try fixture.insights().first { $0.kind == .regression })
            check.expect(regression.version == "2.4.0" && regression.previousVersion == "2.3.0")
            check.expect(try AnalysisStore.group(fingerprint, on: fixture.connection)?.status == "open")
        }
    }

    /// A group first seen 7 s before the deployment record's start is new in that version, and
    /// says it came before the recorded start instead of "soon after"; with no allowance for
    /// clock skew it is only a new error.
    @Test func aGroupSeenJustBeforeTheRecordedRolloutSaysSo() async throws {
        try await onThread { check in
            for skew in [60, 0] {
                var fixture = try Fixture()
                let t0 = start
                try fixture.deploy("checkout", "1.8.2", at: t0.addingTimeInterval(-86_400))
                try fixture.deploy("checkout", "1.8.3", at: t0.addingTimeInterval(600))
                try fixture.events(service: "checkout", version: "1.8.3", errorType: "NullPointerException",
                                   message: "cart was null", at: [t0.addingTimeInterval(593), t0.addingTimeInterval(620)])
                var settings = configuration(try shippedRules())
                settings.clockSkew = .seconds(skew)
                let engine = AnalysisEngine(configuration: settings, logger: logger)
                _ = try engine.run(on: fixture.connection, now: t0.addingTimeInterval(700))
                let insight = try check.require(try fixture.insights().first { $0.kind == .newGroup })
                if skew == 60 {
                    check.expect(insight.version == "1.8.3" && insight.previousVersion == "1.8.2", "\(insight)")
                    check.expect(insight.summary.contains("7 s before checkout 1.8.3's recorded rollout"), "\(insight.summary)")
                    check.expect(insight.summary.contains("FAULTLINE_CLOCK_SKEW") && !insight.summary.contains("soon"), "\(insight.summary)")
                } else {
                    check.expect(insight.title.hasPrefix("New error in checkout") && insight.previousVersion == nil, "\(insight.title)")
                }
            }
        }
    }

    /// A new installation's first errors: one info insight per service within the run that
    /// sees them, with its recommendation and when the rest starts; nothing more for later
    /// groups while learning, and nothing of the kind for back-filled history.
    @Test func aServicesFirstErrorsGiveOneInsightWhileTheAnalysisLearns() async throws {
        try await onThread { check in
            var fixture = try Fixture()
            _ = try WebhookStore.create(WebhookInput(url: "https://hooks.example.com/all", secret: nil, format: "generic",
                                                     filtersJSON: "{}", enabled: true), on: fixture.connection)
            let now = Date()
            try fixture.events(service: "checkout", errorType: "TimeoutError", message: "upstream payments timed out after 30s",
                               at: [now.addingTimeInterval(-40)])
            try fixture.events(service: "checkout", errorType: "KeyError", message: "missing key 'currency'", at: [now.addingTimeInterval(-30)])
            try fixture.events(service: "billing", errorType: "ValueError", message: "bad amount", at: [now.addingTimeInterval(-20)])
            let engine = AnalysisEngine(configuration: AnalysisConfiguration(rules: try shippedRules()), logger: logger)
            _ = try engine.run(on: fixture.connection, now: now)
            var first = try fixture.insights().filter { $0.kind == .newGroup }
            check.expect(first.count == 2, "\(first.map(\.title))")
            check.expect(Set(first.map(\.service)) == ["checkout", "billing"] && first.allSatisfy { $0.severity == .info })
            let checkout = try check.require(first.first { $0.service == "checkout" })
            check.expect(checkout.title.hasPrefix("First errors from checkout: TimeoutError: upstream payments timed out"), "\(checkout.title)")
            check.expect(checkout.summary.contains("learning") && checkout.summary.contains("/v1/services"), "\(checkout.summary)")
            check.expect(!checkout.recommendations.isEmpty, "a timeout has its recommendation")
            let queued = try fixture.connection.query("SELECT count(*) FROM alert_outbox").first?.int(0)
            check.expect(queued == 0, "shown, never sent: \(queued ?? -1) deliveries")

            try fixture.events(service: "checkout", errorType: "IOError", message: "disk full", at: [now.addingTimeInterval(5)])
            _ = try engine.run(on: fixture.connection, now: now.addingTimeInterval(15))
            first = try fixture.insights().filter { $0.kind == .newGroup }
            check.expect(first.count == 2, "still one per service: \(first.map(\.title))")

            // History loaded before the analysis ran: the learning is long over.
            var backfilled = try Fixture()
            try backfilled.events(service: "orders", errorType: "TimeoutError", message: "db timed out", at: [now.addingTimeInterval(-3 * 3600)])
            _ = try AnalysisEngine(configuration: AnalysisConfiguration(rules: try shippedRules()), logger: logger)
                .run(on: backfilled.connection, now: now)
            check.expect(try backfilled.insights().isEmpty)
        }
    }

    /// A first start over a filled database: more new groups than one batch are all analysed
    /// in the first run, with what each needs read for all of them at once.
    @Test func aBacklogOfNewGroupsIsAnalysedInOneRun() async throws {
        try await onThread { check in
            var fixture = try Fixture()
            let now = Date()
            let engine = AnalysisEngine(configuration: AnalysisConfiguration(rules: try shippedRules()), logger: logger)
            engine.newGroupsBatch = 40
            let count = 2 * engine.newGroupsBatch + 17
            var batch = IngestBatch()
            for i in 0..<count {
                let event = ErrorEvent(
                    eventID: StableHash.uuid("backlog/\(i)"), timestamp: now.addingTimeInterval(-1800 + Double(i)), service: "orders",
                    environment: i % 2 == 0 ? "production" : "staging", version: nil, errorType: "Backlog\(i)Error",
                    message: "job \(i) failed")
                let fingerprint = Fingerprint(event)
                batch.events.append(EnrichedEvent(
                    event: event, fingerprint: fingerprint.value, template: fingerprint.template, frames: fingerprint.frames,
                    deployment: nil, origin: MessageOrigin(topic: "errors", partition: 0, offset: Int64(i))))
            }
            try PartitionManager.ensure(days: Set(batch.events.map { PartitionManager.day(of: $0.event.timestamp) }), on: fixture.connection)
            _ = try EventStore.write(batch, on: fixture.connection)
            fixture.sequence = count

            let report = try engine.run(on: fixture.connection, now: now)
            check.expect(report.groupsAnalyzed == count, "\(report.groupsAnalyzed) of \(count)")
            let waiting = try fixture.connection.query("SELECT count(*) FROM groups WHERE analyzed_at IS NULL").first?.int(0)
            check.expect(waiting == 0, "\(waiting ?? -1) groups still waiting")
            // Still learning: one insight for the service, from its first group, in its environment.
            let insights = try fixture.insights()
            check.expect(insights.count == 1 && insights.first?.environment == "production", "\(insights.map(\.title))")
            check.expect(insights.first?.title.contains("Backlog0Error") == true, "\(insights.map(\.title))")
        }
    }

    @Test func timeoutsTowardsOneDependencyFromThreeServicesFormOneCrossServiceCluster() async throws {
        // libpq blocks: the test runs on a thread of its own, not on the shared pool.
        try await onThread { check in
            var fixture = try Fixture()
            let t0 = start.addingTimeInterval(3 * 3600)
            let now = t0.addingTimeInterval(600)
            // checkout happened to roll out just before: the timeouts are still not its release's fault.
            try fixture.deploy("checkout", "4.1.0", at: start)
            try fixture.deploy("checkout", "4.2.0", at: t0.addingTimeInterval(-60))
            for (index, service) in ["checkout", "orders", "payments"].enumerated() {
                try fixture.events(service: service, errorType: "TimeoutException",
                                   message: "timeout after \(index + 3)000 ms calling payments-db:5432",
                                   at: spread(20, in: t0.addingTimeInterval(Double(index) * 60)))
                try fixture.events(service: service, errorType: "ConnectException",
                                   message: "connection refused: payments-db:5432", at: spread(5, in: t0.addingTimeInterval(120)))
            }
            try fixture.events(service: "search", errorType: "NullPointerException", message: "index shard is null for query",
                               at: spread(10, in: t0))
            try fixture.events(service: "search", errorType: "IllegalArgumentException", message: "page size must be positive",
                               at: spread(10, in: t0))
            try fixture.events(service: "frontend", errorType: "TypeError", message: "undefined is not a function in render",
                               at: spread(10, in: t0))
            try fixture.events(service: "frontend", errorType: "OutOfMemoryError", message: "Java heap space",
                               at: spread(10, in: t0))
            // Background noise shared by two services for hours: a pattern, but no news.
            for service in ["search", "frontend"] {
                try fixture.events(service: service, errorType: "CacheMissWarning", message: "cache miss for key user:42",
                                   at: [t0.addingTimeInterval(-7200), t0.addingTimeInterval(30)])
            }
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let report = try engine.run(on: fixture.connection, now: now)
            check.expect(report.clustersTrained == 1)
            let clusters = try AnalysisStore.currentClusters(on: fixture.connection)
            let timeouts = try check.require(clusters.first { $0.services.count == 3 })
            check.expect(timeouts.services == ["checkout", "orders", "payments"])
            check.expect(timeouts.terms.contains { $0.contains("timeout") || $0.contains("payments") })
            // Every timeout group is in it, none of the others.
            let members = try fixture.connection.query("SELECT service, error_type FROM groups WHERE cluster_id = $1 ORDER BY 1, 2",
                                                       [.int(timeouts.id!)]).rows.map { "\(try $0.string(0))/\(try $0.string(1))" }
            check.expect(members.allSatisfy { $0.hasSuffix("TimeoutException") || $0.hasSuffix("ConnectException") }, "\(members)")
            let blamed = try fixture.insights().filter { $0.kind == .newGroup && $0.version == "4.2.0" }
            check.expect(blamed.isEmpty, "a dependency outage is not new in checkout 4.2.0: \(blamed.map(\.title))")
            let clusterInsights = try fixture.insights().filter { $0.kind == .cluster }
            check.expect(!clusterInsights.contains { $0.details["services"]?.contains("search") == true }, "\(clusterInsights.map(\.title))")
            let insight = try check.require(clusterInsights.first { $0.clusterID == timeouts.id })
            check.expect(insight.title.hasPrefix("In 3 services: Timeout"), "the busiest member's template names the pattern: \(insight.title)")
            check.expect(insight.title.contains("checkout, orders, payments"), "\(insight.title)")
            check.expect(insight.recommendations.contains { $0.action == "circuit_breaker" || $0.action == "check_dependency" },
                    "\(insight.recommendations)")
            // A new group is put in its nearest cluster at once.
            try fixture.events(service: "shipping", errorType: "TimeoutException", message: "timeout after 9000 ms calling payments-db:5432",
                               at: [now.addingTimeInterval(5)])
            _ = try engine.run(on: fixture.connection, now: now.addingTimeInterval(20))
            check.expect(try fixture.connection.query("SELECT cluster_id FROM groups WHERE service = 'shipping'").first?.int(0) == Int(timeouts.id!))
        }
    }

    @Test func aSlowlyRisingErrorRateIsForecastToBreachBeforeItDoes() async throws {
        // libpq blocks: the test runs on a thread of its own, not on the shared pool.
        try await onThread { check in
            var fixture = try Fixture()
            // A memory leak: GC warnings rise from 2/min by about 0.1/min each minute.
            for minute in 0..<180 {
                let mean = 2 + 0.1 * Double(minute)
                try fixture.events(service: "recommender", errorType: "GCOverheadWarning", message: "GC overhead: heap 91% used after full GC",
                                   at: spread(noisy(mean, minute), in: start.addingTimeInterval(Double(minute) * 60)))
            }
            var config = configuration(try shippedRules())
            config.forecastThreshold = 25
            let engine = AnalysisEngine(configuration: config, logger: logger)
            let now = start.addingTimeInterval(180 * 60 + 10)
            let report = try engine.run(on: fixture.connection, now: now)
            check.expect(report.predictions >= 1)
            let insight = try check.require(try fixture.insights().first { $0.kind == .predictedBreach })
            check.expect(insight.service == "recommender")
            let breachAt = try check.require(insight.details["breach_at"].flatMap { RFC3339.parse($0) })
            // Now about 20/min, rising 0.1/min: 25/min in roughly 50 minutes (within the hour looked ahead).
            check.expect(breachAt > now.addingTimeInterval(25 * 60) && breachAt < now.addingTimeInterval(75 * 60), "\(breachAt)")
            check.expect(insight.recommendations.contains { $0.action == "raise_memory_limit" }, "\(insight.recommendations)")
        }
    }

    @Test func exactlyOneReplicaRunsTheAnalysisAndAnotherTakesOverWhenItDies() async throws {
        // libpq blocks: the test runs on a thread of its own, not on the shared pool.
        try await onThread { check in
            let fixture = try Fixture()
            let rules = try shippedRules()
            let postgres = PostgresConfiguration(url: fixture.url)
            let first = AnalysisService.Box(engine: AnalysisEngine(configuration: configuration(rules), logger: logger))
            let second = AnalysisService.Box(engine: AnalysisEngine(configuration: configuration(rules), logger: logger))
            check.expect(try AnalysisService.tick(first, postgres: postgres, logger: logger) != nil)
            check.expect(try AnalysisService.tick(second, postgres: postgres, logger: logger) == nil)
            check.expect(try AnalysisService.tick(first, postgres: postgres, logger: logger) != nil, "the leader keeps leading")
            check.expect(try AnalysisService.tick(second, postgres: postgres, logger: logger) == nil)
            // The leader's session ends (the process died): the other takes over at its next tick.
            // The server notices the closed session a moment later.
            first.connection = nil
            var tookOver = false
            for _ in 0..<50 where !tookOver {
                tookOver = try AnalysisService.tick(second, postgres: postgres, logger: logger) != nil
                if !tookOver { Thread.sleep(forTimeInterval: 0.1) }
            }
            check.expect(tookOver)
            check.expect(try AnalysisService.tick(first, postgres: postgres, logger: logger) == nil)
        }
    }
}
