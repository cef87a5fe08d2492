import Analysis
import Domain
import Foundation
import Storage

/// What a group seen for the first time is news of, decided from what was loaded for a batch
/// of them (no I/O): new in the release that was just rolled out, a new error, or, while the
/// analysis still learns a service, its first errors.
enum NewGroups {
    enum Kind: Equatable {
        /// First seen within the window after a rollout of the version it ran.
        case newInVersion(version: String, previousVersion: String?, deployedAt: Date?)
        /// First seen once there was a baseline to be new against.
        case newGroup
        /// Before the baseline, once per service: every group is new then, so one insight says
        /// what was seen first and when more is reported.
        case firstErrors
    }

    struct Finding: Equatable {
        var group: GroupRecord
        var environment: String
        var kind: Kind
    }

    struct Context {
        var deployments: DeploymentIndex
        /// How long after a rollout a new group belongs to it, and the clock skew allowed.
        var window: TimeInterval
        var clockSkew: TimeInterval
        /// Groups first seen from here on are new against a baseline.
        var newAfter: Date
        var now: Date
        /// Services that already have their first-errors insight.
        var introduced: Set<String>
    }

    /// - Parameters:
    ///   - environments: each group's first environment; a group without one is skipped (its
    ///     events are gone).
    ///   - newElsewhere: groups whose template is also new in another service in the window: a
    ///     shared cause (a dependency), not this service's rollout, so not new in a version.
    static func decide(_ groups: [GroupRecord], environments: [String: String?], newElsewhere: Set<String>,
                       context: Context) -> [Finding] {
        var findings: [Finding] = []
        var introducing = context.introduced
        for group in groups {
            guard let environment = environments[group.fingerprint] ?? nil else { continue }
            let rollouts = context.deployments.rollouts(service: group.service, environment: environment)
            if !newElsewhere.contains(group.fingerprint), let found = NewInVersion.check(
                groupFirstSeen: group.firstSeen, firstVersion: group.firstVersion,
                deployments: rollouts.map { ($0.version, $0.startedAt) }, window: context.window, clockSkew: context.clockSkew)
            {
                let deployedAt = rollouts.last {
                    $0.version == found.version && $0.startedAt <= group.firstSeen.addingTimeInterval(context.clockSkew)
                }?.startedAt
                findings.append(Finding(group: group, environment: environment,
                                        kind: .newInVersion(version: found.version, previousVersion: found.previousVersion, deployedAt: deployedAt)))
            } else if group.firstSeen >= context.newAfter {
                findings.append(Finding(group: group, environment: environment, kind: .newGroup))
            } else if context.now < context.newAfter && !introducing.contains(group.service) {
                introducing.insert(group.service)
                findings.append(Finding(group: group, environment: environment, kind: .firstErrors))
            }
        }
        return findings
    }
}
