import CLinuxShims
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Threads of lower scheduling priority for bulk CPU work that may wait, such as decoding
/// ingest batches: on a busy machine they yield to the work that should not (the HTTP server,
/// the Kafka client's heartbeats, and a database on the same host, which ingest itself waits for).
///
/// ```swift
/// let workers = BulkWorkers(count: 2, name: "decode")
/// let parts = try await workers.map(2) { part in decode(part) }
/// ```
public final class BulkWorkers: Sendable {
    private let threads: [DedicatedThread]

    /// - Parameters:
    ///   - niceness: added to each thread's nice value (Linux schedules threads one by one).
    public init(count: Int, name: String, niceness: Int32 = 5) {
        threads = (0..<max(1, count)).map { DedicatedThread(name: "\(name)-\($0)") }
        for thread in threads {
            thread.submit {
                // Best effort: without it the work only runs at the usual priority.
                _ = CLinuxShims_lower_thread_priority(niceness)
            }
        }
    }

    deinit {
        for thread in threads { thread.shutdown() }
    }

    /// The number of threads.
    public var count: Int { threads.count }

    /// `body(0..<count)` on these threads, results in index order.
    public func map<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) async throws -> [T] {
        guard count > 0 else { return [] }
        let slots = ResultSlots<T>(count)
        try await threads[0].run { [threads] in
            let group = DispatchGroup()
            // Part 0 on this thread, the others spread over the rest (never onto this one,
            // which waits for them); with one thread, all here.
            let others = threads.dropFirst()
            for index in 1..<count {
                group.enter()
                let accepted = !others.isEmpty && others[1 + (index - 1) % others.count].submit {
                    slots.set(index, body(index))
                    group.leave()
                }
                if !accepted {
                    slots.set(index, body(index))
                    group.leave()
                }
            }
            slots.set(0, body(0))
            group.wait()
        }
        return slots.values()
    }
}

extension BulkWorkers {
    /// Drops `value` on the last of these threads, so that what it holds (a written batch: many
    /// thousands of allocations) is freed there rather than on the caller's path. The caller
    /// gives its value up (`consume`): the last reference is the worker's.
    public func release<T: Sendable>(_ value: consuming T) {
        let box = ReleaseBox(consume value)
        // A thread that no longer takes work: dropped here instead.
        _ = threads[threads.count - 1].submit { box.value = nil }
    }
}

private final class ReleaseBox<T>: @unchecked Sendable {
    var value: T?
    init(_ value: consuming T) { self.value = consume value }
}

/// One slot per part; each written by exactly one part, read after all have ended.
private final class ResultSlots<T>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<T?>
    init(_ count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil)
    }
    deinit {
        storage.deinitialize()
        storage.deallocate()
    }
    func set(_ index: Int, _ value: T) { storage[index] = value }
    /// Taken out of the slots, not copied: each result stays uniquely referenced.
    func values() -> [T] { storage.indices.map { storage[$0].take()! } }
}
