import App
import AnalysisJob
import Domain
import Foundation
import Logging
import Posix
import Postgres
import Storage

/// `faultline bench analysis`: the analysis at the size of a real installation. A fresh
/// database is filled the way ingest writes it — groups, per-minute counts (a row only for a
/// minute with errors) and a few events per group — shaped like a real installation: group
/// rates Zipf-distributed (a few busy groups, a long tail of rare ones) summing to about 200
/// errors/s with a daily shape, plus a trickle of new groups in the last minutes. Then it
/// measures a leader's takeover (a fresh engine: every detector rebuilt from the counts), its
/// peak resident memory, a steady run a minute later, and the API's list endpoints under four
/// keep-alive clients (`faultline serve --role api` on the same database).
public enum AnalysisBenchmark {
    public struct Options: Sendable {
        public var services = 1000
        public var groups = 100_000
        public var days = 7
        public var errorsPerSecond = 200.0
        public var directory = "/tmp/faultline-analysis-bench"
        /// How long the API's list endpoints are measured.
        public var apiSeconds = 10
        public var binary: String

        public init(binary: String) { self.binary = binary }
    }

    public struct Result: Sendable {
        public var services = 0
        public var groups = 0
        public var days = 0
        public var countRows = 0
        public var fillSeconds = 0.0
        /// Per-minute rows left after the roll-up, the hourly rows it wrote, and its seconds.
        public var minuteRows = 0
        public var hourRows = 0
        public var rollupSeconds = 0.0
        public var takeoverSeconds = 0.0
        public var steadySeconds = 0.0
        public var rssMiB = 0.0
        public var listP99ms = 0.0
        public var listRequests = 0
        /// The series the takeover made, and those of them awake (with a detector).
        public var series = 0
        public var awakeSeries = 0

        public var json: String {
            func round(_ value: Double) -> String { String(format: "%.3f", value) }
            return #"{"benchmark":"analysis","services":\#(services),"groups":\#(groups),"days":\#(days),"count_rows":\#(countRows),"fill_s":\#(round(fillSeconds)),"minute_rows":\#(minuteRows),"hour_rows":\#(hourRows),"rollup_s":\#(round(rollupSeconds)),"takeover_s":\#(round(takeoverSeconds)),"steady_run_s":\#(round(steadySeconds)),"rss_mib":\#(String(format: "%.1f", rssMiB)),"series":\#(series),"awake_series":\#(awakeSeries),"list_p99_ms":\#(round(listP99ms)),"list_requests":\#(listRequests),"cores":\#(ProcessInfo.processInfo.activeProcessorCount)}"#
        }
    }

    public static func run(_ options: Options, logger: Logger, progress: @escaping @Sendable (String) -> Void) async throws -> Result {
        var result = Result(services: options.services, groups: options.groups, days: options.days)
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        let postgres = LocalPostgresCluster(directory: options.directory + "/postgres", fast: true)
        try await offloaded("analysis-bench-postgres") {
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: options.directory + "/postgres")
            try postgres.start()
            try postgres.createDatabase("analysis", logger: logger)
        }
        defer { try? postgres.stop() }
        var configuration = FaultlineConfiguration()
        configuration.databaseURL = postgres.url(database: "analysis")
        configuration.migrationsDirectory = try ResourceLocator.migrations(configured: nil)
        try await Faultline.migrate(configuration, logger: logger)
        let postgresConfiguration = configuration.postgres
        let analysisConfiguration = try Faultline.analysisConfiguration(configuration)

        // Whole minutes: the steady run comes one minute after the takeover.
        let now = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60)
        progress("filling \(options.groups) groups of \(options.services) services over \(options.days) days")
        let fillStarted = ContinuousClock.now
        let (rows, key) = try await offloaded("analysis-bench-fill") { () -> (Int, String) in
            let connection = try PostgresConnection.connect(postgresConfiguration, logger: logger)
            let rows = try fill(options, until: now, on: connection, progress: progress)
            let key = try APIKeyStore.create(name: "bench", scopes: ["read"], servicePrefix: nil, on: connection).key
            return (rows, key)
        }
        result.countRows = rows
        result.fillSeconds = (ContinuousClock.now - fillStarted).seconds
        progress("\(rows) per-minute rows in \(String(format: "%.1f", result.fillSeconds)) s")

        // What a running installation holds: minutes older than two days summed into hours.
        let rollupStarted = ContinuousClock.now
        let pass = try await offloaded("analysis-bench-rollup") { () -> CountRetention.Pass in
            let connection = try PostgresConnection.connect(postgresConfiguration, logger: logger)
            let pass = try CountRetention.apply(retentionDays: 30, now: now, on: connection)
            try connection.execute("VACUUM ANALYZE event_counts, event_counts_hourly")  // as autovacuum would have
            return pass
        }
        result.rollupSeconds = (ContinuousClock.now - rollupStarted).seconds
        result.minuteRows = rows - pass.minutesRolledUp
        result.hourRows = pass.hoursWritten
        progress("\(pass.minutesRolledUp) per-minute rows rolled up into \(pass.hoursWritten) hourly rows in \(String(format: "%.1f", result.rollupSeconds)) s")

        // The takeover: a fresh engine rebuilds every detector. Peak memory is measured from here.
        let (takeover, steady, rss, series) = try await offloaded("analysis-bench-run") { () -> (Double, Double, Double, (Int, Int)) in
            let connection = try PostgresConnection.connect(postgresConfiguration, logger: logger)
            resetPeakResidentMemory()
            let engine = AnalysisEngine(configuration: analysisConfiguration, logger: logger)
            var clock = ContinuousClock.now
            let first = try engine.run(on: connection, now: now.addingTimeInterval(11))
            let takeover = (ContinuousClock.now - clock).seconds
            progress("takeover: \(String(format: "%.2f", takeover)) s (\(first.bucketsScored) buckets, \(first.groupsAnalyzed) new groups, \(first.clustersTrained) clusterings, \(first.series) series of which \(first.awakeSeries) awake; \(first.seconds.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value)) s" }.joined(separator: ", ")))")
            try addMinute(options, at: now, on: connection)
            clock = ContinuousClock.now
            _ = try engine.run(on: connection, now: now.addingTimeInterval(71))
            let steady = (ContinuousClock.now - clock).seconds
            progress("steady run: \(String(format: "%.3f", steady)) s")
            return (takeover, steady, peakResidentMiB() ?? 0, (first.series, first.awakeSeries))
        }
        (result.series, result.awakeSeries) = series
        result.takeoverSeconds = takeover
        result.steadySeconds = steady
        result.rssMiB = rss

        progress("the API's list endpoints for \(options.apiSeconds) s")
        let port = try Loopback.freePort()
        let log = options.directory + "/serve.log"
        let server = Supervisor(binary: options.binary, environment: [
            "FAULTLINE_DATABASE_URL": configuration.databaseURL, "FAULTLINE_ROLES": "api", "FAULTLINE_HTTP_HOST": "127.0.0.1",
            "FAULTLINE_HTTP_PORT": "\(port)", "FAULTLINE_LOG_LEVEL": "warning",
        ], log: log)
        try server.start()
        defer { server.stop() }
        guard try await SoakBenchmark.waitUntilListening(port, timeout: .seconds(60)) else {
            throw ToolError("faultline serve did not listen on \(port); see \(log)")
        }
        let load = APILoad(port: port, key: key, clients: 4,
                           paths: ["/v1/groups?limit=50", "/v1/insights", "/v1/services", "/v1/services/svc-0001/series"])
        load.start()
        try await Task.sleep(for: .seconds(options.apiSeconds))
        load.stop()
        let latencies = load.latencies.sorted()
        result.listRequests = latencies.count
        if !latencies.isEmpty {
            result.listP99ms = latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))] * 1000
        }
        if load.errors > 0 { progress("\(load.errors) API requests failed") }
        return result
    }

    static func service(_ index: Int) -> String { String(format: "svc-%04d", index + 1) }

    /// A group's errors per minute: Zipf over the groups' ranks (exponent 1.1), summing to the total.
    static func rates(_ options: Options) -> [Double] {
        let weights = (0..<options.groups).map { 1 / pow(Double($0 + 1), 1.1) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total * options.errorsPerSecond * 60 }
    }

    /// The daily shape: busier by day than by night.
    static func shape(_ minute: Int) -> Double { 1 + 0.5 * sin(2 * Double.pi * Double(minute % 1440) / 1440) }

    static let words = ["timeout", "connection", "refused", "payment", "order", "cart", "user", "token", "cache", "queue", "disk",
                        "quota", "schema", "lock", "replica", "shard", "upstream", "gateway", "certificate", "invoice"]
    static let types = ["TimeoutError", "IOException", "ValidationError", "NullPointerException", "SQLException", "KeyError",
                        "HTTPError", "OutOfMemoryError"]

    static func template(_ group: Int) -> (errorType: String, template: String) {
        var random = SplitMix64(seed: UInt64(group) &* 0x9E37_79B9_7F4A_7C15)
        let pick = { (list: [String]) in list[Int(random.next() % UInt64(list.count))] }
        return (pick(types), "\(pick(words)) \(pick(words)) failed for <*> after <*> ms (\(pick(words)) \(group))")
    }

    /// Poisson-distributed count with mean `mean` (normal approximation above 30).
    static func poisson(_ mean: Double, _ random: inout SplitMix64) -> Int {
        if mean > 30 {
            let u1 = max(Double(random.next() >> 11) / Double(1 << 53), 1e-12)
            let u2 = Double(random.next() >> 11) / Double(1 << 53)
            let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            return max(0, Int((mean + normal * mean.squareRoot()).rounded()))
        }
        let limit = exp(-mean)
        var product = Double(random.next() >> 11) / Double(1 << 53)
        var count = 0
        while product > limit {
            count += 1
            product *= Double(random.next() >> 11) / Double(1 << 53)
        }
        return count
    }

    /// Writes the groups, their per-minute counts and a few events each; returns the count rows.
    static func fill(_ options: Options, until now: Date, on connection: PostgresConnection, progress: @Sendable (String) -> Void) throws -> Int {
        let minutes = options.days * 1440
        let first = now.addingTimeInterval(-Double(minutes * 60))
        let rates = rates(options)
        var random = SplitMix64(seed: 42)
        var groupRows: [(fingerprint: String, service: String, errorType: String, template: String, first: Date, last: Date, count: Int)] = []
        var rows = 0
        var days: Set<Date> = []
        try connection.copyFrom("COPY event_counts (fingerprint, service, bucket, count) FROM STDIN") { writer in
            for group in 0..<options.groups {
                let fingerprint = String(format: "bench%011d", group)
                let service = service(group % options.services)
                var counts: [(minute: Int, count: Int)] = []
                if rates[group] >= 0.2 {
                    for minute in 0..<minutes {
                        let count = poisson(rates[group] * shape(minute), &random)
                        if count > 0 { counts.append((minute, count)) }
                    }
                } else {
                    // A rare group: its errors as a Poisson process, minute by minute of arrival.
                    var at = 0.0
                    while true {
                        at += -log(max(Double(random.next() >> 11) / Double(1 << 53), 1e-12)) / rates[group]
                        guard at < Double(minutes) else { break }
                        if counts.last?.minute == Int(at) { counts[counts.count - 1].count += 1 } else { counts.append((Int(at), 1)) }
                    }
                    if counts.isEmpty { counts.append((Int(random.next() % UInt64(minutes)), 1)) }
                }
                for (minute, count) in counts {
                    try writer.field(fingerprint)
                    try writer.field(service)
                    writer.field(first.addingTimeInterval(Double(minute * 60)))
                    writer.field(count)
                    try writer.endRow()
                }
                rows += counts.count
                let (errorType, template) = template(group)
                groupRows.append((fingerprint, service, errorType, template, first.addingTimeInterval(Double(counts.first!.minute * 60)),
                                  first.addingTimeInterval(Double(counts.last!.minute * 60 + 59)), counts.reduce(0) { $0 + $1.count }))
                if group % 10_000 == 9_999 { progress("\(group + 1) groups, \(rows) rows") }
            }
        }
        for row in groupRows { days.insert(PartitionManager.day(of: row.first)); days.insert(PartitionManager.day(of: row.last)) }
        try PartitionManager.ensure(days: days, on: connection)
        // Every group analysed already, as on a running installation, but the last 20: new ones.
        try connection.copyFrom("""
            COPY groups (fingerprint, service, error_type, template, first_seen, last_seen, event_count, analyzed_at) FROM STDIN
            """) { writer in
            for (index, row) in groupRows.enumerated() {
                try writer.field(row.fingerprint)
                try writer.field(row.service)
                try writer.field(row.errorType)
                try writer.field(row.template)
                writer.field(row.first)
                writer.field(row.last)
                writer.field(row.count)
                writer.field(index >= groupRows.count - 20 ? nil : row.first)
                try writer.endRow()
            }
        }
        // Two events per group (its first and its last), for samples and environments.
        try connection.copyFrom("""
            COPY events (event_id, occurred_at, fingerprint, service, environment, severity, error_type, message, format,
                         source_topic, source_partition, source_offset) FROM STDIN
            """) { writer in
            for (index, row) in groupRows.enumerated() {
                for (n, time) in [row.first, row.last].enumerated() {
                    writer.field(StableHash.uuid("bench/\(index)/\(n)"))
                    writer.field(time)
                    try writer.field(row.fingerprint)
                    try writer.field(row.service)
                    try writer.field("production")
                    try writer.field("error")
                    try writer.field(row.errorType)
                    try writer.field(row.template.replacingOccurrences(of: "<*>", with: String(index % 997)))
                    try writer.field("native")
                    try writer.field("errors")
                    writer.field(0)
                    writer.field(index * 2 + n)
                    try writer.endRow()
                }
            }
        }
        // Ingest keeps each service's hourly total beside the minutes.
        try connection.execute(Self.serviceHours(where: "true"))
        try connection.execute("ANALYZE")
        return rows
    }

    /// Adds the per-minute counts `where` selects to the services' hourly totals, as ingest does.
    static func serviceHours(where condition: String) -> String {
        """
        INSERT INTO service_counts AS s (service, hour, count)
        SELECT service, to_timestamp(floor(extract(epoch FROM bucket) / 3600) * 3600), sum(count) FROM event_counts
        WHERE \(condition) GROUP BY 1, 2
        ON CONFLICT (service, hour) DO UPDATE SET count = s.count + EXCLUDED.count
        """
    }

    /// The minute after `now` for the busiest groups, for the steady run.
    static func addMinute(_ options: Options, at now: Date, on connection: PostgresConnection) throws {
        let rates = rates(options)
        var random = SplitMix64(seed: 43)
        try connection.copyFrom("COPY event_counts (fingerprint, service, bucket, count) FROM STDIN") { writer in
            for group in 0..<options.groups where rates[group] >= 0.2 {
                let count = poisson(rates[group] * shape(options.days * 1440), &random)
                guard count > 0 else { continue }
                try writer.field(String(format: "bench%011d", group))
                try writer.field(service(group % options.services))
                writer.field(now)
                writer.field(count)
                try writer.endRow()
            }
        }
        try connection.query(serviceHours(where: "bucket = $1"), [.timestamp(now)])
    }

    /// Linux: resets the process's peak resident set (VmHWM) to what it holds now.
    static func resetPeakResidentMemory() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    /// The process's peak resident set (VmHWM) in MiB.
    static func peakResidentMiB() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return nil }
        return kib / 1024
    }
}
