import Foundation
import Testing
@testable import Analysis

@Suite struct CountModelTests {
    /// P(X ≥ k) summed term by term from the probability mass function.
    func bruteForceTail(_ k: Int, mean: Double, dispersion: Double) -> Double {
        let r = 1 / dispersion, p = mean / (mean + r)
        var below = 0.0
        for x in 0..<k {
            let x = Double(x)
            below += exp(lgamma(x + r) - lgamma(r) - lgamma(x + 1) + r * log1p(-p) + x * log(p))
        }
        return 1 - below
    }

    @Test func negativeBinomialTailsAreThoseOfTheMassFunction() {
        for (k, mean, dispersion) in [(3, 1.0, 0.04), (10, 1.5, 0.5), (60, 20.0, 0.1), (40, 30.0, 0.01), (2, 4.0, 0.25)] {
            let tail = CountModel.negativeBinomialUpperTail(Double(k), mean: mean, dispersion: dispersion)
            let expected = bruteForceTail(k, mean: mean, dispersion: dispersion)
            #expect(abs(tail - expected) < 1e-9 + 1e-6 * expected, "k \(k) mean \(mean) φ \(dispersion): \(tail) vs \(expected)")
        }
        // Far tails, where 1 minus a sum would be all rounding: against the sum from k up.
        let far = CountModel.negativeBinomialUpperTail(2000, mean: 500, dispersion: 0.04)
        var above = 0.0
        let r = 25.0, p = 500 / 525.0
        for x in 2000..<20_000 {
            let x = Double(x)
            above += exp(lgamma(x + r) - lgamma(r) - lgamma(x + 1) + r * log1p(-p) + x * log(p))
        }
        #expect(far > 0 && abs(far - above) < 1e-6 * above, "\(far) vs \(above)")
        // Without extra variance it is Poisson's tail.
        #expect(abs(CountModel.negativeBinomialUpperTail(10, mean: 1.5, dispersion: 0) - SpikeDetector.poissonUpperTail(10, mean: 1.5)) < 1e-12)
        #expect(CountModel.negativeBinomialUpperTail(0, mean: 3, dispersion: 0.1) == 1)
        #expect(CountModel.negativeBinomialUpperTail(5, mean: 0, dispersion: 0.1) == 0)
    }

    /// On overdispersed noise with nothing in it, the p-values are what they say: about 1 bucket
    /// in 100 falls below 0.01 (at most 1.5, leaving room for the learnt dispersion's own
    /// noise), at any volume, and none alerts.
    @Test func pValuesOnPureNoiseAreCalibrated() {
        var configuration = SpikeDetector.Configuration.default
        configuration.minimumCount = 0
        configuration.minimumRelativeIncrease = 0
        for rate in [2.0, 30, 500] {
            var random = SeededGenerator(seed: UInt64(rate))
            let series = (0..<(3 * 1440)).map { _ in IncidentCorpus.poisson(rate * IncidentCorpus.gamma(shape: 25, &random) / 25, &random) }
            let points = SpikeDetector.scores(of: series, configuration: configuration)[1440...]
            let small = points.filter { $0.pValue < 0.01 }.count
            #expect(Double(small) <= 0.015 * Double(points.count), "rate \(rate): \(small) of \(points.count)")
            #expect(!points.contains { $0.isAlert }, "rate \(rate)")
        }
    }

    /// A quiet service whose errors double for good: no single minute says so, the last hour
    /// does; it is a level shift, alerted once, and the new level is learnt.
    @Test func aDoublingAtLowVolumeIsFoundOverTheLongerWindows() {
        var random = SeededGenerator(seed: 21)
        let shiftAt = 1800
        let series = (0..<2400).map { IncidentCorpus.poisson($0 < shiftAt ? 4 : 8, &random) }
        let points = SpikeDetector.scores(of: series, configuration: .default)
        #expect(!points[..<shiftAt].contains { $0.isAlert })
        let first = points.indices.first { points[$0].isAlert }
        #expect(first != nil && first! >= shiftAt && first! < shiftAt + 60, "\(String(describing: first))")
        if let first { #expect(points[first].isLevelShift) }
        #expect(points[shiftAt...].filter(\.isAlert).count == 1)
    }

    /// An absurd value (1e300) is one bucket's news, not the end of the series: the running
    /// sums keep their precision and a later doubling is still found over the long windows.
    @Test func anAbsurdValueDoesNotBlindTheLongWindows() {
        var random = SeededGenerator(seed: 21)
        let shiftAt = 1800
        var series = (0..<2400).map { IncidentCorpus.poisson($0 < shiftAt ? 4 : 8, &random) }
        series[600] = 1e300
        let points = SpikeDetector.scores(of: series, configuration: .default)
        #expect(points.allSatisfy { $0.pValue.isFinite && $0.score.isFinite })
        let first = points.indices.first { $0 > 700 && points[$0].isAlert }
        #expect(first != nil && first! >= shiftAt && first! < shiftAt + 60, "\(String(describing: first))")
        if let first { #expect(points[first].isLevelShift) }
    }

    /// Pure noise and every kind of incident at 30 volumes from 1 to 1,000 errors a minute:
    /// no alert on a pure-noise day, few false alerts, and spikes caught nearly as often as by
    /// a detector that knows the true rate.
    @Test func theShippedDetectorStaysNearTheOracleWithoutFalseAlerts() {
        let corpus = IncidentCorpus(services: 30, days: 7, seed: 5)
        let result = corpus.evaluate()
        let oracle = corpus.oracleSpikeRecall(pValue: SpikeDetector.Configuration.default.alertPValue)
        #expect(result.noiseDayAlerts == 0)
        #expect(result.falseAlertsPerServiceDay <= 0.05)
        #expect(result.spikeRecall >= 0.9 * oracle, "\(result.spikeRecall) against the oracle's \(oracle)")
        #expect(oracle > 0.5)
    }
}
