import Foundation
import Storage

/// The hot reads (the newest insights, the services summary) kept in memory and reloaded when
/// older than the time to live or after a write through the API, so dashboards polling every
/// few seconds cost the database one query per interval, not one per request.
actor HotCache {
    struct Snapshot: Sendable {
        var insights: [APIStore.InsightEntry]
        /// Every insight is in `insights` (there are no more than the cache holds).
        var complete: Bool
        var services: [(name: String, json: String)]
        var loadedAt: ContinuousClock.Instant
    }

    private let timeToLive: Duration
    private let load: @Sendable () async throws -> Snapshot
    private var snapshot: Snapshot?
    private var loading: Task<Snapshot, Error>?
    private var generation = 0

    init(timeToLive: Duration, load: @escaping @Sendable () async throws -> Snapshot) {
        self.timeToLive = timeToLive
        self.load = load
    }

    /// The snapshot, reloaded first when it is missing or stale. Concurrent callers share one load.
    func current() async throws -> Snapshot {
        if let snapshot, ContinuousClock.now - snapshot.loadedAt < timeToLive { return snapshot }
        let task: Task<Snapshot, Error>
        if let loading {
            task = loading
        } else {
            task = Task { [load] in try await load() }
            loading = task
        }
        let started = generation
        defer { if started == generation { loading = nil } }
        let fresh = try await task.value
        if started == generation { snapshot = fresh }
        return fresh
    }

    /// Forgets the snapshot: the next read loads a fresh one (after a write, or when the
    /// analysis job finishes a run).
    func invalidate() {
        generation += 1
        snapshot = nil
        loading = nil
    }
}
