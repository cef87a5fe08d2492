@testable import AnalysisJob
import Foundation
import Testing

/// Which series are warned of, decided on counts made in memory: no database.
@Suite struct ForecastDecisionTests {
    func volume(_ key: String, _ service: String, group: String? = nil, _ volume: Double) -> Forecasts.Volume {
        Forecasts.Volume(key: key, service: service, fingerprint: group, volume: volume)
    }

    /// 90 buckets rising steadily from `from` by `step` a bucket.
    func rising(from: Double, step: Double) -> [Double] { (0..<90).map { from + step * Double($0) } }

    @Test func groupsComeFirstThenTheBusiestUpToTheLimit() {
        let chosen = Forecasts.choose([
            volume("service:a", "a", 500), volume("group:x", "a", group: "x", 20), volume("service:b", "b", 900),
            volume("group:y", "b", group: "y", 40), volume("service:quiet", "quiet", 0),
        ], limit: 3)
        #expect(chosen.map(\.key) == ["group:y", "group:x", "service:b"])
    }

    @Test func aRisingSeriesIsWarnedOfOnceAndNotWhenFlatOrAlreadyOver() throws {
        let findings = Forecasts.decide([
            Forecasts.Candidate(series: volume("group:x", "checkout", group: "x", 1), recent: rising(from: 5, step: 0.5)),
            // Its service rises too, but the group already names the error.
            Forecasts.Candidate(series: volume("service:checkout", "checkout", 1), recent: rising(from: 10, step: 0.5)),
            Forecasts.Candidate(series: volume("service:flat", "flat", 1), recent: Array(repeating: 20, count: 90)),
            Forecasts.Candidate(series: volume("service:over", "over", 1), recent: rising(from: 60, step: 0.5)),
            Forecasts.Candidate(series: volume("service:orders", "orders", 1), recent: rising(from: 5, step: 0.5)),
            Forecasts.Candidate(series: volume("service:empty", "empty", 1), recent: []),
        ], threshold: 60, horizon: 60)
        #expect(findings.map(\.key) == ["group:x", "service:orders"])
        let finding = try #require(findings.first)
        // The last five buckets average 48.5 and rise 0.5 a bucket: 60 is about 21 buckets away.
        #expect(abs(finding.current - 48.5) < 1e-9 && finding.breach.value >= 60)
        #expect((10...40).contains(finding.breach.steps), "\(finding.breach)")
        #expect(finding.lastHour == Int(rising(from: 5, step: 0.5).suffix(60).reduce(0, +)))
    }
}
