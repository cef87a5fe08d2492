import Foundation
import Testing
@testable import Analysis

/// The general (NAB) configuration: recurring extremes are learnt, new extremes and noise-level
/// changes alert.
@Suite struct NoveltyAndVolatilityTests {
    let fiveMinutes = SpikeDetector.Configuration.forBucketWidth(seconds: 300)
    /// Half-hour buckets: the same derived configuration with a week of 336 buckets, so that the
    /// series below span several weeks (memory and baseline full) and still replay quickly in a
    /// debug build.
    let halfHour = SpikeDetector.Configuration.forBucketWidth(seconds: 1800)

    @Test func bucketWidthConfigurationIsDerivedFromTheSpacing() {
        #expect(fiveMinutes.seasonPeriod == 288)
        #expect(fiveMinutes.baselineWindow == 2016)
        #expect(fiveMinutes.noveltyMemory == 2016)
        #expect(fiveMinutes.direction == .both)
        let tenMinutes = SpikeDetector.Configuration.forBucketWidth(seconds: 600)
        #expect(tenMinutes.seasonPeriod == 144 && tenMinutes.baselineWindow == 1008)
        let daily = SpikeDetector.Configuration.forBucketWidth(seconds: 86_400)
        #expect(daily.seasonPeriod == nil && daily.baselineWindow == 2016)
        #expect(halfHour.seasonPeriod == 48 && halfHour.baselineWindow == 336 && halfHour.noveltyMemory == 336)
        // The per-minute error-count default keeps neither feature.
        #expect(SpikeDetector.Configuration.default.noveltyPower == 0)
        #expect(SpikeDetector.Configuration.default.volatilityWeight == 0)
    }

    /// Noise around 10 with a spike to about 30 every 120 buckets (more than the quiet period after
    /// an alert, so each could alert on its own), and one spike to 45.
    func recurringSpikes() -> (series: [Double], unusualAt: Int, spikes: [Int]) {
        var rng = SeededGenerator(seed: 21)
        var series = (0..<1200).map { _ in 10 + rng.gaussian() }
        let spikes = Array(stride(from: 40, to: 1200, by: 120))
        for t in spikes { series[t] = 30 + rng.gaussian() }
        let unusualAt = 1030
        series[unusualAt] = 45
        return (series, unusualAt, spikes)
    }

    @Test func recurringSpikesAreLearntButANewExtremeAlerts() {
        let (series, unusualAt, spikes) = recurringSpikes()
        var config = halfHour
        config.seasonPeriod = nil
        let points = SpikeDetector.scores(of: series, configuration: config)
        // Once the novelty memory (a week) has seen a few of them.
        let late = spikes.filter { $0 >= 400 }
        #expect(!late.contains { points[$0].isAlert }, "\(late.filter { points[$0].isAlert })")
        #expect(points[unusualAt].isAlert)
        #expect(points[unusualAt].score > late.map { points[$0].score }.max()!)

        // Without the novelty test the same recurring spikes keep alerting.
        config.noveltyPower = 0
        let plain = SpikeDetector.scores(of: series, configuration: config)
        #expect(late.filter { plain[$0].isAlert }.count >= late.count / 2)
    }

    /// A quiet series with rare single spikes of ±6 that starts to oscillate by ±3 at `onset`.
    func oscillationOnset() -> (series: [Double], onset: Int) {
        var rng = SeededGenerator(seed: 23)
        let onset = 800
        var series = (0..<1000).map { _ in 50 + 0.2 * rng.gaussian() }
        for t in stride(from: 60, to: onset, by: 97) { series[t] += t % 2 == 0 ? 6 : -6 }
        for t in onset..<1000 { series[t] += t % 2 == 0 ? 3 : -3 }
        return (series, onset)
    }

    @Test func noiseLevelChangeAlertsNearItsOnset() {
        let (series, onset) = oscillationOnset()
        var config = halfHour
        config.seasonPeriod = nil
        let points = SpikeDetector.scores(of: series, configuration: config)
        let first = points.indices.first { $0 >= 400 && points[$0].isAlert }
        #expect(first != nil && first! >= onset && first! <= onset + 4)

        // The single buckets are no new extremes and the median hardly moves: without the noise
        // level only the short-window median catches up, and later.
        config.volatilityWeight = 0
        let plain = SpikeDetector.scores(of: series, configuration: config)
        let firstPlain = plain.indices.first { $0 >= 400 && plain[$0].isAlert }
        #expect(first != nil && (firstPlain == nil || firstPlain! > first!))
    }

    @Test func generalConfigurationRoundTripsAndStaysCausal() throws {
        let series = Array(recurringSpikes().series[..<600])
        // Seasonal (a day is 48 buckets) and past the first week (336 buckets), so the value and
        // baseline rings have wrapped.
        var detector = SpikeDetector(configuration: halfHour)
        for v in series[..<450] { _ = detector.update(v) }
        var restored = try JSONDecoder().decode(SpikeDetector.self, from: JSONEncoder().encode(detector))
        for v in series[450...] { #expect(detector.update(v) == restored.update(v)) }

        var changed = series
        for t in 400..<600 { changed[t] += 100 }
        let a = SpikeDetector.scores(of: series, configuration: halfHour)
        let b = SpikeDetector.scores(of: changed, configuration: halfHour)
        #expect(Array(a[..<400]) == Array(b[..<400]))
        #expect(a[400] != b[400])
        for p in a + b { #expect(p.score >= 0 && p.score <= 1) }
    }
}
