import Analysis
import Foundation
import Testing

@Suite struct SemanticVersionTests {
    @Test func parsesTheForms() throws {
        let plain = try #require(SemanticVersion("1.8.3"))
        #expect(plain.major == 1 && plain.minor == 8 && plain.patch == 3 && plain.preRelease.isEmpty)
        #expect(SemanticVersion("v1.8.3") == plain)
        let full = try #require(SemanticVersion("1.8.3-rc.1+build.7"))
        #expect(full.preRelease == [.alphanumeric("rc"), .numeric(1)])
        #expect(full.build == ["build", "7"])
        #expect(full.description == "1.8.3-rc.1+build.7")
        #expect(SemanticVersion("1.0.0-x-y.7z.--")?.preRelease == [.alphanumeric("x-y"), .alphanumeric("7z"), .alphanumeric("--")])
    }

    @Test(arguments: ["3f9c2e1", "3f9c2e1d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e", "2024-06-01-abc", "1.8", "1.8.3.4", "01.2.3",
                      "1.02.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-rc..1", "", "v", "latest", "1.2.3-rc.1+b@d", "１.2.3"])
    func rejectsWhatIsNotSemVer(text: String) {
        #expect(SemanticVersion(text) == nil)
    }

    @Test func precedenceFollowsTheSpecification() throws {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
                       "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.9.0", "1.10.0", "2.0.0"]
        let versions = try ordered.map { try #require(SemanticVersion($0)) }
        for i in versions.indices {
            for j in versions.indices {
                #expect((versions[i] < versions[j]) == (i < j), "\(ordered[i]) vs \(ordered[j])")
            }
        }
        #expect(versions.reversed().sorted() == versions)
    }

    @Test func buildMetadataDoesNotAffectPrecedence() throws {
        let a = try #require(SemanticVersion("1.8.3+build.1"))
        let b = try #require(SemanticVersion("1.8.3+build.2"))
        #expect(a == b && !(a < b) && !(b < a))
        #expect(Set([a, b]).count == 1)
    }
}

@Suite struct VersionOrderTests {
    let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    @Test func semanticWhenBothParse() {
        // Semantic order wins over deployment order (a hotfix of an old line deployed later).
        let deployed = ["1.10.0": t0, "1.9.5": t0.addingTimeInterval(3600)]
        #expect(VersionOrder.compare("1.9.5", "1.10.0", deployedAt: { deployed[$0] }) == .orderedAscending)
        #expect(VersionOrder.compare("v1.8.3", "1.8.3", deployedAt: { _ in nil }) == .orderedSame)
    }

    @Test func deploymentTimeWhenNotSemVer() {
        let deployed = ["3f9c2e1": t0, "a1b2c3d": t0.addingTimeInterval(600)]
        #expect(VersionOrder.compare("a1b2c3d", "3f9c2e1", deployedAt: { deployed[$0] }) == .orderedDescending)
        #expect(VersionOrder.compare("3f9c2e1", "1.8.3", deployedAt: { deployed[$0] }) == nil)
        #expect(VersionOrder.compare("x", "y", deployedAt: { _ in nil }) == nil)
        #expect(VersionOrder.compare("x", "x", deployedAt: { _ in nil }) == .orderedSame)
    }
}

@Suite struct RegressionTests {
    let resolvedAt = Date(timeIntervalSince1970: 1_780_000_000)
    func later(_ minutes: Double) -> Date { resolvedAt.addingTimeInterval(minutes * 60) }

    @Test func laterVersionRegresses() {
        #expect(Regression.isRegression(resolvedInVersion: "1.8.3", resolvedAt: resolvedAt, eventVersion: "1.8.4",
                                        eventTime: later(60), deployedAt: { _ in nil }))
        // Even right after the resolution: the version, not the clock, says it came back.
        #expect(Regression.isRegression(resolvedInVersion: "1.8.3", resolvedAt: resolvedAt, eventVersion: "1.9.0-rc.1",
                                        eventTime: later(1), deployedAt: { _ in nil }))
    }

    @Test func sameOrOlderVersionDoesNotReopen() {
        for version in ["1.8.3", "1.8.2", "1.8.3-rc.2", "v1.8.3"] {
            #expect(!Regression.isRegression(resolvedInVersion: "1.8.3", resolvedAt: resolvedAt, eventVersion: version,
                                             eventTime: later(600), deployedAt: { _ in nil }), "\(version)")
        }
    }

    @Test func nonSemanticVersionsUseDeploymentOrder() {
        let deployed = ["old-sha": resolvedAt.addingTimeInterval(-7200), "fix-sha": resolvedAt.addingTimeInterval(-600),
                        "new-sha": resolvedAt.addingTimeInterval(3600)]
        #expect(Regression.isRegression(resolvedInVersion: "fix-sha", resolvedAt: resolvedAt, eventVersion: "new-sha",
                                        eventTime: later(90), deployedAt: { deployed[$0] }))
        #expect(!Regression.isRegression(resolvedInVersion: "fix-sha", resolvedAt: resolvedAt, eventVersion: "old-sha",
                                         eventTime: later(90), deployedAt: { deployed[$0] }))
    }

    @Test func withoutVersionsTimeAfterGraceCounts() {
        #expect(!Regression.isRegression(resolvedInVersion: nil, resolvedAt: resolvedAt, eventVersion: nil, eventTime: later(2),
                                         deployedAt: { _ in nil }))
        #expect(Regression.isRegression(resolvedInVersion: nil, resolvedAt: resolvedAt, eventVersion: nil, eventTime: later(30),
                                        deployedAt: { _ in nil }))
        #expect(!Regression.isRegression(resolvedInVersion: nil, resolvedAt: resolvedAt, eventVersion: nil, eventTime: later(-30),
                                         deployedAt: { _ in nil }))
        // Versions that cannot be ordered fall back to time too.
        #expect(Regression.isRegression(resolvedInVersion: "abc", resolvedAt: resolvedAt, eventVersion: "def", eventTime: later(30),
                                        deployedAt: { _ in nil }))
    }
}

@Suite struct NewInVersionTests {
    let t0 = Date(timeIntervalSince1970: 1_780_000_000)
    var deployments: [(version: String, startedAt: Date)] {
        [("1.8.3", t0), ("1.8.1", t0.addingTimeInterval(-86400 * 2)), ("1.8.2", t0.addingTimeInterval(-86400))]
    }

    @Test func firstSeenSoonAfterItsVersionWasDeployed() throws {
        let result = try #require(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(240), firstVersion: "1.8.3",
                                                     deployments: deployments))
        #expect(result.version == "1.8.3" && result.previousVersion == "1.8.2")
    }

    @Test func tooLongAfterTheDeploymentIsNotNew() {
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(3600), firstVersion: "1.8.3", deployments: deployments) == nil)
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(3600), firstVersion: "1.8.3", deployments: deployments,
                                   window: 7200)?.version == "1.8.3")
    }

    @Test func firstSeenJustBeforeTheRecordedRolloutCountsOnlyWithinTheClockSkew() {
        // 7 s before the deployment record's start: clocks differ; 90 s before: it was there already.
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(-7), firstVersion: "1.8.3", deployments: deployments)?.version == "1.8.3")
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(-7), firstVersion: "1.8.3", deployments: deployments,
                                   clockSkew: 0) == nil)
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(-90), firstVersion: nil, deployments: deployments) == nil)
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(-90), firstVersion: nil, deployments: deployments,
                                   clockSkew: 120)?.version == "1.8.3")
    }

    @Test func firstSeenInAnotherVersionIsNotNewInTheDeployedOne() {
        // An old pod still running 1.8.2 during the rollout: not caused by 1.8.3, and 1.8.2 is a day old.
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(120), firstVersion: "1.8.2", deployments: deployments) == nil)
    }

    @Test func redeployOfTheSameVersionIsNotANewVersion() {
        let withRestart = deployments + [("1.8.3", t0.addingTimeInterval(7200))]
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(7300), firstVersion: "1.8.3", deployments: withRestart) == nil)
    }

    @Test func firstDeploymentHasNoPreviousVersion() throws {
        let result = try #require(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(60), firstVersion: nil,
                                                     deployments: [("1.0.0", t0)]))
        #expect(result.version == "1.0.0" && result.previousVersion == nil)
        #expect(NewInVersion.check(groupFirstSeen: t0.addingTimeInterval(60), firstVersion: "1.0.0", deployments: []) == nil)
    }
}
