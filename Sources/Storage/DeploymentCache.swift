import Domain
import Postgres
import Synchronization

/// The deployments a process knows, kept in step with the `deployments` table: ingest enriches
/// events from it and the analysis reads rollouts from it. One per process, shared by the roles
/// it runs. A refresh reads only the rows added since the one before.
public final class DeploymentCache: Sendable {
    private struct State {
        var index = DeploymentIndex()
        var lastID: Int64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// What is known now (a copy; later refreshes do not change it).
    public var index: DeploymentIndex { state.withLock { $0.index } }

    /// Reads the deployments recorded since the last refresh; returns how many there were.
    @discardableResult
    public func refresh(on connection: PostgresConnection) throws -> Int {
        let after = state.withLock { $0.lastID }
        let loaded = try DeploymentStore.load(after: after, on: connection)
        state.withLock { state in
            // Inserting is idempotent, so two refreshes that overlap add nothing twice.
            for deployment in loaded { state.index.insert(deployment) }
            state.lastID = max(state.lastID, loaded.compactMap(\.id).max() ?? 0)
        }
        return loaded.count
    }

    /// Deployments read from Kafka, known before their rows are written (a batch's events may
    /// follow their rollout in the same batch).
    public func insert(_ deployments: [Deployment]) {
        guard !deployments.isEmpty else { return }
        state.withLock { state in for deployment in deployments { state.index.insert(deployment) } }
    }
}
