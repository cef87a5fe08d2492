import CLinuxShims
import Posix
import Synchronization
import Testing

@Suite struct BulkWorkersTests {
    /// Every part runs once, on the workers, at a lower priority than the caller's; results
    /// come back in order, with more parts than threads too.
    @Test(arguments: [1, 2, 3, 7])
    func partsRunOnceInOrderBelowTheCallersPriority(parts: Int) async throws {
        let workers = BulkWorkers(count: 2, name: "bulk-test", niceness: 3)
        let callerNice = CLinuxShims_thread_nice()
        let runs = Mutex([Int](repeating: 0, count: parts))
        let results = try await workers.map(parts) { part -> (Int, Int32, String) in
            runs.withLock { $0[part] += 1 }
            return (part * part, CLinuxShims_thread_nice(), DedicatedThread.currentName)
        }
        #expect(results.map(\.0) == (0..<parts).map { $0 * $0 })
        #expect(runs.withLock { $0 } == [Int](repeating: 1, count: parts))
        for (_, nice, name) in results {
            #expect(nice >= min(19, callerNice + 3), "ran at nice \(nice)")
            #expect(name.hasPrefix("bulk-test-"), "ran on \(name)")
        }
    }

    /// A released value is freed on a worker, not on the caller's thread.
    @Test func aReleasedValueIsFreedOnAWorker() async throws {
        final class Tracked: Sendable {
            let freed: AsyncStream<String>.Continuation
            init(_ freed: AsyncStream<String>.Continuation) { self.freed = freed }
            deinit { freed.yield(DedicatedThread.currentName) }
        }
        let workers = BulkWorkers(count: 2, name: "bulk-free")
        for _ in 0..<20 {
            let (names, freed) = AsyncStream.makeStream(of: String.self)
            let value = [Tracked(freed)]
            workers.release(consume value)
            var iterator = names.makeAsyncIterator()
            let name = await iterator.next() ?? "?"
            #expect(name.hasPrefix("bulk-free-"), "freed on \(name)")
        }
    }

    /// One worker runs every part itself (it cannot hand parts to a thread that waits for them).
    @Test func oneWorkerRunsEveryPart() async throws {
        let workers = BulkWorkers(count: 1, name: "bulk-one")
        let results = try await workers.map(5) { $0 + 1 }
        #expect(results == [1, 2, 3, 4, 5])
    }
}
