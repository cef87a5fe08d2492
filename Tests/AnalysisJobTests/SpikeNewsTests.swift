@testable import AnalysisJob
import Analysis
import Domain
import Testing

/// Which of a minute's alerting series make an insight, decided on points made in memory.
@Suite struct SpikeNewsTests {
    func alert(_ key: String, _ service: String, group: String? = nil, spike: Bool = true, shift: Bool = false) -> SpikeNews.Alert {
        SpikeNews.Alert(key: key, service: service, fingerprint: group,
                        point: SpikeDetector.Point(value: 90, expected: 10, score: 8, pValue: 1e-6, isSpike: spike, isLevelShift: shift, isAlert: true))
    }

    @Test func aGroupInsideItsServicesSpikeIsTheSameNewsAndEveryAlertIsRecorded() {
        let verdicts = SpikeNews.judge([
            alert("service:checkout", "checkout"),
            alert("group:b", "checkout", group: "b"),
            alert("group:a", "orders", group: "a"),  // its service is quiet: the group speaks
            alert("service:search", "search", spike: false, shift: true),
        ])
        #expect(verdicts.map(\.alert) == [2, 1, 0, 3], "in the order of the keys")
        #expect(verdicts.map(\.reported) == [true, false, true, true])
        #expect(verdicts.map(\.kind) == [.spike, .spike, .spike, .levelShift])
        #expect(SpikeNews.kind(of: alert("k", "s", spike: true, shift: true).point) == .spike, "a spike that shifts the level too is a spike")
        #expect(SpikeNews.judge([]).isEmpty)
    }
}
