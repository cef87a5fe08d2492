@testable import AnalysisJob
import Domain
import Foundation
import Testing

/// How a spike's insight grows after it was sent, on insights made in memory: no database.
@Suite struct SpikeEpisodeTests {
    let end = Date(timeIntervalSince1970: 1_795_000_000)

    func alert(expected: Double = 10, observed: Double = 80, events: Int = 80) -> Insight {
        Insight(dedupeKey: "spike:service:checkout:1", kind: .spike, severity: .warning, service: "checkout", title: "t", summary: "s",
                observed: observed, expected: expected, eventCount: events, startedAt: end.addingTimeInterval(-600))
    }

    @Test func anEpisodeGrowsWhileTheSeriesStaysHighAndEndsWhenItComesDown() throws {
        let start = SpikeEpisodes.Episode(insight: alert(), startBucket: 100, total: 80, peak: 80)
        #expect(SpikeEpisodes.follow(start, value: 500, bucket: 100, end: end) == start, "its own bucket changes nothing")
        let grown = try #require(SpikeEpisodes.follow(start, value: 120, bucket: 101, end: end))
        #expect(grown.total == 200 && grown.peak == 120)
        #expect(grown.insight.eventCount == 200 && grown.insight.observed == 120 && grown.insight.lastSeenAt == end)
        let calmer = try #require(SpikeEpisodes.follow(grown, value: 16, bucket: 102, end: end))  // above 1.5 × 10 and 10 + 3
        #expect(calmer.peak == 120 && calmer.total == 216)
        #expect(SpikeEpisodes.follow(calmer, value: 15, bucket: 103, end: end) == nil, "back down to 1.5 × expected: over")
        // A low expectation needs three more than it, not just half as much again.
        let quiet = SpikeEpisodes.Episode(insight: alert(expected: 2), startBucket: 100, total: 9, peak: 9)
        #expect(SpikeEpisodes.follow(quiet, value: 5, bucket: 101, end: end) == nil)
        #expect(SpikeEpisodes.follow(quiet, value: 5.5, bucket: 101, end: end) != nil)
    }

    @Test func aBurstInTheQuietPeriodGrowsTheLastAlertInsteadOfMakingANewOne() throws {
        func recur(_ value: Double, at bucket: Int, last: Insight? = nil) -> Insight? {
            SpikeEpisodes.recur(lastAlert: last ?? alert(), lastAlertBucket: 100, value: value, loudAt: 20, quietBuckets: 30,
                                bucket: bucket, end: end)
        }
        let grown = try #require(recur(90, at: 110))
        #expect(grown.details["bursts"] == "2" && grown.eventCount == 170 && grown.observed == 90 && grown.lastSeenAt == end)
        #expect(recur(60, at: 112, last: grown)?.details["bursts"] == "3")
        #expect(recur(19, at: 110) == nil, "below what can alert in this series")
        #expect(recur(90, at: 131) == nil, "after the quiet period the detector speaks again")
        #expect(SpikeEpisodes.recur(lastAlert: alert(), lastAlertBucket: 100, value: 15, loudAt: 5, quietBuckets: 30, bucket: 110, end: end) == nil,
                "loud enough, but not far enough above what was expected")
        #expect(SpikeEpisodes.recur(lastAlert: alert(), lastAlertBucket: 100, value: 16, loudAt: 5, quietBuckets: 30, bucket: 110, end: end) != nil)
        #expect(SpikeEpisodes.recur(lastAlert: nil, lastAlertBucket: 100, value: 90, loudAt: 20, quietBuckets: 30, bucket: 110, end: end) == nil)
    }
}
