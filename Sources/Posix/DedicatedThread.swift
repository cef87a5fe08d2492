import Dispatch
import CLinuxShims
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One operating-system thread that runs submitted jobs in order.
///
/// Blocking C calls (a Kafka poll, a libpq round trip, `curl_easy_perform`) must never run on
/// Swift's cooperative thread pool, where they would starve every other task. Such calls are
/// submitted here instead, and `async` callers await their result.
///
/// ```swift
/// let thread = DedicatedThread(name: "postgres-1")
/// let rows = try await thread.run { try connection.query("SELECT 1") }
/// ```
public final class DedicatedThread: Sendable {
    private let queue = JobQueue()
    public let name: String

    public init(name: String) {
        self.name = name
        let thread = Thread { [queue] in
            // Linux threads inherit their creator's name; give this one its own (15 bytes at most).
            _ = CLinuxShims_set_thread_name(name)
            while true {
                queue.pending.wait()
                let job: (@Sendable () -> Void)? = queue.state.withLock { state in
                    state.jobs.isEmpty ? nil : state.jobs.removeFirst()
                }
                guard let job else { break }  // woken with no job: shut down
                job()
            }
            queue.finished.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit {
        shutdown()
    }

    /// Queues `job`; returns `false` (and drops it) once the thread is shutting down.
    @discardableResult
    public func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let accepted = queue.state.withLock { state in
            guard state.accepting else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted { queue.pending.signal() }
        return accepted
    }

    /// Runs `body` on this thread and returns its result.
    ///
    /// - Throws: what `body` throws, or ``DedicatedThreadError/shutDown`` when the thread no
    ///   longer accepts work.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit {
                continuation.resume(with: Result { try body() })
            }
            if !accepted { continuation.resume(throwing: DedicatedThreadError.shutDown(name)) }
        }
    }

    /// Lets queued jobs finish, then ends the thread. Idempotent; does not wait.
    public func shutdown() {
        let first = queue.state.withLock { state in
            defer { state.accepting = false }
            return state.accepting
        }
        if first { queue.pending.signal() }
    }

    /// The calling thread's operating-system name (what `top -H` shows).
    public static var currentName: String {
        var buffer = [CChar](repeating: 0, count: 16)
        _ = CLinuxShims_get_thread_name(&buffer, buffer.count)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Shuts down and blocks until the thread has run its last job.
    /// Must not be called from the thread itself.
    public func shutdownAndWait() {
        shutdown()
        queue.finished.wait()
        queue.finished.signal()  // let later callers pass too
    }
}

/// The jobs of a ``DedicatedThread``, shared by the thread and its submitters.
private final class JobQueue: Sendable {
    struct State {
        var jobs: [@Sendable () -> Void] = []
        var accepting = true
    }

    let state = Mutex(State())
    /// Counts submitted jobs, plus one wake-up for shutdown.
    let pending = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
}

public enum DedicatedThreadError: Error, CustomStringConvertible {
    case shutDown(String)

    public var description: String {
        switch self {
        case .shutDown(let name): "thread \(name) is shut down"
        }
    }
}
