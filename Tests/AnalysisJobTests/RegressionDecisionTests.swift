@testable import AnalysisJob
import Domain
import Foundation
import Storage
import Testing

/// The regression decision alone, on groups and rollouts made in memory: no database.
@Suite struct RegressionDecisionTests {
    let resolvedAt = Date(timeIntervalSince1970: 1_795_000_000)

    func candidate(resolvedIn: String?, versions: [(String?, TimeInterval)], service: String = "checkout") -> Regressions.Candidate {
        let group = GroupRecord(
            fingerprint: "fp-\(service)", service: service, errorType: "Timeout", template: "timeout after <*>",
            firstSeen: resolvedAt.addingTimeInterval(-86_400), lastSeen: resolvedAt.addingTimeInterval(3_600), eventCount: 40,
            status: "resolved", statusChangedAt: resolvedAt, resolvedInVersion: resolvedIn)
        return Regressions.Candidate(
            group: group, environment: "production",
            versions: versions.map { ($0.0, resolvedAt.addingTimeInterval($0.1)) })
    }

    @Test func onlyALaterVersionReopensAGroupResolvedInAVersion() {
        let deployments = DeploymentIndex([
            Deployment(service: "checkout", environment: "production", version: "1.9.0", startedAt: resolvedAt.addingTimeInterval(600)),
        ])
        let findings = Regressions.decide([
            // The resolved version and an older one still running: no regression.
            candidate(resolvedIn: "1.8.3", versions: [("1.8.3", 60), ("1.8.2", 120)], service: "a"),
            // 1.9.0 brings it back: the finding names it, and its rollout 15 minutes earlier.
            candidate(resolvedIn: "1.8.3", versions: [("1.8.3", 60), ("1.9.0", 1_500)], service: "checkout"),
        ], deployments: deployments)
        #expect(findings.map(\.group.service) == ["checkout"])
        let finding = findings[0]
        #expect(finding.version == "1.9.0" && finding.first == resolvedAt.addingTimeInterval(1_500))
        #expect(finding.secondsSinceDeploy == 900)
    }

    @Test func withoutVersionsAReturnAfterTheGracePeriodCounts() {
        let findings = Regressions.decide([
            candidate(resolvedIn: nil, versions: [(nil, 120)], service: "stragglers"),  // within 5 min: in flight
            candidate(resolvedIn: nil, versions: [(nil, 120), (nil, 900)], service: "back"),
        ], deployments: DeploymentIndex())
        #expect(findings.map(\.group.service) == ["back"])
        #expect(findings.first?.version == nil && findings.first?.secondsSinceDeploy == nil)
    }

    @Test func theInsightSaysWhatCameBackAndIsKeyedToTheResolution() throws {
        let finding = Regressions.Finding(
            group: candidate(resolvedIn: "1.8.3", versions: []).group, environment: "production", resolvedAt: resolvedAt,
            version: "1.9.0", first: resolvedAt.addingTimeInterval(1_500), secondsSinceDeploy: 900)
        let insight = Regressions.insight(finding, message: "timeout after 30s", rules: try shippedRules(), label: "Timeout: timeout after <*>")
        #expect(insight.kind == .regression && insight.severity == .warning)
        #expect(insight.dedupeKey == "regression:fp-checkout:\(Int(resolvedAt.timeIntervalSince1970))")
        #expect(insight.title == "Regression in checkout 1.9.0: Timeout: timeout after <*>")
        #expect(insight.summary.contains("resolved in 1.8.3") && insight.summary.contains("came back in 1.9.0"))
        #expect(insight.version == "1.9.0" && insight.previousVersion == "1.8.3")
    }
}
