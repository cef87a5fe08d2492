import Foundation

/// The cost weights of one Numenta Anomaly Benchmark (NAB) application profile.
///
/// The three published profiles are provided; `tnWeight` exists in NAB's profile file but is never
/// used by its scorer, so it is left out here.
public struct NABProfile: Sendable, Equatable, Codable {
    public var name: String
    public var tpWeight: Double
    public var fpWeight: Double
    public var fnWeight: Double

    public init(name: String, tpWeight: Double, fpWeight: Double, fnWeight: Double) {
        self.name = name
        self.tpWeight = tpWeight
        self.fpWeight = fpWeight
        self.fnWeight = fnWeight
    }

    public static let standard = NABProfile(name: "standard", tpWeight: 1.0, fpWeight: 0.11, fnWeight: 1.0)
    public static let rewardLowFPRate = NABProfile(name: "reward_low_FP_rate", tpWeight: 1.0, fpWeight: 0.22, fnWeight: 1.0)
    public static let rewardLowFNRate = NABProfile(name: "reward_low_FN_rate", tpWeight: 1.0, fpWeight: 0.11, fnWeight: 2.0)
    /// The published profiles, `standard` last (the one usually quoted).
    public static let all: [NABProfile] = [.rewardLowFPRate, .rewardLowFNRate, .standard]
}

/// One scored series: a detector's anomaly score per row and the labelled anomaly windows.
public struct NABFile: Sendable, Equatable {
    public var name: String
    /// One score per row, in [0, 1]; a row is a detection when its score is at or above the threshold.
    public var scores: [Double]
    /// Labelled windows as inclusive row-index ranges, in time order and not overlapping.
    public var windows: [ClosedRange<Int>]

    public init(name: String, scores: [Double], windows: [ClosedRange<Int>]) {
        self.name = name
        self.scores = scores
        self.windows = windows
    }
}

/// The outcome of scoring a corpus under one profile.
public struct NABResult: Sendable, Equatable {
    public var profile: NABProfile
    /// The corpus-wide threshold that maximises the raw score.
    public var threshold: Double
    /// The raw score at `threshold`: window rewards, minus misses and false positives.
    public var raw: Double
    /// The raw score of a detector that never fires (every window missed).
    public var null: Double
    /// The raw score of a detector that fires at the first row of every window and nowhere else.
    public var perfect: Double
    /// `100 * (raw - null) / (perfect - null)`: 0 for the null detector, 100 for the perfect one.
    public var normalized: Double
    public var files: Int
}

/// The NAB scoring rules, reimplemented from NAB's `sweeper.py` and `runner.normalize`.
///
/// - The first `min(floor(0.15 n), 0.15 * 5000)` rows of a file are probationary: ignored.
/// - A window counts once: its best (earliest) detection earns `tpWeight * S(p) / S(-1)` where
///   `p = -(right - i + 1) / width` and `S(x) = 2 / (1 + e^(5x)) - 1` (so the first row earns exactly
///   `tpWeight`); a window with no detection costs `fnWeight`.
/// - Every detection outside a window costs `fpWeight * S(d)`, with `d` the distance past the end of
///   the preceding window relative to that window's width minus one (`-fpWeight` when no window
///   precedes or `d > 3`), so detections just after a window cost almost nothing.
/// - One threshold is chosen for the whole corpus (ties go to the higher threshold), then the raw sum
///   is normalised against the null detector and the perfect one.
public enum NABScorer {
    public static let defaultProbationPercent = 0.15

    /// NAB's scaled sigmoid: about 0.987 at -1 (window start), 0 at 0 (window end), -1 beyond 3.
    public static func scaledSigmoid(_ relativePosition: Double) -> Double {
        if relativePosition > 3.0 { return -1.0 }
        return 2.0 / (1.0 + exp(5.0 * relativePosition)) - 1.0
    }

    /// The number of leading rows NAB ignores; kept as NAB's float so the comparison is identical.
    public static func probationLength(rows: Int, probationPercent: Double = defaultProbationPercent) -> Double {
        min((probationPercent * Double(rows)).rounded(.down), probationPercent * 5000)
    }

    /// One non-probationary row ready for the threshold sweep.
    public struct SweepRow: Sendable, Equatable {
        public var anomalyScore: Double
        /// What the row adds if it is a detection: a reward inside a window, a (negative) cost outside.
        public var weight: Double
        /// Corpus-wide window number, or nil outside windows.
        public var window: Int?
    }

    /// The sweep rows of one file (probationary rows dropped); `windowOffset` numbers its windows.
    public static func sweepRows(
        _ file: NABFile, profile: NABProfile, windowOffset: Int = 0,
        probationPercent: Double = defaultProbationPercent
    ) -> [SweepRow] {
        let probation = probationLength(rows: file.scores.count, probationPercent: probationPercent)
        let maxTP = scaledSigmoid(-1.0)
        var rows: [SweepRow] = []
        rows.reserveCapacity(file.scores.count)
        var next = 0
        var current: (range: ClosedRange<Int>, id: Int)?
        var previous: ClosedRange<Int>?
        for (i, score) in file.scores.enumerated() {
            if current == nil, next < file.windows.count, file.windows[next].lowerBound == i {
                current = (file.windows[next], windowOffset + next)
                next += 1
            }
            let weight: Double
            if let (range, _) = current {
                let width = Double(range.count)
                weight = scaledSigmoid(-Double(range.upperBound - i + 1) / width) * profile.tpWeight / maxTP
            } else if let previous {
                // NAB divides by width - 1; a one-row window makes that infinite, i.e. "far away".
                let distance = Double(abs(previous.upperBound - i)) / Double(previous.count - 1)
                weight = scaledSigmoid(distance.isFinite ? distance : 4) * profile.fpWeight
            } else {
                weight = -profile.fpWeight
            }
            if Double(i) >= probation {
                rows.append(SweepRow(anomalyScore: score, weight: weight, window: current?.id))
            }
            if let (range, _) = current, range.upperBound == i {
                previous = range
                current = nil
            }
        }
        return rows
    }

    /// Raw score for every candidate threshold, highest threshold first (1.1 = nothing detected).
    public static func sweep(_ files: [NABFile], profile: NABProfile,
                             probationPercent: Double = defaultProbationPercent) -> [(threshold: Double, score: Double)] {
        var rows: [SweepRow] = []
        var offset = 0
        for file in files {
            rows += sweepRows(file, profile: profile, windowOffset: offset, probationPercent: probationPercent)
            offset += file.windows.count
        }
        // Windows with no scorable row (wholly probationary) are not part of the sum, as in NAB.
        var best = [Double](repeating: .nan, count: offset)
        for row in rows { if let w = row.window { best[w] = -profile.fnWeight } }
        var windowSum = best.reduce(0) { $0 + ($1.isNaN ? 0 : $1) }
        var fpSum = 0.0
        rows.sort { $0.anomalyScore > $1.anomalyScore }
        var result: [(threshold: Double, score: Double)] = []
        var threshold = 1.1
        for row in rows {
            if row.anomalyScore != threshold {
                result.append((threshold, windowSum + fpSum))
                threshold = row.anomalyScore
            }
            if let w = row.window {
                if row.weight > best[w] {
                    windowSum += row.weight - best[w]
                    best[w] = row.weight
                }
            } else {
                fpSum += row.weight
            }
        }
        result.append((threshold, windowSum + fpSum))
        return result
    }

    /// Raw score of the corpus when every row scoring at least `threshold` is a detection.
    public static func rawScore(_ files: [NABFile], profile: NABProfile, threshold: Double,
                                probationPercent: Double = defaultProbationPercent) -> Double {
        let table = sweep(files, profile: profile, probationPercent: probationPercent)
        // Rows are ordered by falling threshold; the last one at or above `threshold` applies.
        var score = table[0].score
        for entry in table where entry.threshold >= threshold { score = entry.score }
        return score
    }

    /// Optimises the corpus threshold for `profile` and normalises the score to 0–100.
    public static func evaluate(_ files: [NABFile], profile: NABProfile,
                                probationPercent: Double = defaultProbationPercent) -> NABResult {
        let table = sweep(files, profile: profile, probationPercent: probationPercent)
        var best = table[0]
        for entry in table.dropFirst() where entry.score > best.score { best = entry }
        let null = table[0].score
        let perfect = Double(files.reduce(0) { $0 + $1.windows.count }) * profile.tpWeight
        let normalized = perfect == null ? 0 : 100 * (best.score - null) / (perfect - null)
        return NABResult(profile: profile, threshold: best.threshold, raw: best.score, null: null,
                         perfect: perfect, normalized: normalized, files: files.count)
    }
}

extension NABScorer {
    /// One held-out group of files: the candidate and threshold chosen on the other groups, and
    /// the score they earn on this one.
    public struct Fold: Sendable, Equatable {
        public var group: Int
        public var candidate: Int
        public var threshold: Double
        public var raw: Double
        public var null: Double
        public var perfect: Double
        public var normalized: Double
    }

    public struct CrossValidated: Sendable, Equatable {
        /// The held-out raw scores summed and normalised against the summed null and perfect
        /// scores: the corpus score of a detector whose settings and threshold never saw the
        /// file being scored.
        public var normalized: Double
        public var folds: [Fold]
    }

    /// Leave-one-group-out: `files[candidate]` are the same files scored by each candidate
    /// setting, `groups[file]` their group (a NAB category). For each group, the candidate and
    /// threshold with the best raw score on the other groups are chosen (ties to the lower
    /// candidate) and scored on it.
    public static func crossValidate(_ files: [[NABFile]], groups: [Int], profile: NABProfile,
                                     probationPercent: Double = defaultProbationPercent) -> CrossValidated {
        let distinct = Array(Set(groups)).sorted()
        var folds: [Fold] = []
        for group in distinct {
            let training = groups.indices.filter { groups[$0] != group }
            let heldOut = groups.indices.filter { groups[$0] == group }
            var chosen = (candidate: 0, threshold: 1.1, score: -Double.infinity)
            for (candidate, scored) in files.enumerated() {
                let result = evaluate(training.map { scored[$0] }, profile: profile, probationPercent: probationPercent)
                if result.raw > chosen.score { chosen = (candidate, result.threshold, result.raw) }
            }
            let test = heldOut.map { files[chosen.candidate][$0] }
            let reference = evaluate(test, profile: profile, probationPercent: probationPercent)
            let raw = rawScore(test, profile: profile, threshold: chosen.threshold, probationPercent: probationPercent)
            let span = reference.perfect - reference.null
            folds.append(Fold(group: group, candidate: chosen.candidate, threshold: chosen.threshold, raw: raw,
                              null: reference.null, perfect: reference.perfect,
                              normalized: span == 0 ? 0 : 100 * (raw - reference.null) / span))
        }
        let raw = folds.reduce(0) { $0 + $1.raw }, null = folds.reduce(0) { $0 + $1.null }
        let perfect = folds.reduce(0) { $0 + $1.perfect }
        return CrossValidated(normalized: perfect == null ? 0 : 100 * (raw - null) / (perfect - null), folds: folds)
    }
}
