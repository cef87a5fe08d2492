import Foundation
import Testing
@testable import Analysis

/// The shipped per-minute configuration, on series whose day is 1,440 minutes.
let period = 1440
let testConfig = SpikeDetector.Configuration.default

func seasonalMean(_ t: Int) -> Double { 30 + 20 * sin(2 * .pi * Double(t) / Double(period)) }

@Suite struct SpikeDetectorTests {
    /// Selection gives what sorting gives, bit for bit: every rank, and the medians of odd and
    /// even counts, over values with many ties (counts), negatives and a single element.
    @Test func orderStatisticsAreThoseOfTheSortedValues() {
        var generator = SeededGenerator(seed: 11)
        for trial in 0..<300 {
            let count = 1 + Int(generator.next() % 300)
            let values: [Double] = (0..<count).map { _ in
                trial % 3 == 0 ? Double(generator.next() % 4) : Double(Int64(generator.next() % 20_001) - 10_000) / 7
            }
            let sorted = values.sorted()
            for k in [0, count / 2, count - 1, Int(generator.next() % UInt64(count))] {
                var scratch = values
                let selected = scratch.withUnsafeMutableBufferPointer { OrderStatistics.select($0, k) }
                #expect(selected == sorted[k], "trial \(trial), k \(k)")
            }
            let mid = count / 2
            let median = count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
            #expect(SpikeDetector.median(values).bitPattern == median.bitPattern, "trial \(trial)")
        }
        #expect(SpikeDetector.median([]) == 0)
    }

    /// A sliding window kept in order gives, at every step, the median and the median distance
    /// from it that selection gives over the window's values, bit for bit (ties, negatives,
    /// growing and full windows).
    @Test func aSortedWindowGivesTheMediansSelectionGives() {
        var generator = SeededGenerator(seed: 5)
        for trial in 0..<40 {
            let capacity = 1 + Int(generator.next() % 200)
            var ring = SpikeDetector.Ring(capacity: capacity)
            var window = SortedWindow()
            for _ in 0..<(3 * capacity) {
                let value = trial % 2 == 0 ? Double(generator.next() % 5) : Double(Int64(generator.next() % 20_001) - 10_000) / 7
                if let old = ring.evicted { window.remove(old) }
                ring.append(value)
                window.insert(value)
                let values = ring.last(capacity)
                #expect(window.sorted == values.sorted())
                let (median, scale) = SpikeDetector.location(values)
                #expect(window.median.bitPattern == median.bitPattern, "trial \(trial)")
                let mad = 1.4826 * window.medianDistance(from: window.median)
                #expect(mad <= scale, "the scale is at least the MAD: trial \(trial)")
                #expect(mad.bitPattern == (1.4826 * SpikeDetector.median(values.map { abs($0 - median) })).bitPattern, "trial \(trial)")
            }
        }
    }

    @Test func plantedSpikeInNoisySeasonalCountsIsFlaggedAtOnce() {
        var rng = SeededGenerator(seed: 7)
        let spikeAt = 5 * period + 30
        var series = (0..<(6 * period)).map { rng.poisson(seasonalMean($0)) }
        series[spikeAt] += 80
        series[spikeAt + 1] += 60
        let points = SpikeDetector.scores(of: series, configuration: testConfig)
        let firstAlert = points.indices.first { $0 >= 4 * period && points[$0].isAlert }
        #expect(firstAlert != nil && abs(firstAlert! - spikeAt) <= 1)
        #expect(points[spikeAt].isSpike)
        // The day before the spike is quiet: the noise and the season alone do not alert.
        #expect(!points[(4 * period)..<spikeAt].contains { $0.isAlert })
    }

    @Test func levelShiftIsFlaggedAsSuch() {
        var rng = SeededGenerator(seed: 11)
        let shiftAt = 400
        let series = (0..<700).map { rng.poisson($0 < shiftAt ? 20 : 70) }
        var config = testConfig
        config.seasonPeriod = nil
        let points = SpikeDetector.scores(of: series, configuration: config)
        let early = points[..<shiftAt].indices.filter { points[$0].isLevelShift || points[$0].isAlert }
        #expect(early.isEmpty, "\(early.map { ($0, series[$0], points[$0].expected, points[$0].pValue) })")
        #expect(points[shiftAt].isAlert)
        let shift = points.indices.first { points[$0].isLevelShift }
        #expect(shift != nil && shift! >= shiftAt && shift! <= shiftAt + config.shortWindow)
        // One change, one alert: the new level is learnt instead of alerting again and again.
        #expect(points[shiftAt...].filter(\.isAlert).count == 1)
    }

    @Test func lowVolumeNoiseNeverAlerts() {
        var rng = SeededGenerator(seed: 3)
        var series = (0..<1500).map { _ in rng.poisson(0.3) }
        for t in stride(from: 200, to: 1500, by: 173) { series[t] = 2 }
        var config = SpikeDetector.Configuration.default
        config.seasonPeriod = nil
        let points = SpikeDetector.scores(of: series, configuration: config)
        #expect(series.max()! >= 2)
        #expect(!points.contains { $0.isAlert })
        // Nothing comes near an alert either.
        #expect(points.allSatisfy { $0.pValue > 100 * config.alertPValue })
    }

    @Test func exactPoissonTailsAndNormalQuantiles() {
        // P(X >= 8 | 1.5) = 1.6957e-4, P(X >= 10 | 1.5) = 4.0975e-6; P(X >= 1 | 1) = 1 - e^-1.
        #expect(abs(SpikeDetector.poissonUpperTail(8, mean: 1.5) - 1.6957e-4) < 1e-8)
        #expect(abs(SpikeDetector.poissonUpperTail(10, mean: 1.5) - 4.0975e-6) < 1e-9)
        #expect(abs(SpikeDetector.poissonUpperTail(1, mean: 1) - (1 - exp(-1))) < 1e-12)
        #expect(SpikeDetector.poissonUpperTail(0, mean: 3) == 1)
        #expect(SpikeDetector.poissonUpperTail(400, mean: 2) == 0 || SpikeDetector.poissonUpperTail(400, mean: 2) < 1e-300)
        for (p, z) in [(0.5, 0.0), (0.158655, 1.0), (0.0013499, 3.0), (1e-6, 4.753424), (2.866516e-7, 5.0)] {
            #expect(abs(SpikeDetector.normalQuantile(upperTail: p) - z) < 1e-5, "p \(p)")
        }
        #expect(SpikeDetector.normalQuantile(upperTail: 0) > 37 && SpikeDetector.normalQuantile(upperTail: 0).isFinite)
    }

    @Test func aFewErrorsMoreThanAFewExpectedAreNoSpikeButManyAre() {
        // 1.5 errors a minute for a day; then 10 in a minute (one minute in 240,000 for Poisson
        // noise, but a z of 5.4 by the normal approximation), later 30 (news).
        var rng = SeededGenerator(seed: 5)
        var series = (0..<1800).map { _ in rng.poisson(1.5) }
        series[1500] = 10
        series[1700] = 30
        var config = SpikeDetector.Configuration.default
        config.seasonPeriod = nil
        let points = SpikeDetector.scores(of: series, configuration: config)
        #expect(!points[1500].isAlert, "\(points[1500])")
        #expect(points[1700].isAlert && points[1700].isSpike, "\(points[1700])")
    }

    @Test func aBusySeriesWithAVaryingRateAlertsOnlyFarAboveItsSkewedNoise() {
        // 400 errors a minute from a gamma-distributed rate (coefficient of variation 0.2): 850
        // is 5.5 scales up, which the normal tail calls one minute in 50 million and the rate's
        // own skewed tail one in 150,000 (no news); four times the rate is news.
        var rng = SeededGenerator(seed: 11)
        var series = (0..<1800).map { _ in IncidentCorpus.poisson(400 * IncidentCorpus.gamma(shape: 25, &rng) / 25, &rng) }
        series[1500] = 850
        series[1700] = 1600
        var config = SpikeDetector.Configuration.default
        config.seasonPeriod = nil
        let points = SpikeDetector.scores(of: series, configuration: config)
        #expect(!points[1500].isAlert, "\(points[1500])")
        #expect(points[1700].isAlert && points[1700].isSpike, "\(points[1700])")
    }

    @Test func recurringDailyPeakIsLearntButAnUnusualPeakAlerts() {
        var rng = SeededGenerator(seed: 5)
        let unusualAt = 5 * period + 70
        var series = (0..<(6 * period)).map { t -> Double in
            let phase = t % period
            return rng.poisson((40...43).contains(phase) ? 90 : 10)
        }
        series[unusualAt] = 90
        series[unusualAt + 1] = 90
        let points = SpikeDetector.scores(of: series, configuration: testConfig)
        for day in 2..<6 {
            let peak = (day * period + 40)...(day * period + 43)
            #expect(!peak.contains { points[$0].isAlert }, "daily peak alerted on day \(day + 1)")
        }
        #expect(points[unusualAt].isAlert)
    }

    @Test func scoresStayInUnitInterval() {
        var rng = SeededGenerator(seed: 9)
        var series = (0..<800).map { rng.poisson(seasonalMean($0)) * (rng.uniform() < 0.01 ? 50 : 1) }
        series[700] = 1e9
        series[701] = -1e9
        series[702] = 0
        for direction in [SpikeDetector.Direction.up, .down, .both] {
            var config = testConfig
            config.direction = direction
            for p in SpikeDetector.scores(of: series, configuration: config) {
                #expect(p.score >= 0 && p.score <= 1)
                #expect(p.pValue >= 0 && p.pValue <= 1)
            }
        }
    }

    @Test func scoreAtTimeTIgnoresTheFuture() {
        var rng = SeededGenerator(seed: 13)
        let series = (0..<800).map { rng.poisson(seasonalMean($0)) }
        var changed = series
        for t in 500..<800 { changed[t] = changed[t] * 3 + 100 }
        let a = SpikeDetector.scores(of: series, configuration: testConfig)
        let b = SpikeDetector.scores(of: changed, configuration: testConfig)
        #expect(Array(a[..<500]) == Array(b[..<500]))
        #expect(a[500] != b[500])
    }

    @Test func stateRoundTripsThroughCodable() throws {
        var rng = SeededGenerator(seed: 17)
        let series = (0..<400).map { rng.poisson(seasonalMean($0)) }
        var detector = SpikeDetector(configuration: testConfig)
        for v in series[..<300] { _ = detector.update(v) }
        var restored = try JSONDecoder().decode(SpikeDetector.self, from: JSONEncoder().encode(detector))
        for v in series[300...] { #expect(detector.update(v) == restored.update(v)) }
    }
}
