import COpenSSL
import Foundation
import Logging
import Postgres
import Storage
import Synchronization

/// The API keys that are not revoked, held in memory by the hash of each key, so that a request
/// with an unknown key costs no database round trip.
///
/// The set is read again when it is older than `refreshEvery` (5 s: a key revoked on another
/// replica stops working within that), and on a miss when it is older than `missRefreshAfter`
/// (1 s: a key made with `faultline keys create` works within a second), one reading at a time
/// for all requests. A flood of made-up keys thus costs at most one query a second. Keys created
/// or revoked through this replica's API take effect at once (``invalidate()``). When the
/// database cannot be read, a set read within `staleLimit` (60 s) is still used.
final class KeyDirectory: Sendable {
    private struct State {
        var keys: [String: APIKeyRecord] = [:]
        var loadedAt: ContinuousClock.Instant?
        var loading: Task<Void, Error>?
        /// Counts invalidations: a reading begun before one does not count as fresh.
        var generation = 0
        /// When each key's use was last written to `api_keys.last_used_at`.
        var noted: [Int64: ContinuousClock.Instant] = [:]
    }

    private let state = Mutex(State())
    private let pool: PostgresPool
    private let logger: Logger
    let refreshEvery: Duration
    let missRefreshAfter: Duration
    let staleLimit: Duration

    init(pool: PostgresPool, refreshEvery: Duration = .seconds(5), missRefreshAfter: Duration = .seconds(1),
         staleLimit: Duration = .seconds(60), logger: Logger) {
        self.pool = pool
        self.logger = logger
        self.refreshEvery = refreshEvery
        self.missRefreshAfter = missRefreshAfter
        self.staleLimit = staleLimit
    }

    /// The key `token` is, or `nil` when it is unknown or revoked.
    ///
    /// - Throws: a ``PostgresError`` when the set is older than `staleLimit` and cannot be read.
    func record(for token: String) async throws -> APIKeyRecord? {
        guard token.hasPrefix("flt_"), token.utf8.count < 200 else { return nil }
        let hash = Self.sha256Hex(token)
        if age.map({ $0 >= refreshEvery }) ?? true { try await refresh() }
        var found = state.withLock { $0.keys[hash] }
        if found == nil, let age, age >= missRefreshAfter {
            try await refresh()
            found = state.withLock { $0.keys[hash] }
        }
        if let found { note(found.id) }
        return found
    }

    /// The key `token` is when the set in memory is fresh (younger than `refreshEvery`) and
    /// holds it; `nil` otherwise, when only ``record(for:)`` can tell.
    func freshRecord(for token: String) -> APIKeyRecord? {
        guard token.hasPrefix("flt_"), token.utf8.count < 200 else { return nil }
        let hash = Self.sha256Hex(token)
        let found = state.withLock { state -> APIKeyRecord? in
            guard let loadedAt = state.loadedAt, ContinuousClock.now - loadedAt < refreshEvery else { return nil }
            return state.keys[hash]
        }
        if let found { note(found.id) }
        return found
    }

    /// Forgets the set: the next request reads it again (after a key is created or revoked).
    func invalidate() {
        state.withLock { state in
            state.loadedAt = nil
            state.loading = nil
            state.generation += 1
        }
    }

    private var age: Duration? {
        state.withLock { $0.loadedAt.map { ContinuousClock.now - $0 } }
    }

    /// Reads the set, or waits for the reading in flight. A failed reading is tolerated while
    /// the set in hand is younger than `staleLimit`.
    private func refresh() async throws {
        let pool = self.pool
        let task = state.withLock { state -> Task<Void, Error> in
            if let loading = state.loading { return loading }
            let generation = state.generation
            let task = Task { [weak self] in
                do {
                    let keys = try await pool.withConnection { try APIKeyStore.active(on: $0) }
                    self?.state.withLock { state in
                        guard state.generation == generation else { return }
                        state.keys = keys
                        state.loadedAt = .now
                        state.loading = nil
                    }
                } catch {
                    self?.state.withLock { state in
                        if state.generation == generation { state.loading = nil }
                    }
                    throw error
                }
            }
            state.loading = task
            return task
        }
        do {
            try await task.value
        } catch {
            guard let age, age < staleLimit else { throw error }
            logger.warning("API keys not re-read, using the set read earlier", metadata: ["error": "\(error)", "age": "\(age)"])
        }
    }

    /// Writes the key's use to the database at most once a minute, in the background.
    private func note(_ id: Int64) {
        let due = state.withLock { state -> Bool in
            if let last = state.noted[id], ContinuousClock.now - last < .seconds(60) { return false }
            if state.noted.count > 10_000 { state.noted.removeAll() }
            state.noted[id] = .now
            return true
        }
        guard due else { return }
        let pool = self.pool
        let logger = self.logger
        Task {
            do {
                try await pool.withConnection { try APIKeyStore.noteUse(ids: [id], on: $0) }
            } catch {
                logger.debug("could not note an API key's use", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The hex of `text`'s SHA-256 hash, as PostgreSQL's `encode(sha256(…), 'hex')` writes it.
    static func sha256Hex(_ text: String) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
        }
        let hex: [Character] = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 15)])
        }
        return out
    }
}
