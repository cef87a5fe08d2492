import Foundation

/// Finds the deployment active for a service and environment at a moment, whatever order
/// events arrive in.
public struct DeploymentIndex: Sendable {
    private struct Key: Hashable { let service: String; let environment: String }
    /// Per key, sorted by start time.
    private var rollouts: [Key: [Deployment]] = [:]
    public private(set) var count = 0

    public init(_ deployments: [Deployment] = []) {
        for deployment in deployments { insert(deployment) }
    }

    public mutating func insert(_ deployment: Deployment) {
        let key = Key(service: deployment.service, environment: deployment.environment)
        var list = rollouts[key, default: []]
        if list.contains(where: { $0.version == deployment.version && $0.startedAt == deployment.startedAt }) { return }
        let position = list.firstIndex { $0.startedAt > deployment.startedAt } ?? list.endIndex
        list.insert(deployment, at: position)
        rollouts[key] = list
        count += 1
    }

    /// The deployment running at `time`. When the event names its version, the latest rollout
    /// of that version before `time`; else the latest rollout of any version.
    public func context(service: String, environment: String, version: String?, at time: Date) -> DeploymentContext? {
        guard let list = rollouts[Key(service: service, environment: environment)] else { return nil }
        // Binary search: the last rollout that started at or before `time`.
        var low = 0
        var high = list.count
        while low < high {
            let mid = (low + high) / 2
            if list[mid].startedAt <= time { low = mid + 1 } else { high = mid }
        }
        var index = low - 1
        if let version {
            while index >= 0 && list[index].version != version { index -= 1 }
        }
        guard index >= 0 else { return nil }
        let d = list[index]
        return DeploymentContext(deploymentID: d.id, version: d.version, commit: d.commit, region: d.region, startedAt: d.startedAt)
    }

    /// The rollouts of a service in an environment, oldest first.
    public func rollouts(service: String, environment: String) -> [Deployment] {
        rollouts[Key(service: service, environment: environment)] ?? []
    }

    /// The version deployed just before `version` for a service (for rollback advice).
    public func previousVersion(service: String, environment: String, before version: String) -> String? {
        guard let list = rollouts[Key(service: service, environment: environment)],
            let index = list.lastIndex(where: { $0.version == version })
        else { return nil }
        return list[..<index].last { $0.version != version }?.version
    }
}
