@testable import AnalysisJob
import Foundation
import Storage
import Testing

/// Which clusters are news, decided on groups made in memory: no database.
@Suite struct ClusterNewsTests {
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    func group(_ name: String, _ service: String, first: TimeInterval, last: TimeInterval = -60, events: Int = 10) -> GroupRecord {
        GroupRecord(fingerprint: name, service: service, errorType: "Timeout", template: "timeout after <*>",
                    firstSeen: now.addingTimeInterval(first), lastSeen: now.addingTimeInterval(last), eventCount: events)
    }

    @Test func aPatternNewInTwoServicesThisHourIsNewsAndOldNoiseIsNot() throws {
        let groups = [
            group("a", "checkout", first: -600, events: 30), group("b", "orders", first: -300, events: 50),
            group("c", "payments", first: -86_400),  // the same pattern, but there for a day
            group("d", "search", first: -1_200), group("e", "search", first: -900),  // new, but in one service
            group("f", "checkout", first: -86_400), group("g", "orders", first: -86_400),  // old noise in two services
            group("h", "inventory", first: -600, last: -4_000),  // not seen this hour (a clock gone wrong)
        ]
        let byName = Dictionary(uniqueKeysWithValues: groups.map { ($0.fingerprint, $0) })
        let clusters = [(0, ["a", "b", "c", "h"]), (1, ["d", "e"]), (2, ["f", "g"]), (3, ["missing", "a"])]
        let news = ClusterNews.decide(clusters, groups: byName, now: now, newAfter: now.addingTimeInterval(-7_200))
        #expect(news.map(\.index) == [0])
        let finding = try #require(news.first)
        #expect(finding.services == ["checkout", "orders"] && finding.count == 80 && finding.main?.fingerprint == "b")
        #expect(finding.active.map(\.fingerprint) == ["a", "b"])
        // Before the baseline everything is new: nothing is news yet.
        #expect(ClusterNews.decide(clusters, groups: byName, now: now, newAfter: now).isEmpty)
    }
}
