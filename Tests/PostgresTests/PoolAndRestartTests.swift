import Foundation
import TestSupport
import Postgres
import Synchronization
import Testing

@Suite struct PoolTests {
    @Test func manyConcurrentBorrowersShareAFewConnections() async throws {
        let pool = PostgresPool(configuration: PostgresConfiguration(url: try TestDatabase.url(), poolSize: 3), logger: testLogger)
        let pids = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<24 {
                group.addTask {
                    try await pool.withConnection { connection in
                        try connection.query("SELECT pg_backend_pid(), pg_sleep(0.02)").first!.int(0)
                    }
                }
            }
            return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
        }
        #expect(pids.count <= 3)
        #expect(pids.count >= 2, "borrowers ran concurrently")
        await pool.close()
        let error = await #expect(throws: PostgresError.self) { try await pool.withConnection { _ in 1 } }
        #expect(error?.code == .poolClosed)
    }
}

extension PoolTests {
    /// With an acquire timeout, a borrower that finds every connection busy gives up with
    /// `poolExhausted` instead of queueing; the connection it waited for is still handed on to
    /// the next borrower once it is free, and no borrower is resumed twice.
    @Test func borrowersGiveUpAfterTheAcquireTimeout() async throws {
        let url = try TestDatabase.url()
        let pool = PostgresPool(configuration: PostgresConfiguration(url: url, poolSize: 1), acquireTimeout: .milliseconds(300), logger: testLogger)
        let lock = try PostgresConnection.connect(PostgresConfiguration(url: url), logger: testLogger)
        try lock.query("SELECT pg_advisory_lock(4711)")
        // The pool's one connection waits for the lock this test holds.
        let holder = Task { try await pool.withConnection { try $0.query("SELECT pg_advisory_lock(4711), pg_advisory_unlock(4711)").count } }
        try await Task.sleep(for: .milliseconds(200))
        let waiting = await withTaskGroup(of: PostgresError.Code?.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await pool.withConnection { _ in 1 }
                        return nil
                    } catch let error as PostgresError {
                        return error.code
                    } catch {
                        return nil
                    }
                }
            }
            return await group.reduce(into: [PostgresError.Code?]()) { $0.append($1) }
        }
        #expect(waiting == Array(repeating: .poolExhausted, count: 5), "\(waiting)")
        try lock.query("SELECT pg_advisory_unlock(4711)")
        #expect(try await holder.value == 1)
        #expect(try await pool.withConnection { try $0.query("SELECT 7").first!.int(0) } == 7)
        await pool.close()
    }
}

/// These restart a server, so they use one of their own, not the shared test server.
@Suite struct RestartTests {
    @Test func connectionsComeBackAfterTheServerRestarts() async throws {
        let directory = "/tmp/faultline-restart-\(UUID().uuidString.prefix(8))"
        let cluster = LocalPostgresCluster(directory: directory)
        try await onThread { try cluster.start() }
        defer {
            try? cluster.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try cluster.createDatabase("restart", logger: testLogger)
        let url = cluster.url(database: "restart")
        let pool = PostgresPool(configuration: PostgresConfiguration(url: url, poolSize: 1, connectTimeout: .seconds(2)), logger: testLogger)
        let direct = try PostgresConnection.connect(PostgresConfiguration(url: url), logger: testLogger)
        let before = try await pool.withConnection { $0.backendPID }

        try await onThread { try cluster.restart() }
        let after = try await pool.withConnection { connection in
            try connection.query("SELECT 42").first!.int(0) == 42 ? connection.backendPID : -1
        }
        #expect(after != before && after > 0)
        try direct.ensureOpen()
        #expect(try direct.query("SELECT 1").first?.int(0) == 1)

        // While the server is down the error says so; once it is back, so is the pool.
        try await onThread { try cluster.stop() }
        let error = await #expect(throws: PostgresError.self) { try await pool.withConnection { try $0.query("SELECT 1") } }
        #expect(error?.isConnectionError == true)
        try await onThread { try cluster.start() }
        #expect(try await pool.withConnection { try $0.query("SELECT 7").first!.int(0) } == 7)
        await pool.close()
    }
}
