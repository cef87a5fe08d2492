import Synchronization

/// Answers to the read endpoints, shared for a moment between requests that ask the same thing.
///
/// Requests for the same path and query by keys that see the same services (the same service
/// prefix, or none) get one answer: while it is computed, later ones wait for it rather than
/// query the database again, and for ``timeToLive`` (1 s) after, they get it as it was. Many
/// dashboards and pollers on the same lists, or one client hammering them, thus cost the
/// database about one query per distinct request per second, and the pool stays free for the
/// rest. Any write through the API (a request other than `GET` or `HEAD`), and the end of an
/// analysis run, forget every answer, so a client reads its own writes.
///
/// Only `200` answers are kept, at most ``maxBodyBytes`` each and ``maxTotalBytes`` in all
/// (``maxEntries`` entries): a client that varies its requests to defeat the sharing costs at
/// most that memory, and the database no more than the API pool's connections.
final class SharedReads: Sendable {
    struct Key: Hashable, Sendable {
        var path: String
        var query: [String]
        /// The caller's service prefix; `nil`: every service.
        var servicePrefix: String?

        init(_ request: APIRequest, servicePrefix: String?) {
            path = request.path
            query = request.query.keys.sorted().flatMap { name in [name] + request.query[name]! + ["\u{0}"] }
            self.servicePrefix = servicePrefix
        }

        var weight: Int { path.utf8.count + query.reduce(0) { $0 + $1.utf8.count + 16 } + (servicePrefix?.utf8.count ?? 0) + 64 }
    }

    private enum Entry {
        case computing(Task<APIResponse, Never>, generation: Int)
        case ready(APIResponse, until: ContinuousClock.Instant, bytes: Int)
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var bytes = 0
        var generation = 0
    }

    let timeToLive: Duration
    let maxEntries: Int
    let maxBodyBytes: Int
    let maxTotalBytes: Int
    private let state = Mutex(State())

    init(timeToLive: Duration = .seconds(1), maxEntries: Int = 1024, maxBodyBytes: Int = 1 << 20, maxTotalBytes: Int = 32 << 20) {
        self.timeToLive = timeToLive
        self.maxEntries = maxEntries
        self.maxBodyBytes = maxBodyBytes
        self.maxTotalBytes = maxTotalBytes
    }

    /// The shared answer to `key`, computed by `compute` when there is none.
    func answer(_ key: Key, _ compute: @escaping @Sendable () async -> APIResponse) async -> APIResponse {
        enum Found { case ready(APIResponse), wait(Task<APIResponse, Never>), start(Task<APIResponse, Never>, Int) }
        let found = state.withLock { state -> Found in
            let now = ContinuousClock.now
            switch state.entries[key] {
            case .ready(let response, let until, _) where until > now:
                return .ready(response)
            case .computing(let task, _):
                return .wait(task)
            case .ready(_, _, let bytes):
                state.entries[key] = nil
                state.bytes -= bytes
            case nil:
                break
            }
            let task = Task { await compute() }
            state.entries[key] = .computing(task, generation: state.generation)
            return .start(task, state.generation)
        }
        switch found {
        case .ready(let response):
            return response
        case .wait(let task):
            return await task.value
        case .start(let task, let generation):
            let response = await task.value
            keep(response, for: key, generation: generation)
            return response
        }
    }

    /// The answer to `key` when one is kept and fresh; never waits.
    func ready(_ key: Key) -> APIResponse? {
        state.withLock { state in
            guard case .ready(let response, let until, _)? = state.entries[key], until > ContinuousClock.now else { return nil }
            return response
        }
    }

    private func keep(_ response: APIResponse, for key: Key, generation: Int) {
        state.withLock { state in
            guard case .computing(_, let started)? = state.entries[key], started == generation else { return }
            state.entries[key] = nil
            guard state.generation == generation, response.status == 200, response.body.count <= maxBodyBytes else { return }
            let bytes = response.body.count + key.weight
            let now = ContinuousClock.now
            if state.entries.count >= maxEntries || state.bytes + bytes > maxTotalBytes {
                // Expired answers go first; when all are fresh, this one is not kept.
                for (key, entry) in state.entries {
                    if case .ready(_, let until, let size) = entry, until <= now {
                        state.entries[key] = nil
                        state.bytes -= size
                    }
                }
                guard state.entries.count < maxEntries, state.bytes + bytes <= maxTotalBytes else { return }
            }
            state.entries[key] = .ready(response, until: now + timeToLive, bytes: bytes)
            state.bytes += bytes
        }
    }

    /// Forgets every answer. One being computed still goes to the requests already waiting for
    /// it, but is neither kept nor given to requests that come after.
    func invalidate() {
        state.withLock { state in
            state.generation += 1
            state.entries = [:]
            state.bytes = 0
        }
    }

    /// The bytes held (for tests).
    var heldBytes: Int { state.withLock { $0.bytes } }
    var heldEntries: Int { state.withLock { state in state.entries.values.filter { if case .ready = $0 { return true } else { return false } }.count } }
}
