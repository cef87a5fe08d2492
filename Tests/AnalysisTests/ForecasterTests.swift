import Analysis
import Foundation
import Testing

@Suite struct ForecasterTests {
    /// Warnings per minute rising from 2 by 0.05 a minute (a memory leak), Poisson noise.
    static func leak(seed: UInt64, minutes: Int) -> [Double] {
        var rng = SeededGenerator(seed: seed)
        return (0..<minutes).map { rng.poisson(2 + 0.05 * Double($0)) }
    }

    @Test func risingCountPredictsTheBreachAtRoughlyTheRightTime() throws {
        // Four hours observed (2 → 14 a minute); 20 a minute is reached at minute 360, i.e. 121
        // steps after the last observed bucket.
        var steps: [Int] = []
        for seed in UInt64(1)...10 {
            let forecaster = Forecaster(series: Self.leak(seed: seed, minutes: 240))
            let breach = try #require(forecaster.breach(threshold: 20, horizon: 600), "seed \(seed)")
            #expect((80...180).contains(breach.steps), "seed \(seed): \(breach.steps)")
            #expect(breach.value >= 20 && breach.value < 21)
            steps.append(breach.steps)
        }
        let median = steps.sorted()[steps.count / 2]
        #expect((97...145).contains(median), "median \(median), truth 121")
    }

    @Test func fasterLeakOverThreeHours() throws {
        // 2 + 0.1/min for 180 min: about 20/min now, 30/min about 101 minutes ahead.
        var steps: [Int] = []
        for seed in UInt64(1)...10 {
            var rng = SeededGenerator(seed: seed &+ 500)
            let series = (0..<180).map { rng.poisson(2 + 0.1 * Double($0)) }
            let breach = try #require(Forecaster(series: series).breach(threshold: 30, horizon: 240), "seed \(seed)")
            #expect((50...160).contains(breach.steps), "seed \(seed): \(breach.steps)")
            steps.append(breach.steps)
        }
        let median = steps.sorted()[steps.count / 2]
        #expect((81...121).contains(median), "median \(median), truth 101")
    }

    @Test func breachIsReportedWellBeforeItHappens() throws {
        // Two hours observed (2 → 8 a minute): the crossing is four hours away.
        // Extrapolating twice the observed span is rough: most runs see it, near the right time.
        var steps: [Int] = []
        for seed in UInt64(1)...10 {
            if let breach = Forecaster(series: Self.leak(seed: seed, minutes: 120)).breach(threshold: 20, horizon: 600) {
                #expect((120...600).contains(breach.steps), "seed \(seed): \(breach.steps), truth 241")
                steps.append(breach.steps)
            }
        }
        #expect(steps.count >= 6)
        let median = steps.sorted()[steps.count / 2]
        #expect((180...320).contains(median), "median \(median), truth 241")
    }

    @Test func flatNoisySeriesNeverBreaches() {
        for lambda in [0.5, 2.0, 10.0, 50.0] {
            for seed in UInt64(1)...20 {
                var rng = SeededGenerator(seed: seed &* 7919)
                let series = (0..<240).map { _ in rng.poisson(lambda) }
                let forecaster = Forecaster(series: series)
                // Even a threshold just above the mean: there is no rise to carry it there.
                #expect(forecaster.breach(threshold: lambda + 2 * lambda.squareRoot(), horizon: 1000) == nil, "λ \(lambda) seed \(seed)")
            }
        }
    }

    @Test func seasonalPeakBelowThresholdNeverBreaches() {
        // Hourly buckets, a daily cycle peaking at 80, threshold 100; ending at every phase of the day.
        for seed in UInt64(1)...5 {
            for endHour in [0, 3, 6, 9, 12, 18] {
                var rng = SeededGenerator(seed: seed)
                let series = (0..<(14 * 24 + endHour)).map { rng.poisson(50 + 30 * sin(2 * Double.pi * Double($0) / 24)) }
                let forecaster = Forecaster(series: series, seasonPeriod: 24)
                #expect(forecaster.seasonPeriod == 24)
                #expect(forecaster.breach(threshold: 100, horizon: 48) == nil, "seed \(seed) end \(endHour)")
                // The forecast follows the season: a peak near 80 and a trough near 20 tomorrow.
                let day = forecaster.forecast(horizon: 24).map(\.mean)
                #expect((70...90).contains(day.max()!), "peak \(day.max()!)")
                #expect((10...30).contains(day.min()!), "trough \(day.min()!)")
            }
        }
    }

    @Test func levelShiftIsNotATrend() {
        for seed in UInt64(1)...10 {
            var rng = SeededGenerator(seed: seed)
            let series = (0..<200).map { _ in rng.poisson(5) } + (0..<40).map { _ in rng.poisson(12) }
            #expect(Forecaster(series: series).breach(threshold: 20, horizon: 600) == nil, "seed \(seed)")
        }
    }

    @Test(arguments: [[], [3], [0, 0, 0, 0, 0, 0, 0, 0], [5, 5, 5, 5, 5, 5, 5, 5, 5, 5], [1, 4], [2, 0, 3]] as [[Double]])
    func degenerateSeriesGiveAFlatFiniteForecast(series: [Double]) {
        let forecaster = Forecaster(series: series, seasonPeriod: 24)
        let points = forecaster.forecast(horizon: 10)
        #expect(points.count == 10)
        let mean = series.isEmpty ? 0 : series.reduce(0, +) / Double(series.count)
        for point in points {
            #expect(point.mean.isFinite && point.lower.isFinite && point.upper.isFinite)
            #expect(abs(point.mean - mean) < 1e-9)
            #expect(point.lower <= point.mean && point.mean <= point.upper && point.lower >= 0)
        }
        #expect(forecaster.breach(threshold: 0, horizon: 10) == nil)
        #expect(forecaster.breach(threshold: mean + 1, horizon: 1000) == nil)
    }

    @Test func constantSeriesHasNoSpread() {
        let points = Forecaster(series: Array(repeating: 7, count: 100)).forecast(horizon: 5)
        #expect(points.allSatisfy { $0.mean == 7 && $0.lower == 7 && $0.upper == 7 })
    }

    @Test func intervalsWidenAndCoverTheFuture() {
        var inside = 0
        var total = 0
        for seed in UInt64(1)...30 {
            var rng = SeededGenerator(seed: seed &+ 99)
            let series = (0..<270).map { _ in rng.poisson(10) }
            let points = Forecaster(series: Array(series.prefix(240))).forecast(horizon: 30)
            for (a, b) in zip(points, points.dropFirst()) { #expect(b.upper - b.lower >= a.upper - a.lower - 1e-9) }
            for (point, actual) in zip(points, series.suffix(30)) {
                total += 1
                if actual >= point.lower && actual <= point.upper { inside += 1 }
            }
        }
        let coverage = Double(inside) / Double(total)
        #expect(coverage > 0.88 && coverage < 0.995, "coverage \(coverage)")
    }

    @Test func fallingSeriesNeverBreaches() {
        var rng = SeededGenerator(seed: 3)
        let series = (0..<240).map { rng.poisson(max(0, 20 - 0.05 * Double($0))) }
        #expect(Forecaster(series: series).breach(threshold: 10, horizon: 600) == nil)
    }
}
