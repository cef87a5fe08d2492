import Foundation

/// The spike detector's model of event counts per bucket (``SpikeDetector/Configuration/isCount``):
/// error counts are overdispersed counts, so a bucket — or the sum of the last few — is tested
/// against a negative binomial whose mean is the recent level and whose extra variance is
/// learnt from the series itself.
///
/// - **Mean.** The mean count per bucket over the `baselineWindow` buckets before the tested
///   window (never before the last level shift). Values enter it capped at four standard
///   deviations above the level then expected, so a spike does not lift its own yardstick; it
///   is never below ``quietFloor``. Short windows (``shortWindowsUpTo``) expect instead what
///   they held at this time on the days before, when that is clearly more: a burst that
///   recurs daily is no news.
/// - **Windows.** The sums of the last 1, 2, 5, 15 and 60 buckets are each tested: a one-minute
///   burst stands out alone, a doubling of a quiet service only over an hour. The sum's
///   variance is `m + φ·m²` for a sum of mean `m`, plus the baseline's own sampling error.
///   Each window length has its own overdispersion `φ`, learnt from that window's past
///   squared errors (half-life about a day; windows anomalous by the current model do not
///   teach it). It takes in what counting noise does not: the rate's own variation, errors
///   that come in bursts over several buckets and the daily shape's drift over the window, so
///   a long window is exactly as sensitive as the series is steady over its length. Until
///   the series has shown how steady it is, `φ` leans on a wary prior (a rate varying by half
///   its mean from bucket to bucket, independently), whose weight fades over the first hours.
/// - **p-value.** The smallest of the windows' exact negative-binomial upper-tail probabilities,
///   times the number of windows (Bonferroni), so that alerts on pure noise stay as rare as
///   `alertPValue` says.
/// - **Verdict.** A bucket whose most significant window is one or two buckets long is a
///   spike; longer, a level shift, after which the mean is learnt anew from the new level.
///
/// State: rings of prefix sums (`baselineWindow + 61` values; the raw values' ring also two
/// days, for what recurs) and three numbers per window.
struct CountModel: Sendable, Codable, Equatable {
    /// The window lengths tested, in buckets.
    static let windows = [1, 2, 5, 15, 60]
    /// Windows up to this long are the short ones: they also expect what the same window held
    /// on the days before, so that a burst that recurs daily is no news. Longer windows watch
    /// for sustained changes and expect only the baseline (over an hour the days before would
    /// carry yesterday's incidents into today's expectation); they sum the values less what
    /// the bucket's own past days led to expect beyond the baseline, so a daily burst is no
    /// news to them either.
    static let shortWindowsUpTo = 5
    /// How far above the baseline's expectation, in standard deviations, the days before must
    /// have been for their median to be expected instead: their noise alone never lifts it.
    static let recurringZ = 2.0
    /// The mean is never below one event every two buckets: a few events after a silence are
    /// not news by themselves.
    static let quietFloor = 0.5
    /// Values enter the baseline capped at this many standard deviations above the level.
    static let winsorZ = 4.0
    /// Only windows within this many standard deviations of their mean teach `φ`; the squared
    /// errors kept are divided by the variance of a normal truncated there, so that `φ` is not
    /// biased low.
    static let learnBelowZ = 3.0
    static let truncatedVariance = 1 - 2 * 3 * exp(-4.5) / (2 * Double.pi).squareRoot() / 0.9973
    /// Weight of the prior `φ` in buckets, fading by `e` every as many buckets seen, and the
    /// prior of one bucket (a coefficient of variation of the rate of 0.5); a window of `L`
    /// buckets has `1/L` of it.
    static let priorWeight = 60.0
    static let priorDispersion = 0.25
    /// Per-bucket decay of the learnt dispersion: a half-life of about a day of minutes.
    static let decay = 1.0 / 1440

    let baselineWindow: Int
    /// Buckets per day, when the daily shape is used.
    let season: Int?
    /// Prefix sums of the values and of the capped values: `back(1)` is the sum of every
    /// bucket seen, so a window's sum is a difference. The values' reach two days back.
    var raw: SpikeDetector.Ring
    var capped: SpikeDetector.Ring
    /// Prefix sums of the values less what recurs daily (for the long windows).
    var adjusted: SpikeDetector.Ring
    var seen = 0
    /// Buckets since the last level shift (the mean never looks further back).
    var sinceShift = 0
    /// Per window: decayed sums of the excess squared error over the counting noise, of the
    /// squared means, and of the weights.
    var excess: [Double]
    var squaredMeans: [Double]
    var weights: [Double]

    init(baselineWindow: Int, season: Int?) {
        self.baselineWindow = max(baselineWindow, 8)
        self.season = season.flatMap { $0 >= 2 ? $0 : nil }
        let capacity = self.baselineWindow + Self.windows.last! + 1
        raw = SpikeDetector.Ring(capacity: capacity + (self.season.map { 2 * $0 + 1 } ?? 0))
        capped = SpikeDetector.Ring(capacity: capacity)
        adjusted = SpikeDetector.Ring(capacity: capacity)
        raw.append(0)
        capped.append(0)
        adjusted.append(0)
        excess = Array(repeating: 0, count: Self.windows.count)
        squaredMeans = excess
        weights = excess
    }

    /// The test of one window at the current bucket.
    struct WindowTest {
        var length: Int
        var sum: Double
        /// Expected sum.
        var mean: Double
        var dispersion: Double
        var pValue: Double
        /// Normal-approximation z of the sum.
        var z: Double
    }

    /// Tests the windows ending at `value` (not yet added), then adds it. Returns the tests of
    /// the windows that had enough history, and the expected value of the bucket itself.
    /// `exact` decides, from a window's normal z, whether its exact tail is worth computing
    /// (the negative binomial's upper tail is heavier than the normal's, so a small z is never
    /// significant).
    ///
    /// A window's expected sum is the baseline's mean per bucket times its length; a short
    /// window's is the median of what it held one and two days before (or one, while there is
    /// only one; shifted by up to a bucket either way) when that is more.
    mutating func update(_ value: Double, exact: (WindowTest) -> Bool) -> (tests: [WindowTest], expected: Double?) {
        var tests: [WindowTest] = []
        tests.reserveCapacity(Self.windows.count)
        var expected: Double?
        let history = seen  // buckets before this one
        var cappedValue = value, adjustedValue = value
        for (index, length) in Self.windows.enumerated() {
            guard let (level, available) = baselineLevel(length: length, history: history) else { continue }
            var mean = level * Double(length)
            let phi = dispersion(index)
            // The baseline's own sampling error, as the sum's variance it adds: its buckets
            // are counts too, and `length / available` of them stand for each one summed.
            let baselineVariance = Double(length * length) / Double(available) * (level + dispersion(0) * level * level)
            let short = length <= Self.shortWindowsUpTo
            if short, let season, history >= season + length + 1 {
                let days = min(2, (history - length - 1) / season)
                let recurring = withUnsafeTemporaryAllocation(of: Double.self, capacity: 6) { past -> Double in
                    var count = 0
                    for day in 1...days {
                        for shift in -1...1 {
                            let end = day * season + shift
                            past[count] = raw.back(end)! - raw.back(end + length)!
                            count += 1
                        }
                    }
                    return OrderStatistics.median(UnsafeMutableBufferPointer(rebasing: past[0..<count]))
                }
                if recurring > mean + Self.recurringZ * (mean + phi * mean * mean).squareRoot() { mean = recurring }
            }
            if index == 0 {
                expected = mean
                // The value as the baseline takes it: capped at four standard deviations
                // above the bucket's expectation. The long windows take it less what the
                // days before lead to expect beyond the baseline.
                cappedValue = min(value, mean + Self.winsorZ * (mean + phi * mean * mean).squareRoot())
                adjustedValue = value - max(0, min(value, mean) - level)
            }
            let sum = short ? value + (raw.back(1)! - raw.back(length)!) : adjustedValue + (adjusted.back(1)! - adjusted.back(length)!)
            let variance = mean + phi * mean * mean + baselineVariance
            let z = (sum - mean) / variance.squareRoot()
            let effective = (variance - mean) / (mean * mean)
            // Learn the dispersion from the squared error, unless the window is anomalous by
            // the current model: an incident must not widen its own yardstick.
            if abs(z) < Self.learnBelowZ {
                excess[index] = excess[index] * (1 - Self.decay) + ((sum - mean) * (sum - mean) / Self.truncatedVariance - mean - baselineVariance)
                squaredMeans[index] = squaredMeans[index] * (1 - Self.decay) + mean * mean
                weights[index] = weights[index] * (1 - Self.decay) + 1
            }
            var test = WindowTest(length: length, sum: sum, mean: mean, dispersion: effective, pValue: 1, z: z)
            test.pValue = exact(test) ? Self.negativeBinomialUpperTail(sum, mean: mean, dispersion: effective) : 0.5 * erfc(z / 2.0.squareRoot())
            tests.append(test)
        }
        raw.append(raw.back(1)! + value)
        capped.append(capped.back(1)! + cappedValue)
        adjusted.append(adjusted.back(1)! + adjustedValue)
        seen += 1
        sinceShift += 1
        return (tests, expected)
    }

    /// The mean per bucket of the baseline of a window of `length` buckets (the buckets before
    /// the window, since the last shift) and their number, or nil while they are too few.
    private func baselineLevel(length: Int, history: Int) -> (level: Double, buckets: Int)? {
        let available = min(history - (length - 1), sinceShift - (length - 1), baselineWindow)
        guard available >= Self.minimumBaseline(length) else { return nil }
        let baselineSum = capped.back(length)! - capped.back(length + available)!
        return (max(baselineSum / Double(available), Self.quietFloor), available)
    }

    /// Starts the mean anew from the last `buckets` buckets (a level shift): they enter the
    /// baseline uncapped, since the new level is the truth now, and nothing older does.
    mutating func rebase(keeping buckets: Int) {
        let n = min(buckets, seen)
        sinceShift = n
        guard n > 0 else { return }
        let start = capped.back(n + 1)!, rawStart = raw.back(n + 1)!
        for lag in stride(from: n, through: 1, by: -1) {
            capped.setBack(lag, start + (raw.back(lag)! - rawStart))
        }
    }

    /// The learnt dispersion of window `e`, shrunk towards the prior while its evidence is thin.
    func dispersion(_ e: Int) -> Double {
        // The prior: independent buckets, so a sum of L of them has 1/L of one's dispersion.
        let prior = Self.priorDispersion / Double(Self.windows[e])
        let learnt = squaredMeans[e] > 0 ? max(excess[e] / squaredMeans[e], 0) : prior
        let priorWeight = Self.priorWeight * exp(-Double(seen) / Self.priorWeight)
        return (learnt * weights[e] + prior * priorWeight) / (weights[e] + priorWeight)
    }

    /// A window is tested once the buckets before it number at least its own length (and at
    /// least 10).
    static func minimumBaseline(_ length: Int) -> Int { max(10, length) }

    // MARK: Tails

    /// P(X ≥ k) for X negative binomial with this mean and variance `mean + dispersion·mean²`
    /// (Poisson when the dispersion is 0): `I_{m/(m+r)}(k, r)` with `r = 1/dispersion`, or the
    /// regularised lower incomplete gamma `P(k, m)` for Poisson.
    static func negativeBinomialUpperTail(_ k: Double, mean: Double, dispersion: Double) -> Double {
        let k = k.rounded(.up)
        guard k > 0 else { return 1 }
        guard mean > 0 else { return 0 }
        if dispersion * mean < 1e-9 { return regularizedLowerGamma(k, mean) }
        let r = 1 / dispersion
        return regularizedBeta(mean / (mean + r), k, r)
    }

    /// The regularised lower incomplete gamma `P(a, x)` (series below `a + 1`, Lentz's continued
    /// fraction for the complement above).
    static func regularizedLowerGamma(_ a: Double, _ x: Double) -> Double {
        guard x > 0 else { return 0 }
        let logPrefix = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var term = 1 / a, sum = term, n = a
            for _ in 0..<100_000 {
                n += 1
                term *= x / n
                sum += term
                if abs(term) < abs(sum) * 1e-15 { break }
            }
            return min(max(sum * exp(logPrefix), 0), 1)
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1..<100_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return min(max(1 - exp(logPrefix) * h, 0), 1)
    }

    /// The regularised incomplete beta `I_x(a, b)` (Lentz's continued fraction, on the side
    /// where it converges fast).
    static func regularizedBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        guard x > 0 else { return 0 }
        guard x < 1 else { return 1 }
        let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        if x < (a + 1) / (a + b + 2) {
            return min(max(exp(logFront) * betaFraction(x, a, b) / a, 0), 1)
        }
        return min(max(1 - exp(logFront) * betaFraction(1 - x, b, a) / b, 0), 1)
    }

    private static func betaFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1..<100_000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return h
    }
}
