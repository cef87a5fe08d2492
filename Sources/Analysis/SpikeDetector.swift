import Foundation

/// A streaming, causal spike and level-shift detector for one series of buckets (e.g. error counts
/// per minute).
///
/// Counts (``Configuration/isCount``, the shipped per-minute configuration) go to the count
/// model (``CountModel``): negative-binomial tail probabilities of the sums of the last few
/// buckets. What follows describes the general detector, for any series.
///
/// Each ``update(_:)`` sees one new bucket and returns a ``Point`` computed from that bucket and the
/// past only, in the style of ML.NET's `DetectIidSpike` (alert, score, p-value) plus an expected
/// value and a spike / level-shift distinction.
///
/// Two robust predictors run side by side and the one with the smaller recent error wins:
/// - level: median of the last `baselineWindow` buckets, scale from the MAD;
/// - seasonal (when `seasonPeriod` is set): median of the buckets one and two periods ago (±1
///   bucket), scale from the MAD of its recent (winsorised) residuals.
/// The bucket's robust z-score is combined with the median z of the last `shortWindow` buckets (a
/// short-term against long-term comparison that catches sustained changes a single point does not).
/// Two optional strengths serve general series (``Configuration/forBucketWidth(seconds:)``):
/// - novelty: a bucket's own deviation is discounted by how many of the last `noveltyMemory`
///   buckets already went as far in the same direction, so recurring peaks stop alerting;
/// - noise level: the log ratio of the recent to the long-term mean step between buckets, which
///   catches a series that starts to oscillate (or goes flat) without a level change.
/// Strengths are calibrated against the series' own recent tail, so one threshold fits series of
/// very different noise.
/// After an alert the detector stays quiet for `refractoryBuckets` buckets so that one change gives
/// one alert, and a confirmed level shift re-bases the baseline on the new level.
///
/// State is bounded (a ring of at most `max(baselineWindow, 2 * seasonPeriod + 2, noveltyMemory)`
/// values plus rings of residuals, steps, strengths and z-scores) and `Codable`, so it can be
/// persisted between runs; it can also be rebuilt by replaying that many recent buckets.
public struct SpikeDetector: Sendable, Codable, Equatable {
    /// Which deviations count: error counts only matter when they go up.
    public enum Direction: String, Sendable, Codable, Equatable {
        case up, down, both
    }

    public struct Configuration: Sendable, Codable, Equatable {
        /// Buckets per day (1440 for 1-minute buckets), or nil for no seasonal predictor.
        public var seasonPeriod: Int?
        /// Buckets in the level baseline (median / MAD).
        public var baselineWindow: Int
        /// Buckets in the short-term window used to detect sustained changes.
        public var shortWindow: Int
        /// Buckets seen before any score is produced.
        public var warmup: Int
        /// An alert needs the bucket to reach at least this value (0 disables the gate).
        public var minimumCount: Double
        /// An alert needs `value >= expected * (1 + minimumRelativeIncrease)` for upward changes.
        public var minimumRelativeIncrease: Double
        /// An alert needs a p-value below this.
        public var alertPValue: Double
        public var direction: Direction
        /// Buckets after an alert during which scores are muted and no new alert is raised.
        public var refractoryBuckets: Int
        /// The combined z-score at which `score` reaches 0.5 (`score = z / (z + scoreScale)`).
        public var scoreScale: Double
        /// Median z over the short window at or above which a change counts as a level shift.
        public var levelShiftZ: Double
        /// The values are event counts, and only increases matter: the detector is then the
        /// count model (``CountModel``), which tests the sums of the last 1, 2, 5, 15 and 60
        /// buckets against a negative binomial whose mean is the last `baselineWindow`
        /// buckets' (or, for bursts that recur daily, the days before's) and whose extra
        /// variance it learns; `minimumCount`, `minimumRelativeIncrease`, `alertPValue`,
        /// `refractoryBuckets`, `warmup`, `scoreScale` and `seasonPeriod` keep their meaning,
        /// and the robust predictors' settings do not apply.
        public var isCount: Bool
        /// Buckets of past strengths used to calibrate the tail.
        public var calibrationWindow: Int
        /// The quantile of past strengths that is mapped to `calibrationZ`.
        public var calibrationQuantile: Double
        /// Strengths are divided by `max(1, quantile / calibrationZ)`.
        public var calibrationZ: Double
        /// The point strength is divided by `(1 + n) ^ noveltyPower`, n being the number of the
        /// last `noveltyMemory` buckets that already reached `expected + noveltyFraction * residual`
        /// in the same direction; 0 disables. Large powers make it a gate: only new extremes count.
        public var noveltyPower: Double
        /// Buckets remembered for the novelty test (the value ring grows to hold them).
        public var noveltyMemory: Int
        /// The share of the current deviation a past bucket must reach to count as precedent.
        public var noveltyFraction: Double
        /// Weight of the noise-level change (log2 of the ratio of the recent to the long-term mean
        /// step); 0 disables.
        public var volatilityWeight: Double
        /// Buckets in the recent mean step.
        public var volatilityWindow: Int

        public init(
            seasonPeriod: Int?, baselineWindow: Int = 288, shortWindow: Int = 6, warmup: Int = 30,
            minimumCount: Double = 0, minimumRelativeIncrease: Double = 0, alertPValue: Double = 1e-4,
            direction: Direction = .both, refractoryBuckets: Int = 60, scoreScale: Double = 4,
            levelShiftZ: Double = 3, calibrationWindow: Int = 2000, calibrationQuantile: Double = 0.99,
            calibrationZ: Double = 3, isCount: Bool = false, noveltyPower: Double = 0,
            noveltyMemory: Int = 0, noveltyFraction: Double = 0.9, volatilityWeight: Double = 0,
            volatilityWindow: Int = 12
        ) {
            self.noveltyPower = max(noveltyPower, 0)
            self.noveltyMemory = max(noveltyMemory, 0)
            self.noveltyFraction = min(max(noveltyFraction, 0), 1)
            self.volatilityWeight = max(volatilityWeight, 0)
            self.volatilityWindow = max(volatilityWindow, 1)
            self.isCount = isCount
            self.calibrationWindow = max(calibrationWindow, 1)
            self.calibrationQuantile = min(max(calibrationQuantile, 0), 1)
            self.calibrationZ = calibrationZ
            self.seasonPeriod = seasonPeriod
            self.baselineWindow = max(baselineWindow, 8)
            self.shortWindow = max(shortWindow, 1)
            self.warmup = max(warmup, 4)
            self.minimumCount = minimumCount
            self.minimumRelativeIncrease = minimumRelativeIncrease
            self.alertPValue = alertPValue
            self.direction = direction
            self.refractoryBuckets = max(refractoryBuckets, 0)
            self.scoreScale = scoreScale
            self.levelShiftZ = levelShiftZ
        }

        /// Per-minute error counts (the count model): the last hour as the baseline, daily
        /// recurrence, upward changes only, an alert where pure noise gives one minute in a
        /// million (a false alert in about two years of a series; `faultline eval incidents`
        /// measures none on 100 days of pure noise), and gates so that a handful of errors in
        /// a quiet series never alerts.
        public static let `default` = Configuration(
            seasonPeriod: 1440, baselineWindow: 60, shortWindow: 5, warmup: 30,
            minimumCount: 5, minimumRelativeIncrease: 0.5, alertPValue: 1e-6, direction: .up,
            refractoryBuckets: 30, isCount: true)

        /// A general configuration for a series sampled every `bucketSeconds` seconds, in both
        /// directions and without count gates; every window is a fixed span of time, converted to
        /// buckets:
        /// - season: one day, when at least 4 buckets fit in a day;
        /// - level baseline, novelty memory and noise level: one week (at most 2016 buckets, which
        ///   bounds the per-bucket cost; without a season, 2016 buckets);
        /// - quiet period after an alert: 96 buckets whatever their width (the share of buckets an
        ///   anomaly's aftermath spoils does not depend on the clock);
        /// - only new extremes count as spikes (`noveltyPower` 10 is practically a gate) and a
        ///   change of the noise level counts (`volatilityWeight` 2).
        /// Measured on the NAB subset in `../shared/data/nab`: standard profile 73.25.
        public static func forBucketWidth(seconds bucketSeconds: Double) -> Configuration {
            let perDay = bucketSeconds > 0 ? Int((86_400 / bucketSeconds).rounded()) : 0
            let seasonal = perDay >= 4
            let week = seasonal ? min(7 * perDay, 2016) : 2016
            return Configuration(
                seasonPeriod: seasonal ? perDay : nil, baselineWindow: week, shortWindow: 8,
                alertPValue: 1.5e-4, refractoryBuckets: 96,
                noveltyPower: 10, noveltyMemory: week, noveltyFraction: 0.9, volatilityWeight: 2,
                volatilityWindow: 12)
        }
    }

    /// The detector's verdict on one bucket.
    public struct Point: Sendable, Equatable, Codable {
        public var value: Double
        /// The baseline the bucket was compared with.
        public var expected: Double
        /// Anomaly strength in [0, 1]; muted to 0 during the quiet period after an alert and when a
        /// gate blocks the bucket.
        public var score: Double
        /// Probability of a deviation at least this large under the baseline (normal approximation).
        public var pValue: Double
        /// A short excursion: this bucket deviates, the short window as a whole does not (yet).
        public var isSpike: Bool
        /// A sustained change: the median of the short window deviates.
        public var isLevelShift: Bool
        /// The bucket passes the p-value, direction and count gates outside a quiet period.
        public var isAlert: Bool

        public init(value: Double, expected: Double, score: Double, pValue: Double,
                    isSpike: Bool, isLevelShift: Bool, isAlert: Bool) {
            self.value = value
            self.expected = expected
            self.score = score
            self.pValue = pValue
            self.isSpike = isSpike
            self.isLevelShift = isLevelShift
            self.isAlert = isAlert
        }
    }

    /// A fixed-capacity FIFO of doubles that encodes as a plain array.
    struct Ring: Sendable, Codable, Equatable {
        var capacity: Int
        var storage: [Double] = []
        var head = 0  // index of the oldest element once full

        init(capacity: Int) { self.capacity = max(capacity, 1) }

        var count: Int { storage.count }

        mutating func append(_ value: Double) {
            if storage.count < capacity {
                storage.append(value)
            } else {
                storage[head] = value
                head = (head + 1) % capacity
            }
        }

        /// The element `lag` steps back (1 = most recent).
        func back(_ lag: Int) -> Double? {
            guard lag >= 1, lag <= storage.count else { return nil }
            if storage.count < capacity { return storage[storage.count - lag] }
            return storage[(head - lag + capacity * 2) % capacity]
        }

        /// The most recent `n` elements (oldest first).
        func last(_ n: Int) -> [Double] {
            var out: [Double] = []
            out.reserveCapacity(min(n, storage.count))
            forEachLast(n) { out.append($0) }
            return out
        }

        /// Calls `body` with the most recent `n` elements, oldest first.
        func forEachLast(_ n: Int, _ body: (Double) -> Void) {
            let n = min(n, storage.count)
            guard n > 0 else { return }
            // The ring's time order is storage[head...] then storage[..<head].
            let start = (head + storage.count - n) % storage.count
            storage.withUnsafeBufferPointer { buffer in
                if start + n <= buffer.count {
                    for i in start..<(start + n) { body(buffer[i]) }
                } else {
                    for i in start..<buffer.count { body(buffer[i]) }
                    for i in 0..<(start + n - buffer.count) { body(buffer[i]) }
                }
            }
        }

        /// Replaces the element `lag` steps back (1 = most recent), which must exist.
        mutating func setBack(_ lag: Int, _ value: Double) {
            precondition(lag >= 1 && lag <= storage.count)
            if storage.count < capacity {
                storage[storage.count - lag] = value
            } else {
                storage[(head - lag + capacity * 2) % capacity] = value
            }
        }

        /// The element the next append overwrites, once the ring is full.
        var evicted: Double? { storage.count == capacity ? storage[head] : nil }

        mutating func keepLast(_ n: Int) {
            let kept = last(n)
            storage = kept
            head = 0
        }
    }

    public private(set) var configuration: Configuration
    var values: Ring
    var residuals: Ring
    /// Squared, winsorised prediction errors of each predictor: recurring daily peaks are rare
    /// enough to leave the level MAD small, but they dominate the level predictor's mean error.
    var levelErrors: Ring
    var seasonalErrors: Ring
    var recentZ: Ring
    /// Recent combined strengths, to calibrate against the series' own tail (heavy-tailed series
    /// deviate "significantly" every day; what matters is deviating more than they usually do).
    var strengths: Ring
    var quietRemaining = 0
    /// Absolute steps between consecutive buckets, for the noise level.
    var absSteps: Ring
    /// Buckets since the last level shift; the level baseline never looks further back.
    var sinceShift = Int.max / 2
    /// The last `baselineWindow` values, the absolute residuals and the strengths, each in
    /// order: the medians and the quantile every step takes are read from them.
    var sortedLevel = SortedWindow()
    var sortedAbsResiduals = SortedWindow()
    var sortedStrengths = SortedWindow()

    /// The model of counts, for `isCount` configurations (the rings above then stay empty).
    var counts: CountModel?

    public init(configuration: Configuration = .default) {
        self.configuration = configuration
        if configuration.isCount {
            counts = CountModel(baselineWindow: configuration.baselineWindow, season: configuration.seasonPeriod)
            (values, residuals, levelErrors, seasonalErrors) = (Ring(capacity: 1), Ring(capacity: 1), Ring(capacity: 1), Ring(capacity: 1))
            (recentZ, strengths, absSteps) = (Ring(capacity: 1), Ring(capacity: 1), Ring(capacity: 1))
            return
        }
        let season = configuration.seasonPeriod ?? 0
        values = Ring(capacity: max(configuration.baselineWindow, season > 0 ? 2 * season + 2 : 0,
                                    configuration.noveltyPower > 0 ? configuration.noveltyMemory : 0))
        residuals = Ring(capacity: configuration.baselineWindow)
        levelErrors = Ring(capacity: configuration.baselineWindow)
        seasonalErrors = Ring(capacity: configuration.baselineWindow)
        recentZ = Ring(capacity: configuration.shortWindow)
        strengths = Ring(capacity: configuration.calibrationWindow)
        absSteps = Ring(capacity: configuration.volatilityWeight > 0 ? configuration.baselineWindow : 1)
    }

    /// Runs a fresh detector over a whole series.
    public static func scores(of series: [Double], configuration: Configuration = .default) -> [Point] {
        var detector = SpikeDetector(configuration: configuration)
        return series.map { detector.update($0) }
    }

    public mutating func update(_ value: Double) -> Point {
        if counts != nil { return updateCounts(value) }
        let config = configuration
        defer { sinceShift += 1 }
        guard value.isFinite else {
            return Point(value: value, expected: value, score: 0, pValue: 1, isSpike: false, isLevelShift: false, isAlert: false)
        }
        if values.count < config.warmup {
            let expected = values.count > 0 ? Self.median(values.storage) : value
            appendValue(value)
            return Point(value: value, expected: expected, score: 0, pValue: 1, isSpike: false, isLevelShift: false, isAlert: false)
        }

        // Level predictor.
        let windowLength = min(config.baselineWindow, max(sinceShift, config.shortWindow), values.count)
        let (levelMedian, levelScale) = levelLocation(windowLength)

        // Seasonal predictor.
        var seasonal: (expected: Double, residual: Double)?
        if let period = config.seasonPeriod, period >= 2, values.count >= period + 1 {
            var candidates: [Double] = []
            for cycle in 1...2 {
                for offset in -1...1 {
                    if let v = values.back(cycle * period + offset) { candidates.append(v) }
                }
            }
            let expected = Self.median(candidates)
            seasonal = (expected, value - expected)
        }

        var expected = levelMedian
        var residual = value - levelMedian
        var scale = levelScale
        if let seasonal, residuals.count >= config.warmup {
            let seasonalScale = residualScale()
            let levelError = levelErrors.storage.reduce(0, +) / Double(max(levelErrors.count, 1))
            let seasonalError = seasonalErrors.storage.reduce(0, +) / Double(max(seasonalErrors.count, 1))
            if seasonalErrors.count >= config.warmup && seasonalError < 0.64 * levelError {
                expected = seasonal.expected
                residual = seasonal.residual
                scale = seasonalScale
            }
        }
        if config.isCount { scale = max(scale, (max(expected, 0) + 1).squareRoot()) }
        var z = residual / scale
        if config.isCount, z > 2 {
            if expected < Self.exactTailBelow {
                // A few errors where fewer are expected: the normal approximation's tail is far
                // too thin (10 where 1.5 are expected happens one minute in 240,000, not one in 26
                // million), so z is never more than the normal quantile of the exact Poisson
                // tail. Its mean is at least the window's mean: the median of small counts sits
                // below their mean.
                var windowSum = 0.0
                values.forEachLast(windowLength) { windowSum += $0 }
                let windowMean = windowSum / Double(max(windowLength, 1))
                let mean = max(expected, windowMean, 0.5)
                z = min(z, Self.normalQuantile(upperTail: Self.poissonUpperTail(value.rounded(.up), mean: mean)))
            } else {
                // Many errors: beyond counting noise, the rate itself varies (bursts, retries),
                // and that noise is multiplicative and skewed to the right, so a deviation of
                // four or five scales up is far more common than the normal tail says. z is never
                // more than the Wilson–Hilferty (cube-root) normal score of the value under a
                // gamma-distributed rate with the observed coefficient of variation.
                let cv = scale / expected
                z = min(z, (cbrt(value / expected) - (1 - cv * cv / 9)) / (cv / 3))
            }
        }
        let zs = recentZ.last(config.shortWindow - 1) + [z]
        let shortZ = zs.count >= config.shortWindow ? Self.median(zs) : 0

        let directional: (Double) -> Double = { value in
            switch config.direction {
            case .both: return abs(value)
            case .up: return max(value, 0)
            case .down: return max(-value, 0)
            }
        }
        var pointStrength = directional(z)
        if config.noveltyPower > 0, pointStrength > 0 {
            // How many remembered buckets were at least as extreme in the same direction: a value the
            // series has already reached recently (a recurring peak) is no news however far it is from
            // the baseline.
            var reached = 0
            let bar = expected + config.noveltyFraction * residual
            if residual > 0 {
                values.forEachLast(config.noveltyMemory) { if $0 >= bar { reached += 1 } }
            } else {
                values.forEachLast(config.noveltyMemory) { if $0 <= bar { reached += 1 } }
            }
            pointStrength /= pow(1 + Double(reached), config.noveltyPower)
        }
        let shiftStrength = directional(shortZ)
        var volatilityStrength = 0.0
        if config.volatilityWeight > 0, let previous = values.back(1) {
            // A change of the noise level (the series starts to oscillate, or goes flat) moves neither
            // the median nor, often, any single bucket far enough; the mean step size does.
            let step = abs(value - previous)
            let longSteps = absSteps.storage
            if longSteps.count >= config.warmup {
                let recent = absSteps.last(config.volatilityWindow - 1) + [step]
                let short = recent.reduce(0, +) / Double(recent.count)
                let long = longSteps.reduce(0, +) / Double(longSteps.count)
                let floor = max(1e-3 * abs(levelMedian), 1e-9)
                let ratio = (short + floor) / (long + floor)
                // Error counts only matter when they get noisier; general series either way.
                let change = config.direction == .both ? max(ratio, 1 / max(ratio, 1e-9)) : ratio
                volatilityStrength = config.volatilityWeight * log2(max(change, 1))
            }
            absSteps.append(step)
        }
        let rawStrength = max(pointStrength, 1.5 * shiftStrength, volatilityStrength)
        var tail = 0.0
        if strengths.count >= config.warmup {
            let count = strengths.count
            tail = sortedStrengths[min(count - 1, Int(Double(count) * config.calibrationQuantile))]
        }
        let combined = rawStrength / max(1, tail / config.calibrationZ)
        let oneSided = config.direction != .both
        let pValue = min(1, erfc(combined / 2.0.squareRoot()) * (oneSided ? 0.5 : 1))
        var score = combined / (combined + config.scoreScale)

        let isLevelShift = shiftStrength >= config.levelShiftZ
        let isSpike = !isLevelShift && pValue < config.alertPValue
        let increase = value - expected
        var gated = config.minimumCount > 0 && value < config.minimumCount
        if config.direction == .up && config.minimumRelativeIncrease > 0 {
            gated = gated || increase <= 0 || value < expected * (1 + config.minimumRelativeIncrease)
        }
        var isAlert = false
        if gated {
            score = 0
        } else if quietRemaining > 0 {
            score = 0
        } else if pValue < config.alertPValue {
            isAlert = true
            quietRemaining = config.refractoryBuckets + 1
        }
        if quietRemaining > 0 { quietRemaining -= 1 }

        // State update: residuals are winsorised so an anomaly does not widen its own yardstick.
        appendValue(value)
        if let seasonal {
            let limit = 5 * max(scale, levelScale)
            let kept = min(max(seasonal.residual, -limit), limit)
            if let old = residuals.evicted { sortedAbsResiduals.remove(abs(old)) }
            residuals.append(kept)
            sortedAbsResiduals.insert(abs(kept))
            let levelResidual = min(abs(value - levelMedian), 10 * levelScale)
            levelErrors.append(levelResidual * levelResidual)
            let seasonalScale = residualScale()
            let seasonalResidual = min(abs(seasonal.residual), 10 * seasonalScale)
            seasonalErrors.append(seasonalResidual * seasonalResidual)
        }
        recentZ.append(max(min(z, 50), -50))
        let strength = min(rawStrength, 1000)
        if let old = strengths.evicted { sortedStrengths.remove(old) }
        strengths.append(strength)
        sortedStrengths.insert(strength)
        if isLevelShift && sinceShift > config.shortWindow && pValue < config.alertPValue {
            // Re-base on the new level: the old one would keep every following bucket anomalous.
            sinceShift = 0
            recentZ.keepLast(0)
        }
        return Point(value: value, expected: expected, score: min(max(score, 0), 1), pValue: pValue,
                     isSpike: isSpike, isLevelShift: isLevelShift, isAlert: isAlert)
    }

    /// One bucket of counts (``CountModel``): the most significant window that passes the gates
    /// decides; upward changes only.
    private mutating func updateCounts(_ value: Double) -> Point {
        let config = configuration
        guard value.isFinite else {
            return Point(value: value, expected: value, score: 0, pValue: 1, isSpike: false, isLevelShift: false, isAlert: false)
        }
        let seen = counts!.seen
        // The negative binomial's upper tail is heavier than the normal's: below z 3 (p 0.0013)
        // no window can reach an alert's p-value, and the normal tail serves for the score.
        // The model keeps running sums: a value beyond any real count (a billion a bucket) is
        // taken as that, so one absurd value cannot swamp the sums' precision for good.
        let (tests, expected) = counts!.update(min(max(value, 0), Self.largestCount)) { $0.z >= 3 }
        guard let expected, seen >= config.warmup else {
            return Point(value: value, expected: expected ?? value, score: 0, pValue: 1, isSpike: false, isLevelShift: false, isAlert: false)
        }
        var best: CountModel.WindowTest?
        for test in tests where test.sum > test.mean {
            let passes = test.sum >= config.minimumCount && test.sum >= test.mean * (1 + config.minimumRelativeIncrease)
            if passes, best == nil || test.pValue < best!.pValue { best = test }
        }
        let pValue = min(1, (best?.pValue ?? 1) * Double(CountModel.windows.count))
        let z = Self.normalQuantile(upperTail: pValue)
        let significant = pValue < config.alertPValue
        let isLevelShift = significant && best!.length >= 5
        let isSpike = significant && !isLevelShift
        var isAlert = false
        var score = z / (z + config.scoreScale)
        if quietRemaining > 0 {
            score = 0
        } else if significant {
            isAlert = true
            quietRemaining = config.refractoryBuckets + 1
        }
        if quietRemaining > 0 { quietRemaining -= 1 }
        // A confirmed level shift, alerted or within the quiet period, becomes the new level.
        if isLevelShift { counts!.rebase(keeping: best!.length) }
        return Point(value: value, expected: expected, score: min(max(score, 0), 1), pValue: pValue,
                     isSpike: isSpike, isLevelShift: isLevelShift, isAlert: isAlert)
    }

    /// The largest count a bucket is taken to hold in the count model.
    static let largestCount = 1e9

    /// Expected counts below which the exact Poisson tail bounds a bucket's z-score; from it
    /// up, the counting noise is small beside the rate's own and a gamma rate's tail bounds it.
    static let exactTailBelow = 50.0

    /// P(X ≥ k) for X ~ Poisson(mean), k > mean: the sum of the terms from k up.
    static func poissonUpperTail(_ k: Double, mean: Double) -> Double {
        guard k > 0 else { return 1 }
        var term = exp(-mean + k * log(mean) - lgamma(k + 1))
        var sum = 0.0
        var j = k
        while term > 0 && term > sum * 1e-17 && j < k + 10_000 {
            sum += term
            j += 1
            term *= mean / j
        }
        return min(sum, 1)
    }

    /// The z with P(Z ≥ z) = p for a standard normal Z (Acklam's rational approximation,
    /// relative error below 1.2e-9); p is clamped to [1e-300, 0.5], so z is in [0, 37].
    static func normalQuantile(upperTail p: Double) -> Double {
        let q = min(max(p, 1e-300), 0.5)
        let c: [Double] = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                           4.374664141464968e+00, 2.938163982698783e+00]
        let d: [Double] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        if q < 0.02425 {
            let t = (-2 * log(q)).squareRoot()
            return -(((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1)
        }
        let a: [Double] = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                           -3.066479806614716e+01, 2.506628277459239e+00]
        let b: [Double] = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                           -1.328068155288572e+01]
        let u = q - 0.5
        let r = u * u
        let x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * u
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        return -x
    }

    /// Appends to the values and to the sorted copy of their last `baselineWindow`.
    private mutating func appendValue(_ value: Double) {
        if let old = values.back(configuration.baselineWindow) { sortedLevel.remove(old) }
        values.append(value)
        sortedLevel.insert(value)
    }

    /// `location(values.last(n))`, from the sorted copy when the window is all of it.
    private func levelLocation(_ n: Int) -> (Double, Double) {
        guard n == sortedLevel.count else { return Self.location(values.last(n)) }
        let m = sortedLevel.median
        var meanAbs = 0.0
        values.forEachLast(n) { meanAbs += abs($0 - m) }
        meanAbs /= Double(max(n, 1))
        let mad = 1.4826 * sortedLevel.medianDistance(from: m)
        return (m, max(mad, 1.2533 * meanAbs * 0.5, 1e-3 * abs(m), 1e-6))
    }

    /// `location(residuals.storage, centred: true).1`, from the sorted absolute residuals.
    private func residualScale() -> Double {
        var meanAbs = 0.0
        for x in residuals.storage { meanAbs += abs(x - 0) }
        meanAbs /= Double(max(residuals.count, 1))
        let mad = 1.4826 * sortedAbsResiduals.median
        return max(mad, 1.2533 * meanAbs * 0.5, 1e-3 * abs(0.0), 1e-6)
    }

    /// Median and a robust scale (1.4826 MAD, floored by the mean absolute deviation and a tiny
    /// fraction of the level so that a flat history does not give an infinite z).
    static func location(_ xs: [Double], centred: Bool = false) -> (Double, Double) {
        let m = centred ? 0 : median(xs)
        var meanAbs = 0.0
        for x in xs { meanAbs += abs(x - m) }
        meanAbs /= Double(max(xs.count, 1))
        let mad = 1.4826 * withUnsafeTemporaryAllocation(of: Double.self, capacity: max(xs.count, 1)) { scratch -> Double in
            for (i, x) in xs.enumerated() { scratch[i] = abs(x - m) }
            return OrderStatistics.median(UnsafeMutableBufferPointer(rebasing: scratch[0..<xs.count]))
        }
        let scale = max(mad, 1.2533 * meanAbs * 0.5, 1e-3 * abs(m), 1e-6)
        return (m, scale)
    }

    static func median(_ xs: [Double]) -> Double {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: max(xs.count, 1)) { scratch in
            _ = scratch.initialize(fromContentsOf: xs)
            return OrderStatistics.median(UnsafeMutableBufferPointer(rebasing: scratch[0..<xs.count]))
        }
    }
}

/// Order statistics by selection (Hoare's quickselect), linear on average where sorting is
/// `n log n`: the detector takes several medians of a few hundred values and a quantile of a
/// few thousand at every step. The values are those `sorted()` would give, bit for bit.
enum OrderStatistics {
    /// The `k`-th smallest (from 0) of `xs`, rearranging `xs` so that no element before index
    /// `k` is larger and none after it smaller. `xs` must hold no NaN.
    static func select(_ xs: UnsafeMutableBufferPointer<Double>, _ k: Int) -> Double {
        precondition(k >= 0 && k < xs.count)
        var lo = 0
        var hi = xs.count - 1
        while hi > lo {
            let mid = lo + (hi - lo) / 2
            if xs[mid] < xs[lo] { xs.swapAt(mid, lo) }
            if xs[hi] < xs[lo] { xs.swapAt(hi, lo) }
            if xs[hi] < xs[mid] { xs.swapAt(hi, mid) }
            let pivot = xs[mid]
            var i = lo
            var j = hi
            while i <= j {
                while xs[i] < pivot { i += 1 }
                while pivot < xs[j] { j -= 1 }
                if i <= j {
                    xs.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // xs[lo...j] <= pivot <= xs[i...hi], and everything between equals the pivot.
            if k <= j {
                hi = j
            } else if k >= i {
                lo = i
            } else {
                break
            }
        }
        return xs[k]
    }

    /// The median (the mean of the middle two for an even count; 0 when empty), rearranging `xs`.
    static func median(_ xs: UnsafeMutableBufferPointer<Double>) -> Double {
        guard !xs.isEmpty else { return 0 }
        let mid = xs.count / 2
        let upper = select(xs, mid)
        guard xs.count % 2 == 0 else { return upper }
        var lower = xs[0]
        for i in 1..<mid where xs[i] > lower { lower = xs[i] }
        return (lower + upper) / 2
    }
}
