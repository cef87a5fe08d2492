import Domain
import Foundation
import Logging
import Postgres
import Storage
import Testing
import TestSupport

let logger = Logger(label: "storage-tests")

/// A fresh, migrated database on the test server.
func migratedDatabase() throws -> PostgresConnection {
    try PostgresConnection.connect(.init(url: try TestDatabase.migrated("storage")), logger: logger)
}

func enriched(_ id: Int, fingerprint: String, at time: Date, version: String? = nil) -> EnrichedEvent {
    EnrichedEvent(
        event: ErrorEvent(eventID: StableHash.uuid("test/\(id)"), timestamp: time, service: "checkout", environment: "production",
                          version: version, errorType: "Timeout", message: "timeout \(id)\t'tab'\n\\ quoted"),
        fingerprint: fingerprint, template: "timeout <*>", deployment: nil,
        origin: MessageOrigin(topic: "errors", partition: 0, offset: Int64(id)))
}

@Suite struct EventStoreTests {
    @Test func writesAreIdempotentAndCountersMoveOnlyForNewRows() throws {
        let connection = try migratedDatabase()
        let now = Date()
        var batch = IngestBatch()
        batch.events = (0..<10).map { enriched($0, fingerprint: $0 < 7 ? "aaaa" : "bbbb", at: now.addingTimeInterval(Double($0) * 30), version: $0 < 5 ? "1.0" : "1.1") }
        try PartitionManager.ensure(days: Set(batch.events.map { PartitionManager.day(of: $0.event.timestamp) }), on: connection)

        let first = try EventStore.write(batch, on: connection)
        #expect(first == WriteResult(inserted: 10, duplicates: 0, deadLetters: 0, deployments: 0))
        // A replay of the same batch plus two new events.
        batch.events += [enriched(10, fingerprint: "aaaa", at: now, version: "1.1"), enriched(11, fingerprint: "cccc", at: now)]
        let second = try EventStore.write(batch, on: connection)
        #expect(second == WriteResult(inserted: 2, duplicates: 10, deadLetters: 0, deployments: 0))

        #expect(try connection.query("SELECT count(*) FROM events").first?.int(0) == 12)
        let groups = try connection.query("SELECT fingerprint, event_count, first_version, last_version FROM groups ORDER BY fingerprint")
        #expect(try groups.rows.map { "\(try $0.string(0)):\(try $0.int(1)):\($0.optionalString(2) ?? "-"):\($0.optionalString(3) ?? "-")" }
            == ["aaaa:8:1.0:1.1", "bbbb:3:1.1:1.1", "cccc:1:-:-"])
        #expect(try connection.query("SELECT sum(count) FROM event_counts").first?.int(0) == 12)
        #expect(try connection.query("SELECT message FROM events WHERE source_offset = 3").first?.string(0) == "timeout 3\t'tab'\n\\ quoted")
    }

    @Test func deadLettersAndDeploymentsAreRecordedOnce() throws {
        let connection = try migratedDatabase()
        var batch = IngestBatch()
        batch.deadLetters = [DeadLetter(origin: MessageOrigin(topic: "errors", partition: 1, offset: 9), key: [1, 0, 2],
                                        value: [0xFF, 0x00], headers: [("h", Array("v".utf8)), ("null", nil)], reason: "not JSON")]
        batch.deployments = [Deployment(service: "checkout", environment: "production", version: "1.8.3", commit: "abc", startedAt: Date())]
        #expect(try EventStore.write(batch, on: connection) == WriteResult(inserted: 0, duplicates: 0, deadLetters: 1, deployments: 1))
        #expect(try EventStore.write(batch, on: connection) == WriteResult(inserted: 0, duplicates: 0, deadLetters: 0, deployments: 0))
        let letter = try #require(try connection.query("SELECT message_key, message_value, headers::text, reason FROM dead_letters").first)
        #expect(try letter.bytes(0) == [1, 0, 2])
        #expect(try letter.bytes(1) == [0xFF, 0x00])
        #expect(try letter.string(2) == #"[{"name": "h", "value": "v"}, {"name": "null", "value": null}]"#)
        let loaded = try DeploymentStore.load(after: 0, on: connection)
        #expect(loaded.map(\.version) == ["1.8.3"] && loaded.first?.commit == "abc")
    }

    @Test func partitionsAreCreatedPerDayAndDroppedAfterRetention() throws {
        let connection = try migratedDatabase()
        let now = RFC3339.parse("2026-11-22T12:00:00Z")!
        let days = Set((0..<5).map { PartitionManager.day(of: now.addingTimeInterval(-Double($0) * 86_400)) })
        try PartitionManager.ensure(days: days, on: connection)
        try PartitionManager.ensure(days: days, on: connection)  // again: no error
        #expect(try PartitionManager.existing(on: connection).sorted()
            == ["events_p20261118", "events_p20261119", "events_p20261120", "events_p20261121", "events_p20261122"])
        let dropped = try PartitionManager.dropOlderThan(days: 2, now: now, on: connection)
        #expect(dropped == ["events_p20261118", "events_p20261119"])
        #expect(try PartitionManager.existing(on: connection).count == 3)
    }
}

@Suite struct DeploymentBackfillTests {
    @Test func aLateDeploymentRecordEnrichesTheEventsAlreadyStored() throws {
        let connection = try migratedDatabase()
        let rollout = Date().addingTimeInterval(-600)
        var events = IngestBatch()
        events.events = [
            enriched(1, fingerprint: "aaaa", at: rollout.addingTimeInterval(60), version: "2.0"),   // its version
            enriched(2, fingerprint: "aaaa", at: rollout.addingTimeInterval(120)),                   // no version
            enriched(3, fingerprint: "aaaa", at: rollout.addingTimeInterval(-60)),                   // before the rollout
            enriched(4, fingerprint: "aaaa", at: rollout.addingTimeInterval(60), version: "1.0"),   // another version
        ]
        try PartitionManager.ensure(days: Set(events.events.map { PartitionManager.day(of: $0.event.timestamp) }), on: connection)
        _ = try EventStore.write(events, on: connection)

        var late = IngestBatch()
        late.deployments = [Deployment(service: "checkout", environment: "production", version: "2.0", commit: "abc", startedAt: rollout)]
        #expect(try EventStore.write(late, on: connection).deployments == 1)
        let rows = try connection.query("""
            SELECT source_offset, version, commit_sha, seconds_since_deploy FROM events ORDER BY source_offset
            """).rows.map { $0.values }
        #expect(rows == [["1", "2.0", "abc", "60"], ["2", "2.0", "abc", "120"], ["3", nil, nil, nil], ["4", "1.0", nil, nil]])
    }
}
