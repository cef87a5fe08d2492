@testable import AnalysisJob
import Domain
import Foundation
import Storage
import Testing

/// What a new group is news of, decided on groups and rollouts made in memory: no database.
@Suite struct NewGroupDecisionTests {
    let rollout = Date(timeIntervalSince1970: 1_795_000_000)

    func group(_ name: String, service: String = "checkout", at offset: TimeInterval, version: String? = "1.8.3") -> GroupRecord {
        GroupRecord(fingerprint: name, service: service, errorType: "Timeout", template: "timeout after <*>",
                    firstSeen: rollout.addingTimeInterval(offset), lastSeen: rollout.addingTimeInterval(offset + 60),
                    eventCount: 12, firstVersion: version)
    }

    func context(newAfter: TimeInterval, now: TimeInterval = 3_600, introduced: Set<String> = []) -> NewGroups.Context {
        NewGroups.Context(
            deployments: DeploymentIndex([
                Deployment(service: "checkout", environment: "production", version: "1.8.2", startedAt: rollout.addingTimeInterval(-86_400)),
                Deployment(service: "checkout", environment: "production", version: "1.8.3", startedAt: rollout),
            ]),
            window: 1_800, clockSkew: 60, newAfter: rollout.addingTimeInterval(newAfter), now: rollout.addingTimeInterval(now),
            introduced: introduced)
    }

    @Test func aGroupSoonAfterItsVersionsRolloutIsNewInThatVersionUnlessItIsNewElsewhereToo() {
        let groups = [group("in-release", at: 120), group("shared", at: 180), group("late", at: 7_200), group("gone", at: 60)]
        let environments: [String: String?] = ["in-release": "production", "shared": "production", "late": "production", "gone": nil]
        let findings = NewGroups.decide(groups, environments: environments, newElsewhere: ["shared"], context: context(newAfter: -3_600))
        #expect(findings.map(\.group.fingerprint) == ["in-release", "shared", "late"], "a group without events is skipped")
        #expect(findings[0].kind == .newInVersion(version: "1.8.3", previousVersion: "1.8.2", deployedAt: rollout))
        #expect(findings[1].kind == .newGroup, "a template new in another service too points at a shared cause")
        #expect(findings[2].kind == .newGroup, "past the window it is a new error, not the release's")
        // Seen 30 s before the recorded rollout: within the clock skew, still the release's.
        let early = NewGroups.decide([group("early", at: -30)], environments: ["early": "production"], newElsewhere: [],
                                     context: context(newAfter: -3_600))
        #expect(early.first?.kind == .newInVersion(version: "1.8.3", previousVersion: "1.8.2", deployedAt: rollout))
    }

    @Test func whileTheAnalysisLearnsEachServiceHasOneFirstErrorsFinding() {
        let groups = [group("a1", service: "search", at: 4_000, version: nil), group("a2", service: "search", at: 4_100, version: nil),
                      group("b1", service: "orders", at: 4_000, version: nil), group("c1", service: "known", at: 4_000, version: nil)]
        let environments = Dictionary(uniqueKeysWithValues: groups.map { ($0.fingerprint, Optional("production")) })
        let learning = NewGroups.decide(groups, environments: environments, newElsewhere: [],
                                        context: context(newAfter: 90_000, now: 5_000, introduced: ["known"]))
        #expect(learning.map(\.group.fingerprint) == ["a1", "b1"])
        #expect(learning.allSatisfy { $0.kind == .firstErrors })
        // Once the baseline is there, each is a new error of its own.
        let learned = NewGroups.decide(groups, environments: environments, newElsewhere: [], context: context(newAfter: 3_000, now: 5_000))
        #expect(learned.count == 4 && learned.allSatisfy { $0.kind == .newGroup })
    }
}
