import Alerts
import Analysis
import Domain
import Foundation
import Logging
import Postgres
import Storage

/// What one run of the job did.
public struct CycleReport: Sendable, Equatable {
    public var groupsAnalyzed = 0
    public var bucketsScored = 0
    public var spikes = 0
    public var insightsCreated = 0
    public var insightsUpdated = 0
    public var clustersTrained = 0
    public var predictions = 0
    public var regressions = 0
    public var rebuilt = false
    /// Services whose series were scored again because counts of scored minutes came late.
    public var servicesRescored = 0
    /// The first minute not scored yet: event time is not complete there (the watermark, less
    /// the grace period).
    public var scoredUntil: Date?
    /// The series the engine knows after the run, and those of them with a detector (awake).
    public var series = 0
    public var awakeSeries = 0
    /// Per-minute count rows summed into hours (``CountRetention``).
    public var minutesRolledUp = 0
    /// Seconds each part of the run took: new groups, regressions, scoring, forecasts, clustering, retention.
    public var seconds: [String: Double] = [:]

    public init() {}
}

/// The analysis itself: feeds the pure algorithms from PostgreSQL and writes their findings
/// back. Every run is incremental — new groups, buckets closed since the last run, the
/// forecasts of the busiest series — and its writes are idempotent, so a run cut short is
/// simply done again.
///
/// Not thread-safe: one engine belongs to the analysis leader's thread. Its memory (the
/// detectors) is a cache of what the database holds; when another replica has run in the
/// meantime, it is rebuilt from the per-minute counts.
public final class AnalysisEngine {
    public let configuration: AnalysisConfiguration
    private let logger: Logger

    /// A series is awake, with a detector, while a bucket of its history reached the detector's
    /// minimum count; otherwise it is dormant: no bucket of it could alert, and it keeps only its
    /// non-zero counts, from which its detector is rebuilt the moment one does. Most groups are
    /// rare, so the memory and the work of a run grow with the series that are busy, not with
    /// all the series there are.
    struct Series {
        /// `service:<name>` or `group:<fingerprint>`, as spikes and insights record it.
        var key: String
        var service: String
        var fingerprint: String?
        /// The count from which a bucket could alert: the detector's minimum count.
        var loudAt: Double
        var detector: SpikeDetector?
        /// The first bucket of the series: its first non-zero count within the history.
        var since: Int
        var lastActive: Int
        /// The last bucket that reached the detector's minimum count.
        var lastLoud = Int.min / 2
        /// The non-zero counts of the history, oldest first.
        var counts = SparseCounts()
        /// The alert being followed: its insight grows while the series stays high.
        var episode: Episode?
        /// The insight of the series' last alert, as last written, and the bucket it alerted in:
        /// a burst in the detector's quiet period after it grows it.
        var lastAlert: Insight?
        var lastAlertBucket = Int.min / 2
        /// The count of the bucket being scored, while it is.
        var pending = 0.0
        var alive = true

        static let vacant = Series(key: "", service: "", loudAt: 0, since: 0, lastActive: 0, alive: false)
    }

    typealias Episode = SpikeEpisodes.Episode

    /// The series, by slot: the scoring loop reads and updates them in place by index, without
    /// hashing a key or copying a series.
    private var slots: [Series] = []
    private var slotOfService: [String: Int] = [:]
    private var slotOfGroup: [String: Int] = [:]
    private var freeSlots: [Int] = []
    /// The slots of the series with a detector.
    private var awake: Set<Int> = []
    private var lastSweep = Int.min / 2
    /// The first bucket not scored yet, as this engine knows it.
    private var scoredUntil: Int?
    private let deploymentCache: DeploymentCache
    /// The deployments as read at the start of the run.
    private var deployments = DeploymentIndex()
    private var issueOf: [String: String] = [:]
    /// The current clusters: new groups are put in the nearest one at once.
    private var clusterModel: (result: PatternClusterer.Result, ids: [Int64])?
    private var lastClustering: Date?
    private var newGroupsSinceClustering = 0
    private var lastForecast: Date?
    /// Groups first seen after this are new against a baseline.
    private var newAfter = Date.distantFuture

    /// - Parameter deployments: the process's deployments, shared with ingest when it runs there.
    public init(configuration: AnalysisConfiguration, logger: Logger, deployments: DeploymentCache = DeploymentCache()) {
        self.configuration = configuration
        self.logger = logger
        self.deploymentCache = deployments
    }

    func bucket(of date: Date) -> Int { Int((date.timeIntervalSince1970 / Double(configuration.bucketSeconds)).rounded(.down)) }
    func date(of bucket: Int) -> Date { Date(timeIntervalSince1970: Double(bucket * configuration.bucketSeconds)) }

    /// One run at `now`.
    public func run(on connection: PostgresConnection, now: Date = Date()) throws -> CycleReport {
        var report = CycleReport()
        try deploymentCache.refresh(on: connection)
        deployments = deploymentCache.index
        // New errors are news only once there is a baseline to be new against.
        newAfter = try AnalysisStore.earliestFirstSeen(on: connection)
            .map { $0.addingTimeInterval(seconds(configuration.newGroupWarmup)) } ?? .distantFuture
        // Event time is complete up to here, less the grace period: a group first seen later
        // may still have earlier events to come, and a bucket later may still fill.
        let complete = try completeUntil(connection, now: now).map { $0.addingTimeInterval(-seconds(configuration.grace)) }
        let clock = ContinuousClock()
        func timed(_ part: String, _ body: () throws -> Void) rethrows {
            let start = clock.now
            try body()
            let elapsed: Duration = clock.now - start
            report.seconds[part, default: 0] += seconds(elapsed)
        }
        try timed("new_groups") { try analyzeNewGroups(connection, now: now, completeUntil: complete, report: &report) }
        issueOf = try AnalysisStore.issueMap(on: connection)
        try timed("regressions") { try findRegressions(connection, now: now, report: &report) }
        try timed("scoring") { try scoreBuckets(connection, now: now, completeUntil: complete, report: &report) }
        if lastForecast.map({ now.timeIntervalSince($0) >= seconds(configuration.forecastEvery) }) ?? true {
            try timed("forecasts") { try forecast(connection, now: now, report: &report) }
            lastForecast = now
        }
        let clusteringDue = lastClustering.map {
            now.timeIntervalSince($0) >= seconds(configuration.clusterEvery)
                || (newGroupsSinceClustering >= configuration.clusterNewGroups && now.timeIntervalSince($0) >= 60)
        } ?? true
        if clusteringDue {
            try timed("clustering") { try cluster(connection, now: now, report: &report) }
            lastClustering = now
            newGroupsSinceClustering = 0
        }
        // Per-minute counts the history no longer needs become hourly, ten minutes of them per run.
        try timed("retention") {
            let pass = try CountRetention.apply(retentionDays: configuration.retentionDays, now: now, minutes: 10, on: connection)
            report.minutesRolledUp = pass.minutesRolledUp
        }
        return report
    }

    // MARK: Templates, new groups, new in a version

    /// New groups read at a time (smaller in tests).
    var newGroupsBatch = 5000

    private func analyzeNewGroups(_ connection: PostgresConnection, now: Date, completeUntil: Date?, report: inout CycleReport) throws {
        // A group is judged once its first minute is complete: until then an earlier event of
        // it may still arrive (a lagging partition), and "new" would be a guess.
        guard let completeUntil else { return }
        // A backlog (a first start over a filled database, a burst of new errors) is worked
        // through in batches, for up to 10 s a run, so the rest of the run is not held up.
        let started = ContinuousClock.now
        while try analyzeNewGroupBatch(connection, now: now, completeUntil: completeUntil, report: &report),
            ContinuousClock.now - started < .seconds(10)
        {}
    }

    /// Analyses the next batch of new groups; whether more may be waiting.
    private func analyzeNewGroupBatch(_ connection: PostgresConnection, now: Date, completeUntil: Date, report: inout CycleReport) throws -> Bool {
        let fetched = try AnalysisStore.unanalyzedGroups(limit: newGroupsBatch, on: connection)
        let groups = Array(fetched.prefix { $0.firstSeen < completeUntil })
        guard !groups.isEmpty else { return false }
        introducedServices = Set(try AnalysisStore.insightKeys(prefix: Self.firstErrorsKey, on: connection)
            .map { String($0.dropFirst(Self.firstErrorsKey.count)) })
        // What was learned is restored from the table (the truth every replica shares), so a
        // new leader continues where the last one stopped.
        let stored = try AnalysisStore.templates(on: connection)
        var miner = TemplateMiner(restoring: stored.map { TemplateMiner.Template(id: $0.id, tokens: $0.tokens, count: $0.groupCount) })
        var assignments: [(fingerprint: String, templateID: Int)] = []
        for group in groups {
            let id = miner.add([group.errorType ?? "", group.template].joined(separator: " "))
            assignments.append((group.fingerprint, id))
        }
        let resolved = assignments.map { ($0.fingerprint, miner.resolve($0.templateID)) }
        let templates = miner.templates.map { TemplateRecord(id: $0.id, template: $0.text, tokens: $0.tokens, groupCount: $0.count) }
        try connection.transaction { connection in
            try AnalysisStore.saveTemplates(templates, on: connection)
            try AnalysisStore.markAnalyzed(resolved, on: connection)
        }
        report.groupsAnalyzed += groups.count
        newGroupsSinceClustering += groups.count

        if let model = clusterModel {
            let members = groups.compactMap { group in
                model.result.classify(document(for: group)).map { (group.fingerprint, model.ids[$0]) }
            }
            try AnalysisStore.assignClusters(members, on: connection)
        }

        let window = seconds(configuration.newInVersionWindow)
        let skew = seconds(configuration.clockSkew)
        let templateOf = Dictionary(resolved, uniquingKeysWith: { first, _ in first })
        // What each group needs is read in one statement per kind for all of them, not one per
        // group: a backlog of thousands of new groups costs a few statements.
        let environments = try AnalysisStore.firstEnvironments(of: groups.map(\.fingerprint), on: connection)
        let sharedChecks = groups.compactMap { group in
            templateOf[group.fingerprint].map {
                AnalysisStore.TemplateCheck(fingerprint: group.fingerprint, templateID: $0, service: group.service,
                                            since: group.firstSeen.addingTimeInterval(-window))
            }
        }
        let newElsewhere = try AnalysisStore.templatesNewElsewhere(sharedChecks, on: connection)

        let context = NewGroups.Context(
            deployments: deployments, window: window, clockSkew: skew, newAfter: newAfter, now: now,
            introduced: introducedServices ?? [])
        let findings = NewGroups.decide(groups, environments: environments, newElsewhere: newElsewhere, context: context)
        let messages = try AnalysisStore.sampleMessages(of: findings.map(\.group.fingerprint), on: connection)
        for finding in findings {
            let (group, environment) = (finding.group, finding.environment)
            let message = messages[group.fingerprint] ?? nil
            switch finding.kind {
            case .newInVersion(let version, let previousVersion, let deployedAt):
                let found = (version: version, previousVersion: previousVersion)
                let evidence = Evidence(
                    kind: .newGroup, service: group.service, environment: environment, errorType: group.errorType,
                    template: group.template, message: message,
                    version: found.version, previousVersion: found.previousVersion,
                    secondsSinceDeploy: deployedAt.map { Int(group.firstSeen.timeIntervalSince($0)) },
                    observed: Double(group.eventCount), expected: 0, count: group.eventCount)
                let insight = Insight(
                    dedupeKey: "new_group:\(group.fingerprint)", kind: .newGroup, severity: .warning, service: group.service,
                    environment: environment, fingerprint: group.fingerprint, version: found.version,
                    previousVersion: found.previousVersion,
                    title: "New in \(group.service) \(found.version): \(label(group))",
                    summary: "\(label(group)) was first seen \(sinceRollout(evidence.secondsSinceDeploy, service: group.service, version: found.version))\(found.previousVersion.map { " (previously \($0))" } ?? ""); never seen before.",
                    eventCount: group.eventCount, startedAt: group.firstSeen, lastSeenAt: group.lastSeen,
                    recommendations: configuration.rules.recommend(for: evidence))
                try record(insight, connection, report: &report)
            case .newGroup:
                let evidence = Evidence(
                    kind: .newGroup, service: group.service, environment: environment, errorType: group.errorType,
                    template: group.template, message: message,
                    version: group.firstVersion, observed: Double(group.eventCount), expected: 0,
                    count: group.eventCount)
                let insight = Insight(
                    dedupeKey: "new_group:\(group.fingerprint)", kind: .newGroup, severity: .info, service: group.service,
                    environment: environment, fingerprint: group.fingerprint, version: group.firstVersion,
                    title: "New error in \(group.service): \(label(group))",
                    summary: "\(label(group)) was first seen at \(RFC3339.format(group.firstSeen)).",
                    eventCount: group.eventCount, startedAt: group.firstSeen, lastSeenAt: group.lastSeen,
                    recommendations: configuration.rules.recommend(for: evidence))
                try record(insight, connection, report: &report)
            case .firstErrors:
                try recordFirstErrors(group, environment: environment, message: message, connection, report: &report)
            }
        }
        return groups.count == newGroupsBatch
    }

    /// The services that already have their "first errors" insight.
    private var introducedServices: Set<String>?

    private func introduced(_ service: String) -> Bool {
        introducedServices?.contains(service) ?? false
    }

    /// One insight per service while the analysis learns: its first error group, and from when
    /// new errors and spikes are reported.
    private func recordFirstErrors(_ group: GroupRecord, environment: String, message: String?, _ connection: PostgresConnection,
                                   report: inout CycleReport) throws {
        let spikesFrom = group.firstSeen.addingTimeInterval(Double(configuration.serviceDetector.warmup * configuration.bucketSeconds))
        let evidence = Evidence(
            kind: .newGroup, service: group.service, environment: environment, errorType: group.errorType,
            template: group.template, message: message,
            version: group.firstVersion, observed: Double(group.eventCount), expected: 0, count: group.eventCount)
        let insight = Insight(
            dedupeKey: Self.firstErrorsKey + group.service, kind: .newGroup, severity: .info, service: group.service,
            environment: environment, fingerprint: group.fingerprint, version: group.firstVersion,
            title: "First errors from \(group.service): \(label(group))",
            summary: "Faultline is learning \(group.service): its first error group, first seen at \(RFC3339.format(group.firstSeen)). "
                + "Other new groups are reported from \(RFC3339.format(newAfter)) (until then every group is new; errors new in a "
                + "release are reported at once), spikes from about \(RFC3339.format(spikesFrom)); GET /v1/services shows when.",
            eventCount: group.eventCount, startedAt: group.firstSeen, lastSeenAt: group.lastSeen,
            recommendations: configuration.rules.recommend(for: evidence))
        // Shown in the API and on the dashboard, never sent: news of the installation, not of
        // the service.
        try record(insight, alerting: false, connection, report: &report)
        introducedServices?.insert(group.service)
    }

    static let firstErrorsKey = "first_errors:"

    // MARK: Regressions

    private func findRegressions(_ connection: PostgresConnection, now: Date, report: inout CycleReport) throws {
        let findings = Regressions.decide(try Regressions.load(on: connection), deployments: deployments)
        let messages = try AnalysisStore.sampleMessages(of: findings.map(\.group.fingerprint), on: connection)
        for finding in findings {
            try AnalysisStore.setStatus(finding.group.fingerprint, "open", at: now, on: connection)
            let insight = Regressions.insight(
                finding, message: messages[finding.group.fingerprint] ?? nil, rules: configuration.rules, label: label(finding.group))
            try record(insight, connection, report: &report)
            report.regressions += 1
        }
    }

    // MARK: Spikes and level shifts

    /// Where event time is complete: the lowest watermark of the partitions ingest reads
    /// (``EventTimeStore``), never later than `now`; the clock itself when no ingest publishes
    /// one (the counts are all there is); `nil` while a lagging partition has told nothing yet.
    private func completeUntil(_ connection: PostgresConnection, now: Date) throws -> Date? {
        let watermark = try EventTimeStore.watermark(on: connection)
        guard watermark.partitions > 0 else { return now }
        guard watermark.unknown == 0, let until = watermark.completeUntil else { return nil }
        return min(now, until)
    }

    /// - Parameter completeUntil: event time is complete up to here, grace period deducted;
    ///   `nil` while a lagging partition has told nothing yet.
    private func scoreBuckets(_ connection: PostgresConnection, now: Date, completeUntil complete: Date?, report: inout CycleReport) throws {
        let persisted = try AnalysisStore.state("scored_until", on: connection).flatMap { Int($0) }
        // The first bucket whose events may not all be in. It never moves back.
        var open = complete.map { bucket(of: $0) } ?? persisted ?? bucket(of: now) - configuration.historyBuckets
        open = max(open, persisted ?? open, scoredUntil ?? open)
        // Every bucket scored now for the first time may raise insights, unless it is old news
        // (ingest lagged far behind): then it only teaches the detectors.
        let alertFrom = max(open - configuration.alertMaxAgeBuckets, min(persisted ?? open, open) - configuration.alertLookbackBuckets)
        // From here on, counts stored for buckets before `open` are late: they are noted for
        // the re-scoring below instead of falling between two runs.
        try EventTimeStore.publishScored(until: date(of: open), on: connection)
        if persisted == nil || scoredUntil != persisted {
            // First run, a restart, or another replica ran in between: rebuild from the counts.
            removeAllSeries()
            let until = min(persisted ?? open, open)
            let from = until - configuration.historyBuckets
            let quiet = min(max(alertFrom, from), until)  // no bucket before it may alert
            try rebuild(from: from, to: quiet, connection, report: &report)
            try score(from: quiet, to: until, alertFrom: alertFrom, connection, report: &report)
            scoredUntil = until
            report.rebuilt = true
        }
        // Late counts first: the buckets scored before are scored again with them, so that the
        // new buckets are compared with what is now known of the past. (The other way round, a
        // back-fill still arriving when a new minute is scored made a normal minute a spike
        // against the part of the history stored so far.)
        try rescoreLate(open: scoredUntil ?? open, connection, report: &report)
        if let from = scoredUntil, from < open {
            try score(from: max(from, open - configuration.historyBuckets), to: open, alertFrom: alertFrom, connection, report: &report)
            scoredUntil = open
        }
        try AnalysisStore.setState("scored_until", json: String(open), on: connection)
        report.scoredUntil = date(of: open)
        try peek(at: open, connection, report: &report)
        report.series = slotOfService.count + slotOfGroup.count
        report.awakeSeries = awake.count
    }

    /// Late data: counts stored for buckets already scored. Each service they belong to has its
    /// series rebuilt from the stored counts, which now hold them, over the detectors' history
    /// (a day and two hours); buckets from the first late one on may raise insights (the same
    /// minute gives the same insight, updated rather than repeated) unless older than
    /// `alertMaxAgeBuckets`. Late counts older than the history change nothing scored.
    private func rescoreLate(open: Int, _ connection: PostgresConnection, report: inout CycleReport) throws {
        let late = try EventTimeStore.lateCounts(on: connection)
        guard !late.isEmpty else { return }
        var earliest: [String: Int] = [:]
        for count in late { earliest[count.service] = min(earliest[count.service] ?? .max, bucket(of: count.bucket)) }
        for (service, first) in earliest.sorted(by: { $0.key < $1.key }) {
            for i in slots.indices where slots[i].alive && slots[i].service == service { removeSeries(i) }
            let from = open - configuration.historyBuckets
            guard first < open else { continue }
            let alertFrom = max(first, open - configuration.alertMaxAgeBuckets)
            let quiet = min(max(alertFrom, from), open)
            try rebuild(from: from, to: quiet, service: service, connection, report: &report)
            try score(from: quiet, to: open, alertFrom: alertFrom, service: service, connection, report: &report)
            report.servicesRescored += 1
            logger.info("late counts: series scored again", metadata: [
                "service": "\(service)", "from": "\(RFC3339.format(date(of: max(first, from))))",
            ])
        }
        try EventTimeStore.forget(late, on: connection)
    }

    private func seriesKey(service: String) -> String { "service:\(service)" }
    private func seriesKey(group: String) -> String { "group:\(group)" }

    /// One bucket's counts, per service and per group (its issue).
    struct BucketCounts {
        var services: [String: Double] = [:]
        var groups: [String: (service: String, value: Double)] = [:]
    }

    /// Per-bucket counts of every series in `[from, to)`.
    private func loadCounts(from: Int, to: Int, service: String? = nil, _ connection: PostgresConnection) throws -> [Int: BucketCounts] {
        var byBucket: [Int: BucketCounts] = [:]
        for row in try AnalysisStore.counts(from: date(of: from), to: date(of: to), service: service, on: connection) {
            let b = bucket(of: row.bucket)
            let issue = issueOf[row.fingerprint] ?? row.fingerprint
            byBucket[b, default: BucketCounts()].services[row.service, default: 0] += Double(row.count)
            byBucket[b, default: BucketCounts()].groups[issue, default: (row.service, 0)].value += Double(row.count)
        }
        return byBucket
    }

    // MARK: Series

    private func slot(service: String, fingerprint: String?) -> Int? {
        if let fingerprint { return slotOfGroup[fingerprint] }
        return slotOfService[service]
    }

    private func addSeries(service: String, fingerprint: String?, bucket b: Int) -> Int {
        let series = Series(
            key: fingerprint.map { seriesKey(group: $0) } ?? seriesKey(service: service), service: service, fingerprint: fingerprint,
            loudAt: max(detectorConfiguration(fingerprint).minimumCount, .leastNonzeroMagnitude), since: b, lastActive: b)
        let i: Int
        if let free = freeSlots.popLast() {
            slots[free] = series
            i = free
        } else {
            slots.append(series)
            i = slots.count - 1
        }
        if let fingerprint { slotOfGroup[fingerprint] = i } else { slotOfService[service] = i }
        return i
    }

    private func removeSeries(_ i: Int) {
        if let fingerprint = slots[i].fingerprint { slotOfGroup[fingerprint] = nil } else { slotOfService[slots[i].service] = nil }
        awake.remove(i)
        slots[i] = .vacant
        freeSlots.append(i)
    }

    private func removeAllSeries() {
        slots = []
        slotOfService = [:]
        slotOfGroup = [:]
        freeSlots = []
        awake = []
    }

    /// A bucket's count arrives for a series (made if new): it is kept, and wakes the series
    /// when it could alert.
    private func arrive(service: String, fingerprint: String?, value: Double, bucket b: Int) -> Int {
        var known = slot(service: service, fingerprint: fingerprint)
        if let i = known, b - slots[i].lastActive > configuration.historyBuckets {
            removeSeries(i)  // back after longer than the history: a new series
            known = nil
        }
        let i = known ?? addSeries(service: service, fingerprint: fingerprint, bucket: b)
        slots[i].lastActive = b
        slots[i].counts.append(b, value, keepingFrom: b - configuration.historyBuckets)
        slots[i].pending = value
        if slots[i].detector == nil, value >= slots[i].loudAt { wake(i, before: b) }
        return i
    }

    /// Rebuilds the series — every one, or one service's — from the stored counts of
    /// `[from, to)`, where no bucket may alert any more: the state scoring them bucket by
    /// bucket would leave, reached a series at a time from one row per group, with the detectors
    /// stepped on every core. A series is made at its first count and woken if a count of it
    /// reaches its minimum; its detector then has stepped through every bucket from its first
    /// count, as `wake` would have it.
    private func rebuild(from: Int, to: Int, service: String? = nil, _ connection: PostgresConnection, report: inout CycleReport) throws {
        guard from < to else { return }
        var services: [String: [Int: Double]] = [:]
        var groups: [String: (service: String, counts: SparseCounts)] = [:]
        try AnalysisStore.countHistories(from: date(of: from), to: date(of: to), bucketSeconds: configuration.bucketSeconds,
                                         service: service, on: connection) { history in
            let counts = SparseCounts(summing: zip(history.offsets, history.counts).map { (from + $0.0, Double($0.1)) })
            var sums = services[history.service, default: [:]]
            services[history.service] = nil  // unshared while it grows
            for pair in counts.pairs { sums[pair.bucket, default: 0] += pair.value }
            services[history.service] = sums
            let issue = issueOf[history.fingerprint] ?? history.fingerprint
            if let known = groups[issue] {
                groups[issue] = (known.service, known.counts.adding(counts))
            } else {
                groups[issue] = (history.service, counts)
            }
        }
        var loud: [(slot: Int, counts: SparseCounts, since: Int, configuration: SpikeDetector.Configuration)] = []
        func make(service: String, fingerprint: String?, counts: SparseCounts) {
            // (An issue whose series another service holds keeps it.)
            guard let span = counts.span, slot(service: service, fingerprint: fingerprint) == nil else { return }
            let i = addSeries(service: service, fingerprint: fingerprint, bucket: span.first)
            slots[i].counts = counts
            slots[i].lastActive = span.last
            if let last = counts.pairs.last(where: { $0.value >= slots[i].loudAt }) {
                slots[i].lastLoud = last.bucket
                loud.append((i, counts, span.first, detectorConfiguration(fingerprint)))
            }
        }
        for (name, sums) in services { make(service: name, fingerprint: nil, counts: SparseCounts(summing: sums.map { ($0.key, $0.value) })) }
        services = [:]
        for (issue, group) in groups { make(service: group.service, fingerprint: issue, counts: group.counts) }
        groups = [:]
        // Stepping the detectors is most of a takeover's work, and each series is its own.
        let chunks = stride(from: 0, to: loud.count, by: 64).map { $0..<min($0 + 64, loud.count) }
        let jobs = loud
        let detectors = parallelMap(chunks.count) { chunk in
            jobs[chunks[chunk]].map { job -> SpikeDetector in
                var detector = SpikeDetector(configuration: job.configuration)
                job.counts.forEachBucket(from: job.since, to: to) { _ = detector.update($0) }
                return detector
            }
        }
        for (job, detector) in zip(jobs, detectors.joined()) {
            slots[job.slot].detector = detector
            awake.insert(job.slot)
        }
        report.bucketsScored += to - from
    }

    /// Buckets of counts read at a time while scoring.
    static let countsChunkBuckets = 60

    /// Scores `[from, to)` for every series, or for one service's.
    private func score(from: Int, to: Int, alertFrom: Int, service: String? = nil, _ connection: PostgresConnection,
                       report: inout CycleReport) throws {
        guard from < to else { return }
        var spikes: [SpikeRecord] = []
        // The counts are read an hour at a time: a takeover replays a day of every series, and
        // holding all of its rows at once took most of the leader's memory.
        var byBucket: [Int: BucketCounts] = [:]
        var loadedUntil = from
        for b in from..<to {
            if b >= loadedUntil {
                loadedUntil = min(b + Self.countsChunkBuckets, to)
                byBucket = [:]  // the previous hour's rows go before the next hour's come
                byBucket = try loadCounts(from: b, to: loadedUntil, service: service, connection)
            }
            let counts = byBucket[b] ?? BucketCounts()
            var touched: [Int] = []
            for (name, value) in counts.services where service == nil || name == service {
                touched.append(arrive(service: name, fingerprint: nil, value: value, bucket: b))
            }
            for (issue, entry) in counts.groups where service == nil || entry.service == service {
                touched.append(arrive(service: entry.service, fingerprint: issue, value: entry.value, bucket: b))
            }
            var alerting: [(slot: Int, point: SpikeDetector.Point)] = []
            for i in Array(awake) where service == nil || slots[i].service == service {
                let value = slots[i].pending
                if value >= slots[i].loudAt { slots[i].lastLoud = b }
                if b - slots[i].lastLoud > configuration.historyBuckets {
                    sleep(i)  // no bucket of the history could alert: the counts are enough
                    continue
                }
                let point = slots[i].detector!.update(value)
                if point.isAlert && (point.isSpike || point.isLevelShift) { alerting.append((i, point)) }
                if b >= alertFrom, slots[i].episode != nil { try follow(i, bucket: b, point: point, connection, report: &report) }
                if b >= alertFrom, !point.isAlert, slots[i].episode == nil,
                    let spike = try recur(i, bucket: b, point: point, connection, report: &report)
                {
                    spikes.append(spike)
                }
            }
            for i in touched { slots[i].pending = 0 }
            report.bucketsScored += 1
            guard b >= alertFrom else { continue }
            let verdicts = SpikeNews.judge(alerting.map {
                SpikeNews.Alert(key: slots[$0.slot].key, service: slots[$0.slot].service, fingerprint: slots[$0.slot].fingerprint, point: $0.point)
            })
            for verdict in verdicts {
                let (i, point, kind) = (alerting[verdict.alert].slot, alerting[verdict.alert].point, verdict.kind)
                let state = slots[i]
                let key = state.key
                var spike = SpikeRecord(
                    series: key, service: state.service, fingerprint: state.fingerprint, bucket: date(of: b), kind: kind,
                    observed: point.value, expected: point.expected, score: point.score, pValue: point.pValue)
                if verdict.reported {
                    let insight = try spikeInsight(key, state, kind: kind, bucket: b, point: point, connection)
                    spike.insightID = try record(insight, connection, report: &report)
                    slots[i].episode = Episode(insight: insight, startBucket: b, total: point.value, peak: point.value)
                    slots[i].lastAlert = insight
                    slots[i].lastAlertBucket = b
                }
                spikes.append(spike)
            }
        }
        try AnalysisStore.insertSpikes(spikes, on: connection)
        report.spikes += spikes.count
        if to - lastSweep >= Self.countsChunkBuckets {
            // Series quiet for longer than the history are forgotten.
            for i in slots.indices where slots[i].alive && to - slots[i].lastActive > configuration.historyBuckets { removeSeries(i) }
            lastSweep = to
        }
    }

    private func detectorConfiguration(_ fingerprint: String?) -> SpikeDetector.Configuration {
        fingerprint == nil ? configuration.serviceDetector : configuration.groupDetector
    }

    /// Gives a dormant series its detector, stepped through its counts of the history before
    /// bucket `b` (none of them could alert), as a takeover would have.
    private func wake(_ i: Int, before b: Int) {
        guard slots[i].detector == nil else { return }
        var detector = SpikeDetector(configuration: detectorConfiguration(slots[i].fingerprint))
        let from = max(slots[i].since, b - configuration.historyBuckets)
        slots[i].counts.forEachBucket(from: from, to: b) { _ = detector.update($0) }
        slots[i].detector = detector
        awake.insert(i)
    }

    private func sleep(_ i: Int) {
        slots[i].detector = nil
        slots[i].episode = nil
        slots[i].lastAlert = nil
        awake.remove(i)
    }

    /// A burst in the detector's quiet period after the series' last alert grows that alert's
    /// insight and is followed again while it lasts (``SpikeEpisodes``); the bucket is recorded
    /// as a suppressed spike.
    private func recur(_ i: Int, bucket b: Int, point: SpikeDetector.Point, _ connection: PostgresConnection,
                       report: inout CycleReport) throws -> SpikeRecord? {
        // Runs for every awake series at every bucket: the cheapest test first.
        guard point.value >= slots[i].loudAt, let insight = SpikeEpisodes.recur(
            lastAlert: slots[i].lastAlert, lastAlertBucket: slots[i].lastAlertBucket, value: point.value, loudAt: slots[i].loudAt,
            quietBuckets: detectorConfiguration(slots[i].fingerprint).refractoryBuckets, bucket: b, end: date(of: b + 1))
        else { return nil }
        let id = try record(insight, connection, report: &report)
        slots[i].lastAlert = insight
        slots[i].episode = Episode(insight: insight, startBucket: b, total: Double(insight.eventCount ?? 0),
                                   peak: insight.observed ?? point.value)
        let state = slots[i]
        return SpikeRecord(series: state.key, service: state.service, fingerprint: state.fingerprint, bucket: date(of: b), kind: insight.kind,
                           observed: point.value, expected: point.expected, score: point.score, pValue: point.pValue,
                           insightID: id, suppressed: true)
    }

    /// Grows the insight of an ongoing alert while the series stays above what was expected.
    private func follow(_ i: Int, bucket b: Int, point: SpikeDetector.Point, _ connection: PostgresConnection, report: inout CycleReport) throws {
        guard let episode = slots[i].episode, b > episode.startBucket else { return }
        guard let grown = SpikeEpisodes.follow(episode, value: point.value, bucket: b, end: date(of: b + 1)) else {
            slots[i].episode = nil
            return
        }
        slots[i].episode = grown
        slots[i].lastAlert = grown.insight
        try record(grown.insight, connection, report: &report)
    }

    /// The bucket still filling: counts only grow, so a partial count that already alerts is
    /// a spike now, not in a minute.
    private func peek(at open: Int, _ connection: PostgresConnection, report: inout CycleReport) throws {
        let counts = try loadCounts(from: open, to: open + 1, connection)[open] ?? BucketCounts()
        var alertingServices: Set<String> = []
        for (name, value) in counts.services {
            guard let i = slotOfService[name], var detector = slots[i].detector else { continue }
            let point = detector.update(value)
            if point.isAlert && point.isSpike { alertingServices.insert(name) }
        }
        let entries = counts.services.map { (key: seriesKey(service: $0.key), service: $0.key, fingerprint: String?.none, value: $0.value) }
            + counts.groups.map { (key: seriesKey(group: $0.key), service: $0.value.service, fingerprint: Optional($0.key), value: $0.value.value) }
        for entry in entries.sorted(by: { $0.key < $1.key }) {
            guard let i = slot(service: entry.service, fingerprint: entry.fingerprint), slots[i].episode == nil else { continue }
            if entry.fingerprint != nil && alertingServices.contains(entry.service) { continue }
            if slots[i].detector == nil, entry.value >= slots[i].loudAt { wake(i, before: open) }
            guard var detector = slots[i].detector else { continue }
            let state = slots[i]
            let key = state.key
            let point = detector.update(entry.value)
            guard point.isAlert && point.isSpike else { continue }
            let insight = try spikeInsight(key, state, kind: .spike, bucket: open, point: point, connection)
            let id = try record(insight, connection, report: &report)
            try AnalysisStore.insertSpikes([SpikeRecord(
                series: key, service: state.service, fingerprint: state.fingerprint, bucket: date(of: open), kind: .spike,
                observed: point.value, expected: point.expected, score: point.score, pValue: point.pValue, insightID: id)],
                on: connection)
            report.spikes += 1
        }
    }

    private func spikeInsight(
        _ key: String, _ state: Series, kind: Insight.Kind, bucket b: Int, point: SpikeDetector.Point, _ connection: PostgresConnection
    ) throws -> Insight {
        let from = date(of: b)
        let to = date(of: b + 1)
        let top: [(group: GroupRecord, count: Int)]
        if let fingerprint = state.fingerprint {
            top = try AnalysisStore.group(fingerprint, on: connection).map { [($0, Int(point.value))] } ?? []
        } else {
            top = try AnalysisStore.topGroups(service: state.service, from: from, to: to, limit: 3, on: connection)
        }
        let context = try AnalysisStore.eventContext(
            fingerprints: top.map(\.group.fingerprint), from: from, to: to, on: connection)
        let environment = context.first?.environment
        let version = context.first { $0.version != nil }?.version
        // The suspect is the newest rollout among the versions that carry a tenth of the bucket's
        // errors, not the commonest version: in the minute of a rollout the old version may
        // still outnumber the new one that causes the rise.
        let total = context.reduce(0) { $0 + $1.count }
        let suspects = context.filter { $0.environment == environment && $0.count * 10 >= total }.map(\.version)
        var deployment: (version: String, previous: String?, seconds: Int)?
        if let environment, let active = (suspects.isEmpty ? [version] : suspects)
            .compactMap({ deployments.context(service: state.service, environment: environment, version: $0, at: to) })
            .max(by: { $0.startedAt < $1.startedAt }) {
            let seconds = Int(from.timeIntervalSince(active.startedAt))
            if seconds <= Int(self.seconds(configuration.rollbackWindow)) {
                deployment = (active.version, deployments.previousVersion(service: state.service, environment: environment, before: active.version),
                              max(0, seconds))
            }
        }
        let main = top.first?.group
        let evidence = Evidence(
            kind: kind == .levelShift ? .levelShift : .spike, service: state.service, environment: environment,
            errorType: main?.errorType, template: main?.template ?? "",
            message: try main.flatMap { try AnalysisStore.sampleMessage(of: $0.fingerprint, on: connection) },
            version: deployment?.version ?? version, previousVersion: deployment?.previous, secondsSinceDeploy: deployment?.seconds,
            observed: point.value, expected: point.expected, count: Int(point.value), windowSeconds: configuration.bucketSeconds)
        let what = state.fingerprint == nil ? "\(state.service) errors" : "\(state.service): \(main.map(label) ?? "a group")"
        let word = kind == .levelShift ? "Level shift" : "Spike"
        var summary = "\(Int(point.value)) errors in the minute from \(RFC3339.format(from)) against \(format(point.expected)) expected (\(point.pValue < 1e-6 ? "p < 1e-6" : String(format: "p = %.2g", point.pValue)))."
        if state.fingerprint == nil, !top.isEmpty {
            summary += " Mostly: " + top.map { "\(label($0.group)) (\($0.count))" }.joined(separator: "; ") + "."
        }
        if let deployment {
            summary += " It began \(minutes(deployment.seconds)) after \(state.service) \(deployment.version) was deployed."
        }
        let ratio = point.value / max(point.expected, 1)
        return Insight(
            dedupeKey: "\(kind.rawValue):\(key):\(b)", kind: kind, severity: ratio >= 10 ? .critical : .warning,
            service: state.service, environment: environment, fingerprint: state.fingerprint ?? main?.fingerprint,
            version: deployment?.version ?? version, previousVersion: deployment?.previous,
            title: "\(word) in \(what): \(Int(point.value))/min vs \(format(point.expected)) expected",
            summary: summary, observed: point.value, expected: point.expected, eventCount: Int(point.value),
            startedAt: from, lastSeenAt: to, details: ["series": key, "score": String(format: "%.3f", point.score)],
            recommendations: configuration.rules.recommend(for: evidence))
    }

    // MARK: Forecasts

    private func forecast(_ connection: PostgresConnection, now: Date, report: inout CycleReport) throws {
        let threshold = configuration.forecastThreshold
        // The busiest series with a recent history long enough to fit.
        guard let until = scoredUntil else { return }
        var slotOf: [String: Int] = [:]
        let volumes: [Forecasts.Volume] = slots.indices.compactMap { i in
            guard slots[i].alive, until - slots[i].since >= 30 else { return nil }
            slotOf[slots[i].key] = i
            return Forecasts.Volume(key: slots[i].key, service: slots[i].service, fingerprint: slots[i].fingerprint,
                                    volume: slots[i].counts.sum(from: until - 60, to: until))
        }
        let candidates = Forecasts.choose(volumes, limit: configuration.forecastSeriesLimit).compactMap { series -> Forecasts.Candidate? in
            guard let i = slotOf[series.key] else { return nil }
            // The counts a forecast is fitted on: the last three hours, or since the series began.
            var recent: [Double] = []
            slots[i].counts.forEachBucket(from: max(slots[i].since, until - configuration.forecastWindowBuckets), to: until) { recent.append($0) }
            return Forecasts.Candidate(series: series, recent: recent)
        }
        let findings = Forecasts.decide(candidates, threshold: threshold, horizon: configuration.forecastHorizonBuckets)
        for finding in findings {
            let (key, breach, current) = (finding.key, finding.breach, finding.current)
            let breachAt = now.addingTimeInterval(Double(breach.steps * configuration.bucketSeconds))
            let window = Int(now.timeIntervalSince1970 / 21_600)
            let group = try finding.fingerprint.flatMap { try AnalysisStore.group($0, on: connection) }
            // A service's warning is read through its busiest group of the last hour.
            let main = try group ?? AnalysisStore.topGroups(
                service: finding.service, from: now.addingTimeInterval(-3600), to: now, limit: 1, on: connection).first?.group
            let evidence = Evidence(
                kind: .predictedBreach, service: finding.service, errorType: main?.errorType, template: main?.template ?? "",
                message: try main.flatMap { try AnalysisStore.sampleMessage(of: $0.fingerprint, on: connection) },
                observed: breach.value, expected: current, count: finding.lastHour,
                secondsUntilBreach: breach.steps * configuration.bucketSeconds)
            let what = group.map { "\(finding.service): \(label($0))" } ?? "\(finding.service) errors"
            let insight = Insight(
                dedupeKey: "predicted_breach:\(key):\(window)", kind: .predictedBreach, severity: .warning, service: finding.service,
                fingerprint: finding.fingerprint,
                title: "\(what) forecast to reach \(format(threshold))/min in \(minutes(breach.steps * configuration.bucketSeconds))",
                summary: "At \(format(current))/min now and rising, the forecast crosses \(format(threshold))/min at about \(RFC3339.format(breachAt)).",
                observed: current, expected: breach.value, startedAt: now, lastSeenAt: now,
                details: ["breach_at": RFC3339.format(breachAt), "threshold": format(threshold), "series": key],
                recommendations: configuration.rules.recommend(for: evidence))
            let id = try record(insight, connection, report: &report)
            try AnalysisStore.insertPrediction(PredictionRecord(
                series: key, service: finding.service, fingerprint: finding.fingerprint, threshold: threshold, currentValue: current,
                predictedValue: breach.value, breachAt: breachAt, madeAt: now, insightID: id), on: connection)
            report.predictions += 1
        }
    }

    // MARK: Clusters

    func document(for group: GroupRecord) -> ErrorGroupDocument {
        ErrorGroupDocument(
            id: group.fingerprint, service: group.service, errorType: group.errorType, template: group.template,
            frames: (group.topFrames ?? "").split(separator: "|").map(String.init))
    }

    private func cluster(_ connection: PostgresConnection, now: Date, report: inout CycleReport) throws {
        let since = now.addingTimeInterval(-Double(configuration.clusterActiveDays) * 86_400)
        let groups = try AnalysisStore.activeGroups(since: since, limit: configuration.clusterMaxGroups, on: connection)
        guard groups.count >= 2 else { return }
        let byFingerprint = Dictionary(groups.map { ($0.fingerprint, $0) }, uniquingKeysWith: { a, _ in a })
        var settings = PatternClusterer.Configuration.default
        settings.kMeans.seed = configuration.seed
        settings.clusterCount = .automatic(configuration.clusterK)
        let result = PatternClusterer.cluster(groups.map(document(for:)), configuration: settings)
        let generation = (try AnalysisStore.state("cluster_generation", on: connection).flatMap { Int($0) } ?? 0) + 1
        let records = result.clusters.map { cluster in
            // Titled by its busiest member's type and template (as a key limited to some
            // services sees it); the top terms stay beside it.
            let busiest = cluster.memberIDs.compactMap { byFingerprint[$0] }
                .max { ($0.eventCount, $1.fingerprint) < ($1.eventCount, $0.fingerprint) }
            return ClusterRecord(
                generation: generation, label: busiest.map(Self.patternTitle) ?? cluster.label, terms: cluster.terms.map(\.term),
                services: cluster.services,
                groupCount: cluster.memberIDs.count,
                eventCount: cluster.memberIDs.reduce(0) { $0 + (byFingerprint[$1]?.eventCount ?? 0) },
                centroid: Array(result.model.centroids.row(cluster.index)))
        }
        var members: [(fingerprint: String, cluster: Int)] = []
        for cluster in result.clusters { for member in cluster.memberIDs { members.append((member, cluster.index)) } }
        let ids = try connection.transaction { connection -> [Int64] in
            let ids = try AnalysisStore.saveClusters(records, members: members, on: connection)
            try AnalysisStore.setState("cluster_generation", json: String(generation), on: connection)
            return ids
        }
        clusterModel = (result, ids)
        report.clustersTrained += 1

        let news = ClusterNews.decide(result.clusters.enumerated().map { ($0.offset, $0.element.memberIDs) }, groups: byFingerprint,
                                      now: now, newAfter: newAfter)
        for finding in news {
            let (cluster, index) = (result.clusters[finding.index], finding.index)
            let (active, services, count, main) = (finding.active, finding.services, finding.count, finding.main)
            let evidence = Evidence(
                kind: .cluster, service: services.joined(separator: ", "), errorType: main?.errorType, template: main?.template ?? "",
                message: try main.flatMap { try AnalysisStore.sampleMessage(of: $0.fingerprint, on: connection) }, services: services, observed: Double(count), expected: 0, count: count)
            let signature = StableHash.hex64((cluster.terms.prefix(3).map(\.term).sorted() + ["|"] + services).joined(separator: " "))
            let insight = Insight(
                dedupeKey: "cluster:\(signature)", kind: .cluster, severity: services.count >= 3 ? .critical : .warning,
                clusterID: ids[index], title: Self.clusterTitle(cluster.label, main: main, services: services),
                summary: "\(active.count) groups with \(count) events share this pattern in \(services.joined(separator: ", ")).",
                eventCount: count, startedAt: active.map(\.firstSeen).min() ?? now, lastSeenAt: active.map(\.lastSeen).max() ?? now,
                details: ["services": services.joined(separator: ", "), "terms": cluster.terms.map(\.term).joined(separator: ", ")],
                recommendations: configuration.rules.recommend(for: evidence))
            try record(insight, connection, report: &report)
        }
    }

    // MARK: Helpers

    /// "TimeoutException: timeout after <*> connecting to <*>": a group's type and template.
    static func patternTitle(_ group: GroupRecord) -> String {
        guard !group.template.isEmpty else { return group.errorType ?? "" }
        return group.errorType.map { "\($0): \(group.template)" } ?? group.template
    }

    /// "In 3 services: TimeoutException: timeout after <*> connecting to <*> (checkout, orders,
    /// payments)": the busiest member's template says what happens; the cluster's top terms are
    /// a fallback only, since a bag of words reads poorly.
    static func clusterTitle(_ label: String, main: GroupRecord?, services: [String]) -> String {
        let pattern = main.map(patternTitle).flatMap { $0.isEmpty ? nil : $0 } ?? label
        return "In \(services.count) services: \(pattern) (\(services.joined(separator: ", ")))"
    }

    @discardableResult
    private func record(_ insight: Insight, alerting: Bool = true, _ connection: PostgresConnection,
                        report: inout CycleReport) throws -> Int64 {
        // A new insight and the alerts it causes are written in one transaction (the outbox).
        let (id, created) = try AlertOutbox.record(insight, alerting: alerting, on: connection, logger: logger)
        if created {
            report.insightsCreated += 1
            logger.notice("insight", metadata: ["kind": "\(insight.kind.rawValue)", "title": "\(insight.title)", "id": "\(id)"])
        } else {
            report.insightsUpdated += 1
        }
        return id
    }

    private func label(_ group: GroupRecord) -> String {
        let text = group.errorType.map { "\($0): \(group.template)" } ?? group.template
        return text.count > 120 ? String(text.prefix(117)) + "…" : text
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func format(_ value: Double) -> String {
        value >= 10 || value == value.rounded() ? String(Int(value.rounded())) : String(format: "%.1f", value)
    }

    /// When a group appeared against its rollout, in words; "before" within the clock-skew
    /// allowance says so rather than pretending it came after.
    private func sinceRollout(_ seconds: Int?, service: String, version: String) -> String {
        guard let seconds, seconds < 0 else { return "\(minutes(seconds)) after \(service) \(version) was deployed" }
        return "\(-seconds) s before \(service) \(version)'s recorded rollout, within the \(Int(self.seconds(configuration.clockSkew))) s "
            + "allowed for clocks that differ (FAULTLINE_CLOCK_SKEW)"
    }

    private func minutes(_ seconds: Int?) -> String {
        guard let seconds else { return "soon" }
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        return "\(seconds / 3600) h"
    }
}
