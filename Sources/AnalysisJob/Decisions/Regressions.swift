import Analysis
import Domain
import Foundation
import Postgres
import Storage

/// Regressions, as load → decide → write: a resolved group whose errors come back in a later
/// version (or, without versions that order, after the grace period) is opened again and
/// reported once per resolution.
enum Regressions {
    /// A resolved group seen again, with what the decision needs.
    struct Candidate: Sendable {
        var group: GroupRecord
        /// Where its first event ran ("production" when unknown).
        var environment: String
        /// The versions its events ran since it was resolved, each with its first time, earliest first.
        var versions: [(version: String?, first: Date)]
    }

    /// A candidate that came back: in which version and when.
    struct Finding: Sendable {
        var group: GroupRecord
        var environment: String
        var resolvedAt: Date
        var version: String?
        var first: Date
        /// From the rollout of `version` to `first`, when the rollout is known.
        var secondsSinceDeploy: Int?
    }

    /// Every candidate, in three statements whatever their number.
    static func load(on connection: PostgresConnection) throws -> [Candidate] {
        let groups = try AnalysisStore.returningResolvedGroups(on: connection).filter { $0.statusChangedAt != nil }
        guard !groups.isEmpty else { return [] }
        let versions = try AnalysisStore.versions(
            since: groups.compactMap { group in group.statusChangedAt.map { (group.fingerprint, $0) } }, on: connection)
        let environments = try AnalysisStore.firstEnvironments(of: groups.map(\.fingerprint), on: connection)
        return groups.map { group in
            Candidate(group: group, environment: (environments[group.fingerprint] ?? nil) ?? "production",
                      versions: versions[group.fingerprint] ?? [])
        }
    }

    /// The candidates that regressed: the first version since the resolution that counts as a
    /// return (``Regression/isRegression(resolvedInVersion:resolvedAt:eventVersion:eventTime:grace:deployedAt:)``),
    /// with versions ordered by their rollouts where their names do not order them.
    static func decide(_ candidates: [Candidate], deployments: DeploymentIndex) -> [Finding] {
        candidates.compactMap { candidate in
            let group = candidate.group
            guard let resolvedAt = group.statusChangedAt else { return nil }
            let rollouts = deployments.rollouts(service: group.service, environment: candidate.environment)
            let deployedAt: @Sendable (String) -> Date? = { version in rollouts.last { $0.version == version }?.startedAt }
            guard let returning = candidate.versions.first(where: { entry in
                Regression.isRegression(
                    resolvedInVersion: group.resolvedInVersion, resolvedAt: resolvedAt, eventVersion: entry.version,
                    eventTime: entry.first, deployedAt: deployedAt)
            }) else { return nil }
            return Finding(
                group: group, environment: candidate.environment, resolvedAt: resolvedAt, version: returning.version,
                first: returning.first,
                secondsSinceDeploy: returning.version.flatMap(deployedAt).map { Int(returning.first.timeIntervalSince($0)) })
        }
    }

    /// The insight that reports a finding, with the recommended actions.
    static func insight(_ finding: Finding, message: String?, rules: RuleSet, label: String) -> Insight {
        let group = finding.group
        let previous = group.resolvedInVersion
        let evidence = Evidence(
            kind: .regression, service: group.service, environment: finding.environment, errorType: group.errorType,
            template: group.template, message: message, version: finding.version, previousVersion: previous,
            secondsSinceDeploy: finding.secondsSinceDeploy, observed: 1, expected: 0, count: 1)
        return Insight(
            dedupeKey: "regression:\(group.fingerprint):\(Int(finding.resolvedAt.timeIntervalSince1970))", kind: .regression,
            severity: .warning, service: group.service, environment: finding.environment, fingerprint: group.fingerprint,
            version: finding.version, previousVersion: previous,
            title: "Regression in \(group.service)\(finding.version.map { " \($0)" } ?? ""): \(label)",
            summary: "\(label) was resolved\(previous.map { " in \($0)" } ?? "") at \(RFC3339.format(finding.resolvedAt)) and came back\(finding.version.map { " in \($0)" } ?? "") at \(RFC3339.format(finding.first)).",
            startedAt: finding.first, lastSeenAt: group.lastSeen,
            recommendations: rules.recommend(for: evidence))
    }
}
