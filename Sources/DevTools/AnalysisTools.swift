import App
import Analysis
import Domain
import Foundation
import Posix

/// One JSON object on one line, keys sorted, numbers rounded for people.
func jsonLine(_ fields: [String: Any]) -> String {
    let rounded = fields.mapValues { value -> Any in
        if let number = value as? Double { return number.isFinite ? (number * 10_000).rounded() / 10_000 : 0 }
        return value
    }
    let data = (try? JSONSerialization.data(withJSONObject: rounded, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}

func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw ToolError("cannot read \(path)") }
    guard let text = String(data: data, encoding: .utf8) else { throw ToolError("\(path) is not UTF-8 text") }
    return text
}

func writeText(_ text: String, to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else { throw ToolError("cannot write \(path)") }
}

/// Runs `python3 script arguments…` and returns its standard output; a missing module is
/// reported with the pip command that installs it.
func runPython(_ script: String, _ arguments: [String], packages: String) throws -> String {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-py-\(getpid()).out").path
    defer { try? FileManager.default.removeItem(atPath: output) }
    let status = try Subprocess.run("/usr/bin/env", ["python3", script] + arguments, outputPath: output)
    let text = (try? readText(output)) ?? ""
    guard status == 0 else {
        throw ToolError("python3 \(script) failed (exit \(status)); it needs \(packages): pip install \(packages)")
    }
    return text
}

/// Where the reference scripts of the benchmarks live (`scripts/bench` in a checkout).
func benchScript(_ name: String) throws -> String {
    try ResourceLocator.find("scripts", configured: nil, variable: "scripts") + "/bench/" + name
}

// MARK: Templates

/// `faultline analyze|eval|bench templates`.
public enum TemplateTool {
    /// Mines the messages in order; per message its final group id and template.
    static func mine(_ messages: [String], configuration: TemplateMiner.Configuration = .default) -> (ids: [Int], templates: [String]) {
        var miner = TemplateMiner(configuration: configuration)
        let ids = messages.map { miner.add($0) }.map { miner.resolve($0) }
        return (ids, ids.map { miner.template(id: $0)?.text ?? "" })
    }

    /// The miner's settings that cross-validation chooses between: the shipped configuration
    /// first (it wins ties), then every other combination of the similarity threshold, the
    /// folding of value lists and the masking of values.
    static let candidates: [TemplateMiner.Configuration] = {
        let shipped = TemplateMiner.Configuration.default
        var all = [shipped]
        for threshold in [0.5, 0.6, 0.7, 0.75, 0.8, 0.9] {
            for collapse in [true, false] {
                for mask in [true, false] {
                    let candidate = TemplateMiner.Configuration(similarityThreshold: threshold, maskVariables: mask, collapseVariableRuns: collapse)
                    if !(threshold == shipped.similarityThreshold && collapse == shipped.collapseVariableRuns && mask == shipped.maskVariables) {
                        all.append(candidate)
                    }
                }
            }
        }
        return all
    }()

    static func name(_ configuration: TemplateMiner.Configuration) -> String {
        "threshold=\(configuration.similarityThreshold) fold=\(configuration.collapseVariableRuns ? "on" : "off") mask=\(configuration.maskVariables ? "on" : "off")"
    }

    /// Writes `group_id,template` (after `LineId` when the input has one) for every row, in order.
    public static func analyze(input: String, column: String, output: String) throws -> Int {
        let (header, rows) = CSV.parseWithHeader(try readText(input))
        guard let contentIndex = header.firstIndex(of: column) else {
            throw ToolError("\(input) has no column \(column) (columns: \(header.joined(separator: ", ")))")
        }
        let lineIdIndex = header.firstIndex(of: "LineId")
        let (ids, templates) = mine(rows.map { contentIndex < $0.count ? $0[contentIndex] : "" })
        var out: [[String]] = [(lineIdIndex == nil ? [] : ["LineId"]) + ["group_id", "template"]]
        for (index, row) in rows.enumerated() {
            let lineId = lineIdIndex.map { $0 < row.count ? [row[$0]] : [""] } ?? []
            out.append(lineId + [String(ids[index]), templates[index]])
        }
        try writeText(CSV.format(out), to: output)
        return rows.count
    }

    struct System {
        var name: String
        var contents: [String]
        var templates: [String]
    }

    /// Every `<S>/<S>_2k.log_structured_corrected.csv` under `directory`.
    static func systems(_ directory: String) throws -> [System] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        let systems = try names.compactMap { name -> System? in
            let path = "\(directory)/\(name)/\(name)_2k.log_structured_corrected.csv"
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            let (header, rows) = CSV.parseWithHeader(try readText(path))
            guard let content = header.firstIndex(of: "Content"), let template = header.firstIndex(of: "EventTemplate") else {
                throw ToolError("\(path) needs the columns Content and EventTemplate")
            }
            return System(name: name, contents: rows.map { $0[content] }, templates: rows.map { $0[template] })
        }
        guard !systems.isEmpty else { throw ToolError("no <System>/<System>_2k.log_structured_corrected.csv under \(directory)") }
        return systems
    }

    /// GA, FGA, PA and FTA per system, then their means: one JSON line each, the mean last.
    /// `cv_ga` is leave-one-system-out: the setting (`candidates`) with the best mean GA on the
    /// other systems, scored on this one; `ga` and the rest are the shipped configuration's.
    public static func evaluate(directory: String) throws -> [String] {
        let all = try systems(directory)
        let candidates = Self.candidates
        let accuracy = parallelMap(candidates.count * all.count) { job in
            let system = all[job % all.count]
            let (_, templates) = mine(system.contents, configuration: candidates[job / all.count])
            return TemplateEvaluation.evaluate(predictedTemplates: templates, trueTemplates: system.templates)
        }
        let folds = CrossValidation.leaveOneGroupOut(candidates.indices.map { candidate in
            all.indices.map { accuracy[candidate * all.count + $0].ga }
        })
        var lines: [String] = []
        var sums = [Double](repeating: 0, count: 5)
        for (index, system) in all.enumerated() {
            let s = accuracy[index]
            let fold = folds[index]
            lines.append(jsonLine(["system": system.name, "cv_ga": fold.score, "cv_setting": name(candidates[fold.candidate]),
                                   "ga": s.ga, "fga": s.fga, "pa": s.pa, "fta": s.fta,
                                   "messages": s.messages, "templates": s.predictedGroups, "true_templates": s.trueGroups]))
            for (index, value) in [fold.score, s.ga, s.fga, s.pa, s.fta].enumerated() { sums[index] += value }
        }
        let n = Double(all.count)
        lines.append(jsonLine(["system": "mean", "cv_ga": sums[0] / n, "ga": sums[1] / n, "fga": sums[2] / n, "pa": sums[3] / n,
                               "fta": sums[4] / n, "min_cv_ga": folds.map(\.score).min() ?? 0,
                               "min_ga": all.indices.map { accuracy[$0].ga }.min() ?? 0,
                               "systems": all.count, "candidates": candidates.count, "setting": name(.default)]))
        return lines
    }

    /// The same messages through Faultline's miner and Drain3 (its defaults), each on one core.
    public static func bench(directory: String, minimumMessages: Int, runs: Int) throws -> [String] {
        let base = try systems(directory).flatMap(\.contents).map { $0.replacingOccurrences(of: "\n", with: " ") }
        var repeated: [String] = []
        while repeated.count < minimumMessages { repeated.append(contentsOf: base) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-templates-\(getpid()).txt").path
        try writeText(repeated.joined(separator: "\n") + "\n", to: file)
        defer { try? FileManager.default.removeItem(atPath: file) }
        // Both sides mine the lines of that file, each read into a string of its own, one after
        // the other (as Drain3's side reads them), not the same few thousand strings again and
        // again from wherever the heap put them.
        let messages = try readText(file).split(separator: "\n").map(String.init)
        guard messages.count == repeated.count else { throw ToolError("\(file) holds \(messages.count) lines, not \(repeated.count)") }
        let script = try benchScript("drain3_bench.py")
        // The two sides take turns, so a change in the machine's speed (a shared virtual
        // machine) weighs on both alike; each side's median run counts.
        var rates: [Double] = []
        var theirRates: [Double] = []
        var templateCount = 0
        for _ in 0..<max(1, runs) {
            var miner = TemplateMiner()
            // CPU time of this thread, as on the Python side: other load does not count.
            let start = threadCPUSeconds()
            for message in messages { miner.add(message) }
            rates.append(Double(messages.count) / max(threadCPUSeconds() - start, 1e-9))
            templateCount = miner.templates.count
            let output = try runPython(script, [file, "1"], packages: "drain3")
            guard let last = output.split(separator: "\n").last, let rate = Double(last.trimmingCharacters(in: .whitespaces)) else {
                throw ToolError("drain3_bench.py printed no rate")
            }
            theirRates.append(rate)
        }
        let ours = rates.sorted()[rates.count / 2]
        let theirs = theirRates.sorted()[theirRates.count / 2]
        return [
            jsonLine(["engine": "faultline", "messages": messages.count, "runs": runs, "msgs_per_s": ours, "templates": templateCount]),
            jsonLine(["faultline_msgs_per_s": ours, "drain3_msgs_per_s": theirs, "ratio": ours / theirs, "messages": messages.count]),
        ]
    }
}

func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

// MARK: Spikes

/// `faultline analyze|eval spikes`.
public enum SpikeTool {
    struct Series {
        var timestamps: [Int]
        var rawTimestamps: [String]
        var values: [Double]
    }

    /// `YYYY-MM-DD HH:MM:SS[.fff]` (NAB's form) or RFC 3339, as UTC seconds.
    static func parseTimestamp(_ text: String) -> Int? {
        RFC3339.parse(text.trimmingCharacters(in: .whitespaces), zoneRequired: false).map { Int($0.timeIntervalSince1970.rounded(.down)) }
    }

    /// A `timestamp,value` file; rows that are not a time and a number are an error naming the line.
    static func readSeries(_ path: String) throws -> Series {
        let (header, rows) = CSV.parseWithHeader(try readText(path))
        guard let t = header.firstIndex(of: "timestamp"), let v = header.firstIndex(of: "value") else {
            throw ToolError("\(path) needs a header with the columns timestamp and value")
        }
        var series = Series(timestamps: [], rawTimestamps: [], values: [])
        for (index, row) in rows.enumerated() where !(row.count == 1 && row[0].isEmpty) {
            guard t < row.count, v < row.count, let time = parseTimestamp(row[t]),
                let value = Double(row[v].trimmingCharacters(in: .whitespaces)), value.isFinite
            else {
                throw ToolError("\(path) line \(index + 2): expected a timestamp and a number")
            }
            series.timestamps.append(time)
            series.rawTimestamps.append(row[t])
            series.values.append(value)
        }
        return series
    }

    /// The detector configuration from the data alone: a season of one day of buckets of the
    /// median spacing. The same rule for every file.
    static func configuration(for timestamps: [Int], setting: Setting = .shipped) -> SpikeDetector.Configuration {
        var gaps = zip(timestamps.dropFirst(), timestamps).map { $0 - $1 }.filter { $0 > 0 }
        gaps.sort()
        let spacing = gaps.isEmpty ? 60 : gaps[gaps.count / 2]
        return setting.apply(to: SpikeDetector.Configuration.forBucketWidth(seconds: Double(spacing)))
    }

    /// The detector's strengths that cross-validation chooses between; every other setting is
    /// a span of time (see `SpikeDetector.Configuration.forBucketWidth(seconds:)`).
    struct Setting: Sendable, Equatable {
        /// Only new extremes count as spikes (`noveltyPower` 10) or every deviation does (0).
        var novelty: Double
        /// Weight of a change in the noise level (0 ignores it).
        var volatility: Double
        /// Buckets of quiet after an alert.
        var quiet: Int

        static let shipped = Setting(novelty: 10, volatility: 2, quiet: 96)

        /// The shipped setting first (it wins ties), then the rest of the grid: with and
        /// without the novelty gate and the noise level. The quiet period after an alert is
        /// not a candidate: it says how long one change's aftermath is (96 buckets, one alert
        /// per change), a policy rather than a strength to fit.
        static let candidates: [Setting] = {
            var all = [shipped]
            for novelty in [0.0, 10] {
                for volatility in [0.0, 2] {
                    let setting = Setting(novelty: novelty, volatility: volatility, quiet: shipped.quiet)
                    if setting != shipped { all.append(setting) }
                }
            }
            return all
        }()

        var name: String { "novelty=\(Int(novelty)) volatility=\(Int(volatility)) quiet=\(quiet)" }

        func apply(to base: SpikeDetector.Configuration) -> SpikeDetector.Configuration {
            var configuration = base
            configuration.noveltyPower = novelty
            configuration.volatilityWeight = volatility
            configuration.refractoryBuckets = quiet
            return configuration
        }
    }

    static func scores(_ series: Series, setting: Setting = .shipped) -> [Double] {
        SpikeDetector.scores(of: series.values, configuration: configuration(for: series.timestamps, setting: setting)).map(\.score)
    }

    /// Writes `timestamp,value,anomaly_score`; each score uses only that row and the rows before it.
    public static func analyze(input: String, output: String) throws -> Int {
        let series = try readSeries(input)
        let scores = scores(series)
        var rows = [["timestamp", "value", "anomaly_score"]]
        for index in series.values.indices {
            rows.append([series.rawTimestamps[index], String(series.values[index]), String(format: "%.6f", scores[index])])
        }
        try writeText(CSV.format(rows), to: output)
        return series.values.count
    }

    /// NAB's score, cross-validated by leaving out one category (the folder a file is in) at a
    /// time: the detector's setting (`Setting.candidates`) and NAB's threshold are chosen on the
    /// other categories and scored on the held-out one. One JSON line per held-out category
    /// (standard profile), then one per profile with `cv_score` beside the in-sample `score` of
    /// the shipped setting, the standard profile last.
    public static func evaluate(directory: String) throws -> [String] {
        let labelsPath = directory + "/windows.json"
        guard let labels = try JSONSerialization.jsonObject(with: Data(try readText(labelsPath).utf8)) as? [String: [[String]]] else {
            throw ToolError("\(labelsPath) is not a map of file names to [[start, end]] windows")
        }
        var corpus: [(name: String, series: Series, windows: [ClosedRange<Int>])] = []
        for name in labels.keys.sorted() {
            let series = try readSeries(directory + "/" + name)
            var windows: [ClosedRange<Int>] = []
            for limits in labels[name] ?? [] {
                guard limits.count == 2, let start = parseTimestamp(limits[0]), let end = parseTimestamp(limits[1]) else {
                    throw ToolError("\(labelsPath): a window of \(name) is not [start, end]")
                }
                // Rows inside the window (NAB labels by timestamp).
                guard let first = series.timestamps.firstIndex(where: { $0 >= start }),
                    let last = series.timestamps.lastIndex(where: { $0 <= end }), first <= last
                else { continue }
                windows.append(first...last)
            }
            corpus.append((name, series, windows))
        }
        let candidates = Setting.candidates
        let series = corpus.map(\.series)
        let scored = parallelMap(candidates.count * corpus.count) { job in
            scores(series[job % series.count], setting: candidates[job / series.count])
        }
        let files = candidates.indices.map { candidate in
            corpus.indices.map { NABFile(name: corpus[$0].name, scores: scored[candidate * corpus.count + $0], windows: corpus[$0].windows) }
        }
        let categoryNames = corpus.map { $0.name.split(separator: "/").dropLast().joined(separator: "/") }
        let categories = Array(Set(categoryNames)).sorted()
        let groups = categoryNames.map { categories.firstIndex(of: $0)! }
        var lines: [String] = []
        let profiles: [NABProfile] = [.rewardLowFPRate, .rewardLowFNRate, .standard]
        let standard = NABScorer.crossValidate(files, groups: groups, profile: .standard)
        for fold in standard.folds {
            lines.append(jsonLine(["held_out": categories[fold.group], "setting": candidates[fold.candidate].name,
                                   "threshold": fold.threshold, "score": fold.normalized, "raw": fold.raw,
                                   "files": groups.filter { $0 == fold.group }.count]))
        }
        for profile in profiles {
            let crossValidated = profile == .standard ? standard : NABScorer.crossValidate(files, groups: groups, profile: profile)
            let result = NABScorer.evaluate(files[0], profile: profile)
            lines.append(jsonLine(["profile": profile.name, "cv_score": crossValidated.normalized, "score": result.normalized,
                                   "threshold": result.threshold, "raw": result.raw, "files": result.files,
                                   "setting": Setting.shipped.name, "candidates": candidates.count,
                                   "categories": categories.count]))
        }
        return lines
    }
}

// MARK: k-means

/// `faultline bench kmeans`: the same data and initial centroids through Faultline's k-means and
/// scikit-learn's `KMeans(n_init=1, init=<same>, algorithm="lloyd")`.
public enum KMeansBench {
    public static func run(n: Int, d: Int, k: Int, seed: UInt64, repeats: Int) throws -> [String] {
        let (data, truth) = SyntheticData.gaussianMixture(count: n, dimensions: d, components: k, centreSpread: 0.45, clusterStd: 1, seed: seed)
        let initial = KMeans.kMeansPlusPlus(data, k: k, seed: seed)
        let configuration = KMeans.Configuration(maxIterations: 300, tolerance: 1e-4, seed: seed)
        var best = Double.infinity
        var result: KMeans.Result?
        for _ in 0..<max(1, repeats) {
            let start = monotonicSeconds()
            let fitted = KMeans.fit(data, k: k, configuration: configuration, initialCentroids: initial)
            best = min(best, monotonicSeconds() - start)
            if let previous = result, previous != fitted { throw ToolError("k-means gave two results for one input") }
            result = fitted
        }
        guard let result else { throw ToolError("no run") }
        // Int64 n, d, k; Float32 data, initial centroids, Faultline's centroids; Int32 labels. Little-endian.
        var out = Data()
        for value in [Int64(n), Int64(d), Int64(k)] { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        for matrix in [data.values, initial.values, result.model.centroids.values] {
            matrix.withUnsafeBufferPointer { out.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        }
        result.assignments.map { Int32($0) }.withUnsafeBufferPointer { out.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-kmeans-\(getpid()).bin").path
        guard FileManager.default.createFile(atPath: file, contents: out) else { throw ToolError("cannot write \(file)") }
        defer { try? FileManager.default.removeItem(atPath: file) }
        let output = try runPython(try benchScript("kmeans_sklearn.py"), [file, String(max(1, repeats))],
                                   packages: "scikit-learn threadpoolctl")
        guard let last = output.split(separator: "\n").last,
            let sk = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
            let sklearn = sk["sklearn_s"] as? Double, let sklearnOne = sk["sklearn_1thread_s"] as? Double,
            let ours = sk["faultline_inertia"] as? Double, let theirs = sk["sklearn_inertia"] as? Double
        else { throw ToolError("kmeans_sklearn.py printed no result") }
        return [jsonLine([
            "n": n, "d": d, "k": k, "repeats": repeats, "faultline_s": best, "sklearn_s": sklearn, "ratio": best / sklearn,
            "sklearn_1thread_s": sklearnOne, "ratio_1thread": best / sklearnOne, "inertia_ratio": ours / theirs,
            "faultline_iterations": result.iterations, "sklearn_iterations": sk["sklearn_iterations"] ?? 0,
            "ari_vs_truth": ClusteringMetrics.adjustedRandIndex(result.assignments, truth),
            "ari_between": sk["ari_between"] ?? 0,
        ])]
    }
}

// MARK: Incidents

/// `faultline eval incidents`: the spike detector as the analysis runs it (per-minute counts,
/// the shipped configuration) on labelled series of the product's own kind.
public enum IncidentTool {
    public static func evaluate(services: Int, days: Int, seed: UInt64) -> [String] {
        let corpus = IncidentCorpus(services: services, days: days, seed: seed)
        let result = corpus.evaluate(.default)
        // The oracle alerts at the detector's p-value for one bucket alone.
        let oracleP = SpikeDetector.Configuration.default.alertPValue
        var lines: [String] = []
        for kind in IncidentCorpus.Incident.Kind.allCases {
            let outcomes = result.outcomes.filter { $0.kind == kind }
            let delays = outcomes.compactMap(\.delay)
            lines.append(jsonLine([
                "kind": kind.rawValue, "incidents": outcomes.count,
                "recall": Double(delays.count) / Double(max(outcomes.count, 1)),
                "within_1_bucket": Double(delays.filter { $0 <= 1 }.count) / Double(max(outcomes.count, 1)),
                "mean_delay_buckets": delays.isEmpty ? 0 : Double(delays.reduce(0, +)) / Double(delays.count),
            ]))
        }
        for (low, high) in [(0.0, 10.0), (10, 100), (100, .infinity)] {
            let outcomes = result.outcomes.filter { $0.rate >= low && $0.rate < high }
            let spikes = outcomes.filter(\.kind.isSpike)
            let services = result.perService.filter { $0.rate >= low && $0.rate < high }
            lines.append(jsonLine([
                "errors_per_minute": high.isFinite ? "\(Int(low))-\(Int(high))" : "\(Int(low))+", "incidents": outcomes.count,
                "recall": Double(outcomes.filter { $0.delay != nil }.count) / Double(max(outcomes.count, 1)),
                "spike_recall": Double(spikes.filter { ($0.delay ?? .max) <= 1 }.count) / Double(max(spikes.count, 1)),
                "oracle_spike_recall": corpus.oracleSpikeRecall(pValue: oracleP, rates: low..<high),
                "false_alerts_per_service_day": Double(services.reduce(0) { $0 + $1.falseAlerts })
                    / Double(max(services.count * (corpus.days - 1), 1)),
                "noise_day_alerts": services.reduce(0) { $0 + $1.noiseDayAlerts },
            ]))
        }
        lines.append(jsonLine([
            "services": corpus.services.count, "days": corpus.days, "seed": Int(seed), "incidents": result.outcomes.count,
            "precision": result.precision, "recall": result.recall, "spike_recall": result.spikeRecall,
            "oracle_spike_recall": corpus.oracleSpikeRecall(pValue: oracleP),
            "mean_delay_buckets": result.meanDelay, "false_alerts_per_service_day": result.falseAlertsPerServiceDay,
            "noise_day_alerts": result.noiseDayAlerts,
        ]))
        return lines
    }
}

// MARK: Clusters

/// `faultline eval clusters`: the pattern clusterer on the groups the simulator makes, against
/// the pattern that made each group.
public enum ClusterTool {
    /// One group per (service, kind) of the simulator's traffic, every service affected by the
    /// outage and the leak (cross-service patterns), each with its true pattern.
    static func groups(seed: UInt64) -> [(document: ErrorGroupDocument, pattern: String)] {
        var random = SplitMix64(seed: seed)
        var kinds: [(TrafficGenerator.Kind, String)] = TrafficGenerator.background.map { ($0, $0.errorType) }
        kinds.append((TrafficGenerator.regression, "regression"))
        for service in TrafficGenerator.services {
            kinds.append((TrafficGenerator.outage(service), "outage"))
            kinds.append((TrafficGenerator.leak(service, usage: 480), "leak"))
        }
        return kinds.map { kind, pattern in
            // Ingest's template: a message's masked form (every message of one kind masks alike).
            let fingerprint = Fingerprint(service: kind.service, errorType: kind.errorType, message: kind.message(&random), frames: [])
            let document = ErrorGroupDocument(id: "\(kind.service)/\(kind.errorType)/\(pattern)", service: kind.service,
                                              errorType: kind.errorType, template: fingerprint.template,
                                              frames: kind.frames.map { TokenMasker.mask($0) })
            return (document, pattern)
        }
    }

    /// One JSON line per cluster (its members' true patterns), then `ari` and the counts.
    public static func evaluate(seed: UInt64) -> [String] {
        let groups = groups(seed: seed)
        var settings = PatternClusterer.Configuration.default
        settings.kMeans.seed = seed
        let result = PatternClusterer.cluster(groups.map(\.document), configuration: settings)
        var lines: [String] = []
        for cluster in result.clusters {
            let members = groups.indices.filter { result.assignments[$0] == cluster.index }
            // The analysis titles a cluster by its busiest group; these have no counts, so the first.
            let first = groups[members[0]].document
            lines.append(jsonLine([
                "cluster": cluster.index, "title": "\(first.errorType ?? ""): \(first.template)",
                "patterns": Array(Set(members.map { groups[$0].pattern })).sorted(), "services": cluster.services,
                "groups": members.count,
            ]))
        }
        let truth = groups.map(\.pattern)
        let names = Array(Set(truth)).sorted()
        lines.append(jsonLine([
            "ari": ClusteringMetrics.adjustedRandIndex(result.assignments, truth.map { names.firstIndex(of: $0)! }),
            "groups": groups.count, "patterns": names.count, "clusters": result.clusters.count, "seed": Int(seed),
        ]))
        return lines
    }
}
