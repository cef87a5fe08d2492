import Foundation
import Logging
import Posix
import Synchronization

/// A small pool of PostgreSQL connections, each on a thread of its own.
///
/// libpq calls block, so they never run on Swift's cooperative pool: a borrowed connection is
/// used on its slot's thread and `async` callers await the result. Connections open lazily and
/// reopen by themselves after the server restarts.
///
/// ```swift
/// let pool = PostgresPool(configuration: config, logger: logger)
/// let count = try await pool.withConnection { try $0.query("SELECT count(*) FROM t").first!.int(0) }
/// ```
///
/// Borrowers wait in order of arrival. With an ``acquireTimeout`` a borrower that waited that
/// long gives up with ``PostgresError/Code/poolExhausted`` instead of queueing without end (what
/// an HTTP request should do: answer 503 rather than pile up behind a slow database).
public final class PostgresPool: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Int, Error>
    }

    private struct State {
        var idle: [Int]
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 0
        var closed = false
    }

    private let slots: [Slot]
    private let state: Mutex<State>
    private let logger: Logger
    public let configuration: PostgresConfiguration
    /// Longest wait for a free connection; `nil`: wait as long as it takes.
    public let acquireTimeout: Duration?

    /// - Parameters:
    ///   - size: connections in this pool; `nil`: `configuration.poolSize`.
    ///   - name: names the pool's threads (`postgres-api-0`), for stack traces and `top -H`.
    ///   - acquireTimeout: longest wait for a free connection; `nil`: no limit.
    public init(configuration: PostgresConfiguration, size: Int? = nil, name: String = "postgres", acquireTimeout: Duration? = nil, logger: Logger) {
        let size = max(1, size ?? configuration.poolSize)
        self.configuration = configuration
        self.logger = logger
        self.acquireTimeout = acquireTimeout
        self.slots = (0..<size).map { Slot(thread: DedicatedThread(name: "\(name)-\($0)")) }
        self.state = Mutex(State(idle: Array((0..<size).reversed())))
    }

    /// Connections in this pool.
    public var size: Int { slots.count }

    deinit {
        for slot in slots { slot.thread.shutdown() }
    }

    /// Borrows a connection for `body`, which runs on the connection's own thread.
    ///
    /// - Throws: what `body` throws; ``PostgresError/Code/connectionFailed`` when no connection
    ///   can be opened; ``PostgresError/Code/poolExhausted`` when no connection was free within
    ///   ``acquireTimeout``; ``PostgresError/Code/poolClosed`` after ``close()``.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let index = try await acquire()
        defer { release(index) }
        let slot = slots[index]
        let configuration = self.configuration
        let logger = self.logger
        return try await slot.thread.run {
            let connection: PostgresConnection
            if let open = slot.box.connection {
                try open.ensureOpen()
                connection = open
            } else {
                connection = try PostgresConnection.connect(configuration, logger: logger)
                slot.box.connection = connection
            }
            return try body(connection)
        }
    }

    /// Runs `body` in a transaction on a borrowed connection.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { connection in try connection.transaction(body) }
    }

    /// Closes every connection; waiting and later borrowers get ``PostgresError/Code/poolClosed``.
    public func close() async {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: PostgresError(.poolClosed, "the connection pool is closed", operation: "acquire"))
        }
        for slot in slots {
            _ = try? await slot.thread.run { slot.box.connection = nil }
            slot.thread.shutdown()
        }
    }

    private func acquire() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let immediate: Result<Int, Error>? = state.withLock { state in
                if state.closed {
                    return .failure(PostgresError(.poolClosed, "the connection pool is closed", operation: "acquire"))
                }
                if let index = state.idle.popLast() { return .success(index) }
                state.nextWaiter += 1
                state.waiters.append(Waiter(id: state.nextWaiter, continuation: continuation))
                if let timeout = acquireTimeout { expire(state.nextWaiter, after: timeout) }
                return nil
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }

    /// Gives up waiter `id` after `timeout` unless it got a connection first. Whichever of the
    /// two removes the waiter from the queue (under the lock) is the one that resumes it.
    private func expire(_ id: UInt64, after timeout: Duration) {
        Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard let self else { return }
            let expired = self.state.withLock { state -> CheckedContinuation<Int, Error>? in
                guard let position = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: position).continuation
            }
            expired?.resume(throwing: PostgresError(
                .poolExhausted, "no database connection was free within \(timeout) (all \(self.size) in use)", operation: "acquire"))
        }
    }

    private func release(_ index: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Int, Error>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst().continuation }
            state.idle.append(index)
            return nil
        }
        waiter?.resume(returning: index)
    }
}

private struct Slot: Sendable {
    let thread: DedicatedThread
    let box = ConnectionBox()
}

/// Holds a slot's connection. `@unchecked Sendable`: it is read and written only on its slot's
/// thread, by one borrower at a time, which the pool guarantees.
private final class ConnectionBox: @unchecked Sendable {
    var connection: PostgresConnection?
}
