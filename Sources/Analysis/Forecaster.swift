/// A forecast of a series of per-bucket error counts: Holt-Winters exponential smoothing with an
/// additive damped trend and, when a period is given, additive seasonality.
///
/// The parameters (α level, β trend, φ damping, γ season) are chosen from a grid by the in-sample
/// squared error of forecasts one step ahead and, equally weighted, several steps ahead (up to
/// half the series). One-step error alone cannot identify φ (it acts only beyond the next step),
/// and on noisy counts it rewards a fast-moving trend that chases noise; the longer leads make the
/// fit prefer a trend that holds. Prediction intervals come from the one-step residual variance,
/// widened with the horizon as in the ETS(A,Ad,A) state-space model.
///
/// Short, constant or all-zero series give a flat forecast and never a breach.
///
/// ```swift
/// let forecaster = Forecaster(series: warningsPerMinute)
/// if let breach = forecaster.breach(threshold: 20, horizon: 480) {
///     // breach.steps buckets from now the mean forecast reaches breach.value
/// }
/// ```
public struct Forecaster: Sendable {
    /// One forecast step: the mean and a prediction interval (never below zero, counts are not).
    public struct Point: Sendable, Equatable {
        public var mean: Double
        public var lower: Double
        public var upper: Double
    }

    /// The first future step at which the mean forecast reaches the threshold.
    public struct Breach: Sendable, Equatable {
        /// Buckets from the last observed one (1 = the next bucket).
        public var steps: Int
        /// The mean forecast at that step.
        public var value: Double
    }

    /// Fitted smoothing parameters.
    public struct Parameters: Sendable, Equatable {
        public var alpha: Double
        public var beta: Double
        public var phi: Double
        public var gamma: Double
    }

    public let parameters: Parameters
    /// The season length used, or nil when the series was too short for it (fewer than two full
    /// periods) or none was given.
    public let seasonPeriod: Int?
    /// Standard deviation of the one-step-ahead residuals.
    public let residualStandardDeviation: Double
    /// Mann-Kendall z statistic of the seasonally adjusted recent series: how surely it rises.
    public let trendZ: Double
    /// The smoothed level and trend after the last observation.
    public let level: Double
    public let trend: Double
    /// Seasonal offsets indexed by absolute bucket index modulo the period.
    private let seasonal: [Double]
    private let count: Int
    private let intervalZ: Double

    /// z of the Mann-Kendall test above which a rise counts as real (one-sided p ≈ 0.001), so
    /// noise on a flat series is not read as a trend.
    public static let trendSignificance = 3.0
    /// How many of the latest buckets the trend test looks at.
    static let trendWindow = 500

    static let alphas: [Double] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    static let betas: [Double] = [0.01, 0.03, 0.1, 0.2, 0.4]
    /// No φ between 0.98 and 1: with the small β a noisy series needs, such a φ shrinks the
    /// trend estimate by a third or more in the steady state while fitting almost as well, so a
    /// steady rise would be forecast to level off.
    static let phis: [Double] = [0.8, 0.9, 0.95, 0.98, 1.0]
    static let gammas: [Double] = [0.01, 0.05, 0.15, 0.3]

    /// - Parameters:
    ///   - series: counts per bucket, oldest first.
    ///   - seasonPeriod: buckets per season (e.g. 24 for hourly buckets and a daily cycle).
    ///   - intervalZ: half-width of the prediction interval in standard deviations (1.96 ≈ 95 %).
    public init(series: [Double], seasonPeriod: Int? = nil, intervalZ: Double = 1.96) {
        let y = series.map { $0.isFinite ? $0 : 0 }
        self.count = y.count
        self.intervalZ = intervalZ
        let period = seasonPeriod.flatMap { $0 >= 2 && y.count >= 2 * $0 ? $0 : nil }
        self.seasonPeriod = period

        let n = y.count
        let mean = n == 0 ? 0 : y.reduce(0, +) / Double(n)
        let isConstant = y.allSatisfy { $0 == y.first }
        if n < 4 || isConstant {
            // Nothing to fit: a flat forecast. A count's own noise (√mean) bounds the interval of
            // a short series; a constant one has shown no noise at all.
            self.parameters = Parameters(alpha: 0, beta: 0, phi: 0, gamma: 0)
            self.level = mean
            self.trend = 0
            self.seasonal = []
            self.residualStandardDeviation = isConstant ? 0 : max(0, mean).squareRoot()
            self.trendZ = 0
            return
        }

        let start = Self.initialState(y, period: period)
        let gammas = period == nil ? [0.0] : Self.gammas
        let leads = Self.leads(count: n)
        var best: (score: Double, parameters: Parameters)?
        for phi in Self.phis {
            for alpha in Self.alphas {
                for beta in Self.betas {
                    for gamma in gammas {
                        let p = Parameters(alpha: alpha, beta: beta, phi: phi, gamma: gamma)
                        let score = Self.leadError(y, period: period, start: start, p, leads: leads)
                        if best == nil || score < best!.score { best = (score, p) }
                    }
                }
            }
        }
        let p = best!.parameters
        let fit = Self.run(y, period: period, start: start, p, keepAdjusted: true)
        self.parameters = p
        self.level = fit.level
        self.trend = fit.trend
        self.seasonal = fit.seasonal
        // Parameters fitted: 2 initial states + the smoothing weights.
        let dof = max(1, n - 4)
        self.residualStandardDeviation = (fit.sse / Double(dof)).squareRoot()
        self.trendZ = Self.mannKendallZ(Self.sinceLevelShift(Array(fit.adjusted.suffix(Self.trendWindow))))
    }

    /// The forecast for the next `horizon` buckets.
    public func forecast(horizon: Int) -> [Point] {
        guard horizon > 0 else { return [] }
        let p = parameters
        var points: [Point] = []
        points.reserveCapacity(horizon)
        var damped = 0.0  // φ + φ² + … + φ^h
        var phiPower = 1.0
        var varianceFactor = 1.0  // 1 + Σ c_j² for j < h
        for h in 1...horizon {
            phiPower *= p.phi
            damped += phiPower
            var mean = level + damped * trend
            if let period = seasonPeriod { mean += seasonal[(count + h - 1) % period] }
            let sd = residualStandardDeviation * varianceFactor.squareRoot()
            points.append(Point(mean: max(0, mean), lower: max(0, mean - intervalZ * sd), upper: max(0, mean + intervalZ * sd)))
            // c_h for the next step's variance: how an error now carries into step h ahead.
            var c = p.alpha * (1 + p.beta * damped)
            if let period = seasonPeriod, h % period == 0 { c += p.gamma }
            varianceFactor += c * c
        }
        return points
    }

    /// The first step within `horizon` at which the mean forecast reaches `threshold`, reported
    /// only when the series is rising beyond what noise explains (a significant Mann-Kendall
    /// trend on the seasonally adjusted series since its last level shift, and a positive fitted
    /// trend). A seasonal peak, a flat noisy series or a jump to a new flat level is never a
    /// breach. A series already at the threshold and still rising gives step 1.
    public func breach(threshold: Double, horizon: Int) -> Breach? {
        guard count >= 6, trend > 0, trendZ >= Self.trendSignificance else { return nil }
        for (index, point) in forecast(horizon: horizon).enumerated() where point.mean >= threshold {
            return Breach(steps: index + 1, value: point.mean)
        }
        return nil
    }

    // MARK: - Fitting

    struct State {
        var level: Double
        var trend: Double
        var seasonal: [Double]
    }

    /// Initial states: with a season, the first season's mean, the change between the first two
    /// seasons' means and the average deviation from each season's mean; without, a least-squares
    /// line through the first half of the series.
    static func initialState(_ y: [Double], period: Int?) -> State {
        if let m = period {
            let seasons = y.count / m
            var seasonal = [Double](repeating: 0, count: m)
            var means: [Double] = []
            for k in 0..<seasons {
                let slice = y[(k * m)..<((k + 1) * m)]
                let mean = slice.reduce(0, +) / Double(m)
                means.append(mean)
                for i in 0..<m { seasonal[i] += (slice[slice.startIndex + i] - mean) / Double(seasons) }
            }
            let trend = (means[1] - means[0]) / Double(m)
            // The first season's mean sits at its middle; step back to just before bucket 0.
            let level = means[0] - trend * Double(m + 1) / 2
            return State(level: level, trend: trend, seasonal: seasonal)
        }
        // A line through the first half: a few points give a slope that is mostly noise, and a
        // slowly adapting trend would carry that error for long.
        let k = max(min(y.count, 10), y.count / 2)
        let xs = (0..<k).map(Double.init)
        let xMean = xs.reduce(0, +) / Double(k)
        let yMean = y[0..<k].reduce(0, +) / Double(k)
        var sxy = 0.0
        var sxx = 0.0
        for i in 0..<k {
            sxy += (xs[i] - xMean) * (y[i] - yMean)
            sxx += (xs[i] - xMean) * (xs[i] - xMean)
        }
        let slope = sxx > 0 ? sxy / sxx : 0
        return State(level: yMean - slope * (xMean + 1), trend: slope, seasonal: [])
    }

    struct Run {
        var sse: Double
        var level: Double
        var trend: Double
        var seasonal: [Double]
        var adjusted: [Double]
    }

    /// One pass of the recursions in component form; `sse` sums the one-step-ahead errors.
    static func run(_ y: [Double], period: Int?, start: State, _ p: Parameters, keepAdjusted: Bool = false) -> Run {
        var level = start.level
        var trend = start.trend
        var seasonal = start.seasonal
        var sse = 0.0
        var adjusted: [Double] = []
        if keepAdjusted { adjusted.reserveCapacity(y.count) }
        for t in 0..<y.count {
            let s = period.map { seasonal[t % $0] } ?? 0
            let prediction = level + p.phi * trend + s
            let error = y[t] - prediction
            sse += error * error
            let previous = level
            level = p.alpha * (y[t] - s) + (1 - p.alpha) * (previous + p.phi * trend)
            trend = p.beta * (level - previous) + (1 - p.beta) * p.phi * trend
            if let m = period { seasonal[t % m] = p.gamma * (y[t] - previous - p.phi * trend) + (1 - p.gamma) * s }
            if keepAdjusted { adjusted.append(y[t] - s) }
        }
        return Run(sse: sse, level: level, trend: trend, seasonal: seasonal, adjusted: adjusted)
    }

    /// The forecast distances the fit is judged on: one step, and a quarter, half and all of
    /// half the series, so the trend and damping are fitted to how far a breach is looked for.
    static func leads(count n: Int) -> [Int] {
        let longest = max(1, n / 2)
        return Array(Set([1, max(1, longest / 4), max(1, longest / 2), longest])).sorted()
    }

    /// The mean over `leads` of the mean squared error of forecasts made that many steps ahead
    /// from every origin (each lead weighs the same, however many origins it has).
    static func leadError(_ y: [Double], period: Int?, start: State, _ p: Parameters, leads: [Int]) -> Double {
        var damped: [Double] = []
        for lead in leads {
            var sum = 0.0
            var power = 1.0
            for _ in 0..<lead {
                power *= p.phi
                sum += power
            }
            damped.append(sum)
        }
        var sums = [Double](repeating: 0, count: leads.count)
        var terms = [Int](repeating: 0, count: leads.count)
        var level = start.level
        var trend = start.trend
        var seasonal = start.seasonal
        // Origin −1: forecasts from the initial state.
        for t in -1..<(y.count - 1) {
            if t >= 0 {
                let s = period.map { seasonal[t % $0] } ?? 0
                let previous = level
                level = p.alpha * (y[t] - s) + (1 - p.alpha) * (previous + p.phi * trend)
                trend = p.beta * (level - previous) + (1 - p.beta) * p.phi * trend
                if let m = period { seasonal[t % m] = p.gamma * (y[t] - previous - p.phi * trend) + (1 - p.gamma) * s }
            }
            for (index, lead) in leads.enumerated() {
                let target = t + lead
                guard target < y.count else { break }
                // The seasonal offset for `target` is the latest one updated for its phase.
                let future = period.map { seasonal[target % $0] } ?? 0
                let error = y[target] - (level + damped[index] * trend + future)
                sums[index] += error * error
                terms[index] += 1
            }
        }
        var total = 0.0
        var used = 0
        for index in leads.indices where terms[index] > 0 {
            total += sums[index] / Double(terms[index])
            used += 1
        }
        return used == 0 ? 0 : total / Double(used)
    }

    /// The part of `x` after its level shift, when one step explains it better than a line
    /// does; else all of `x`. A jump from one flat level to another is significant to a trend test
    /// but promises no further rise, so only what follows the jump is tested.
    static func sinceLevelShift(_ x: [Double]) -> [Double] {
        let n = x.count
        let minimum = max(3, n / 20)
        guard n >= 2 * minimum + 2 else { return x }
        var prefix = [0.0]
        var prefixSquares = [0.0]
        prefix.reserveCapacity(n + 1)
        prefixSquares.reserveCapacity(n + 1)
        for value in x {
            prefix.append(prefix.last! + value)
            prefixSquares.append(prefixSquares.last! + value * value)
        }
        func sse(_ from: Int, _ to: Int) -> Double {
            let count = Double(to - from)
            let sum = prefix[to] - prefix[from]
            return (prefixSquares[to] - prefixSquares[from]) - sum * sum / count
        }
        var bestSplit = 0
        var bestStep = Double.infinity
        for split in minimum...(n - minimum) {
            let value = sse(0, split) + sse(split, n)
            if value < bestStep {
                bestStep = value
                bestSplit = split
            }
        }
        // Least-squares line through all of x.
        let nd = Double(n)
        let xMean = (nd - 1) / 2
        let yMean = prefix[n] / nd
        var sxy = 0.0
        var sxx = 0.0
        for (index, value) in x.enumerated() {
            sxy += (Double(index) - xMean) * (value - yMean)
            sxx += (Double(index) - xMean) * (Double(index) - xMean)
        }
        let lineSSE = sse(0, n) - (sxx > 0 ? sxy * sxy / sxx : 0)
        return bestStep < lineSSE ? Array(x[bestSplit...]) : x
    }

    /// The Mann-Kendall S statistic normalised to z (with tie correction and continuity
    /// correction): positive when later values tend to exceed earlier ones.
    static func mannKendallZ(_ x: [Double]) -> Double {
        let n = x.count
        guard n >= 4 else { return 0 }
        var s = 0
        for i in 0..<(n - 1) {
            let xi = x[i]
            for j in (i + 1)..<n {
                if x[j] > xi { s += 1 } else if x[j] < xi { s -= 1 }
            }
        }
        // Counts are heavily tied; the variance shrinks with every tie group.
        var tieGroups: [Double: Int] = [:]
        for value in x { tieGroups[value, default: 0] += 1 }
        let nd = Double(n)
        var variance = nd * (nd - 1) * (2 * nd + 5)
        for (_, t) in tieGroups where t > 1 {
            let td = Double(t)
            variance -= td * (td - 1) * (2 * td + 5)
        }
        variance /= 18
        guard variance > 0 else { return 0 }
        let corrected = s > 0 ? Double(s - 1) : s < 0 ? Double(s + 1) : 0
        return corrected / variance.squareRoot()
    }
}
