import Domain
import Foundation
import Ingest
import Postgres
import Storage
import Testing
import TestSupport

@Suite struct PartitionRetentionTests {
    /// Expired days go, the rest stay; while another replica holds the retention lock this one
    /// drops nothing, and once it is free it does.
    @Test func expiredPartitionsAreDroppedByOneReplicaAtATime() async throws {
        let url = try migratedDatabaseURL()
        let pool = PostgresPool(configuration: .init(url: url), logger: logger)
        let now = RFC3339.parse("2026-11-22T12:00:00Z")!
        let other = try PostgresConnection.connect(.init(url: url), logger: logger)
        try PartitionManager.ensure(days: Set((0..<5).map { PartitionManager.day(of: now.addingTimeInterval(-Double($0) * 86_400)) }), on: other)
        let retention = PartitionRetention(days: 2, pool: pool, logger: logger)

        #expect(try AdvisoryLock.partitionRetention.tryLock(on: other))
        #expect(await retention.apply(now: now).isEmpty)
        #expect(try PartitionManager.existing(on: other).count == 5)
        try AdvisoryLock.partitionRetention.unlock(on: other)

        #expect(await retention.apply(now: now) == ["events_p20261118", "events_p20261119"])
        #expect(try PartitionManager.existing(on: other).sorted() == ["events_p20261120", "events_p20261121", "events_p20261122"])
        await pool.close()
    }
}
