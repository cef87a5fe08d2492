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
public final class PostgresPool: Sendable {
    private struct State {
        var idle: [Int]
        var waiters: [CheckedContinuation<Int, Error>] = []
        var closed = false
    }

    private let slots: [Slot]
    private let state: Mutex<State>
    private let logger: Logger
    public let configuration: PostgresConfiguration

    public init(configuration: PostgresConfiguration, logger: Logger) {
        let size = max(1, configuration.poolSize)
        self.configuration = configuration
        self.logger = logger
        self.slots = (0..<size).map { Slot(thread: DedicatedThread(name: "postgres-\($0)")) }
        self.state = Mutex(State(idle: Array((0..<size).reversed())))
    }

    deinit {
        for slot in slots { slot.thread.shutdown() }
    }

    /// Borrows a connection for `body`, which runs on the connection's own thread.
    ///
    /// - Throws: what `body` throws; ``PostgresError/Code/connectionFailed`` when no connection
    ///   can be opened; ``PostgresError/Code/poolClosed`` after ``close()``.
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
            waiter.resume(throwing: PostgresError(.poolClosed, "the connection pool is closed", operation: "acquire"))
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
                state.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }

    private func release(_ index: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Int, Error>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
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
