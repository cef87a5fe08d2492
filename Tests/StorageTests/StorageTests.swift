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

@Suite struct SharedStateTests {
    /// A refresh reads only what was recorded since the one before; what Kafka brought first
    /// and the database later is known once.
    @Test func theDeploymentCacheReadsEachRecordedRolloutOnce() throws {
        let connection = try migratedDatabase()
        let cache = DeploymentCache()
        let start = RFC3339.parse("2026-11-22T12:00:00Z")!
        let first = Deployment(service: "checkout", environment: "production", version: "1.8.2", startedAt: start)
        let second = Deployment(service: "checkout", environment: "production", version: "1.8.3", startedAt: start.addingTimeInterval(600))
        #expect(try cache.refresh(on: connection) == 0)
        #expect(try DeploymentStore.insert(first, on: connection))
        cache.insert([second])  // read from Kafka before its row is written
        #expect(try cache.refresh(on: connection) == 1)
        #expect(try DeploymentStore.insert(second, on: connection))
        #expect(try cache.refresh(on: connection) == 1)
        #expect(try cache.refresh(on: connection) == 0)
        #expect(cache.index.rollouts(service: "checkout", environment: "production").map(\.version) == ["1.8.2", "1.8.3"])
        #expect(cache.index.context(service: "checkout", environment: "production", version: nil, at: start.addingTimeInterval(60))?.version == "1.8.2")
    }

    /// One session holds a lock at a time; it knows it holds it; a lock left is free again.
    @Test func anAdvisoryLockIsHeldByOneSessionAtATime() throws {
        let url = try TestDatabase.migrated("storage")
        let one = try PostgresConnection.connect(.init(url: url), logger: logger)
        let other = try PostgresConnection.connect(.init(url: url), logger: logger)
        let lock = AdvisoryLock.partitionRetention
        #expect(try lock.tryLock(on: one) && lock.isHeld(on: one))
        #expect(try !lock.tryLock(on: other) && !lock.isHeld(on: other))
        #expect(try lock.ifFree(on: other) { 1 } == nil)
        // Another key is free.
        #expect(try AdvisoryLock.analysisLeader.tryLock(on: other))
        try lock.unlock(on: one)
        #expect(try !lock.isHeld(on: one))
        #expect(try lock.ifFree(on: other) { try lock.isHeld(on: other) } == true)
        #expect(try !lock.isHeld(on: other), "ifFree gives the lock back")
        let keys = [AdvisoryLock.analysisLeader, .scoredWatermark, .partitionRetention]
        #expect(Set(keys.map(\.id)).count == keys.count)
    }
}

@Suite struct AnalysisReadTests {
    /// The versions each group ran since its own time, earliest first, read for many groups in
    /// one statement; a group with no event since then has none, an unknown one is absent.
    @Test func versionsSinceAreReadPerGroupInOneStatement() throws {
        let connection = try migratedDatabase()
        let start = RFC3339.parse("2026-11-22T12:00:00Z")!
        var batch = IngestBatch()
        let rows: [(String, Double, String?)] = [
            ("aaaa", 0, "1.0"), ("aaaa", 600, "1.1"), ("aaaa", 1_200, "1.1"), ("aaaa", 1_500, nil), ("aaaa", 1_800, "1.0"),
            ("bbbb", 0, "2.0"), ("bbbb", 60, "2.1"),
        ]
        batch.events = rows.enumerated().map { enriched($0.offset, fingerprint: $0.element.0, at: start.addingTimeInterval($0.element.1), version: $0.element.2) }
        try PartitionManager.ensure(days: [PartitionManager.day(of: start)], on: connection)
        _ = try EventStore.write(batch, on: connection)

        let found = try AnalysisStore.versions(
            since: [("aaaa", start.addingTimeInterval(300)), ("bbbb", start.addingTimeInterval(60)), ("zzzz", start)], on: connection)
        let aaaa = try #require(found["aaaa"])
        #expect(aaaa.map(\.version) == ["1.1", nil, "1.0"], "earliest first, each version once")
        #expect(aaaa.map(\.first) == [start.addingTimeInterval(600), start.addingTimeInterval(1_500), start.addingTimeInterval(1_800)])
        #expect(found["bbbb"] == nil, "nothing after its time (the bound is exclusive)")
        #expect(found["zzzz"] == nil && found.count == 1)
        #expect(try AnalysisStore.versions(since: [], on: connection).isEmpty)
    }
}

@Suite struct InsightFilterTests {
    /// The filter in memory (the API's cache of the newest insights) and in SQL (a page beyond
    /// them) choose the same insights, for every combination of its fields.
    @Test func memoryAndSQLAgreeOnEveryCombination() throws {
        let connection = try migratedDatabase()
        let start = RFC3339.parse("2026-11-22T12:00:00Z")!
        let kinds: [Insight.Kind] = [.spike, .newGroup, .regression]
        let services: [String?] = ["team-a-checkout", "team-a-orders", "team-b-search", "ünïcode", nil]
        for n in 0..<30 {
            let insight = Insight(
                dedupeKey: "k\(n)", kind: kinds[n % 3], severity: .warning, service: services[n % 5], title: "t\(n)", summary: "s",
                startedAt: start.addingTimeInterval(Double(n) * 60), lastSeenAt: start.addingTimeInterval(Double(n) * 600))
            let id = try AnalysisStore.upsertInsight(insight, on: connection).id
            if n % 4 == 0 { try APIStore.acknowledgeInsight(id: id, on: connection) }
        }
        let recent = try APIStore.recentInsights(limit: 100, on: connection)
        #expect(recent.complete && recent.entries.count == 30)
        var checked = 0
        for kind in [nil, "spike", "regression"] {
            for service in [nil, "team-a-orders", "ünïcode", "nobody"] {
                for status in [nil, "open", "acknowledged"] {
                    for since in [nil, start.addingTimeInterval(9_000)] {
                        for prefix in [nil, "team-a-", "ü", "team-b-search-longer"] {
                            let filter = InsightFilter(kind: kind, service: service, status: status, since: since, servicePrefix: prefix)
                            let inMemory = recent.entries.filter(filter.matches).map(\.json)
                            let inSQL = try APIStore.insights(filter, after: nil, limit: 100, on: connection).items
                            #expect(inMemory == inSQL, "\(filter)")
                            checked += inMemory.isEmpty ? 0 : 1
                        }
                    }
                }
            }
        }
        #expect(checked > 40, "the combinations that choose something: \(checked)")
    }
}

@Suite struct CountRetentionTests {
    /// Minutes older than two days become hours, in pieces when bounded; what is summed is
    /// what was counted; a late minute adds to its hour; hours past the retention go; the API's
    /// series reads minutes and hours alike.
    @Test func oldMinutesAreSummedIntoHoursAndExpiredHoursDeleted() throws {
        let connection = try migratedDatabase()
        let now = RFC3339.parse("2026-11-22T12:30:00Z")!
        func minute(_ offset: Double) -> Date { now.addingTimeInterval(offset * 60) }
        // Three days back: the minutes of 12:00 to 13:59 on the 19th; two of the 20th, one of the 22nd.
        var rows: [(String, String, Date, Int)] = []
        for m in 0..<120 { rows.append(("aaaa", "checkout", minute(-3 * 1440 - 30 + Double(m)), m % 5 + 1)) }
        rows.append(("bbbb", "search", minute(-2 * 1440 - 90), 7))  // 2026-11-20T11:00, past the cutoff
        rows.append(("bbbb", "search", minute(-2 * 1440 - 10), 9))  // 12:20 on the 20th: within two days of 12:00
        rows.append(("aaaa", "checkout", minute(-5), 4))
        try connection.copyFrom("COPY event_counts (fingerprint, service, bucket, count) FROM STDIN") { writer in
            for row in rows {
                try writer.field(row.0)
                try writer.field(row.1)
                writer.field(row.2)
                writer.field(row.3)
                try writer.endRow()
            }
        }
        func hours() throws -> [String] {
            try connection.query("SELECT fingerprint, hour, count FROM event_counts_hourly ORDER BY hour, fingerprint").rows.map {
                "\(try $0.string(0)) \(ISO8601DateFormatter().string(from: try $0.date(1))) \(try $0.int(2))"
            }
        }
        // Two pieces of half an hour make the first hour.
        let piece = try CountRetention.apply(retentionDays: 30, now: now, minutes: 30, on: connection)
        #expect(piece == CountRetention.Pass(minutesRolledUp: 30, hoursWritten: 1, hoursDeleted: 0))
        let first = try CountRetention.apply(retentionDays: 30, now: now, minutes: 30, on: connection)
        #expect(first == CountRetention.Pass(minutesRolledUp: 30, hoursWritten: 1, hoursDeleted: 0))
        let firstHour = (0..<60).reduce(0) { $0 + $1 % 5 + 1 }
        #expect(try hours() == ["aaaa 2026-11-19T12:00:00Z \(firstHour)"])

        let rest = try CountRetention.apply(retentionDays: 30, now: now, on: connection)
        #expect(rest.minutesRolledUp == 61 && rest.hoursWritten == 2)
        let secondHour = (60..<120).reduce(0) { $0 + $1 % 5 + 1 }
        #expect(try hours() == ["aaaa 2026-11-19T12:00:00Z \(firstHour)", "aaaa 2026-11-19T13:00:00Z \(secondHour)",
                                "bbbb 2026-11-20T11:00:00Z 7"])
        #expect(try connection.query("SELECT count(*), sum(count) FROM event_counts").first.map { "\(try $0.int(0)) \(try $0.int(1))" } == "2 13")
        #expect(try CountRetention.apply(retentionDays: 30, now: now, on: connection) == CountRetention.Pass())

        // A late minute of an hour already rolled up is added to it.
        try connection.query("INSERT INTO event_counts (fingerprint, service, bucket, count) VALUES ('bbbb', 'search', $1, 5)",
                             [.timestamp(minute(-2 * 1440 - 75))])
        #expect(try CountRetention.apply(retentionDays: 30, now: now, on: connection).hoursWritten == 1)
        #expect(try hours().last == "bbbb 2026-11-20T11:00:00Z 12")

        // The series: hours where only hours are left, minutes where minutes are.
        let series = try APIStore.series(service: "search", fingerprint: nil, from: minute(-3 * 1440), to: now, stepSeconds: 3600, on: connection)
        let hour = { (date: Date) in Int(date.timeIntervalSince1970 / 3600) * 3600 }
        #expect(series == [hour(minute(-2 * 1440 - 90)): 12, hour(minute(-2 * 1440 - 10)): 9])

        // Three days of retention, half an hour later: the hour that ended three days ago goes.
        let later = try CountRetention.apply(retentionDays: 3, now: now.addingTimeInterval(1800), on: connection)
        #expect(later == CountRetention.Pass(minutesRolledUp: 1, hoursWritten: 1, hoursDeleted: 1))
        #expect(try hours() == ["aaaa 2026-11-19T13:00:00Z \(secondHour)", "bbbb 2026-11-20T11:00:00Z 12", "bbbb 2026-11-20T12:00:00Z 9"])
    }
}

extension CountRetentionTests {
    /// The services summary sums the services' hourly totals and the minutes of the hour its
    /// 24 hours begin in: exactly what a day of every group's minutes sums to.
    @Test func aServicesDayOfEventsIsSummedFromItsHoursAndTheMinutesOfTheFirst() throws {
        let connection = try migratedDatabase()
        let now = Date()
        var batch = IngestBatch()
        var id = 0
        // Minutes ago and events: two before the day, three in it (its first minutes, mid-day, the last minute).
        for (minutesAgo, count) in [(25 * 60, 16), (24 * 60 + 3, 8), (24 * 60 - 3, 1), (23 * 60, 2), (1, 4)] {
            for _ in 0..<count {
                batch.events.append(enriched(id, fingerprint: id % 2 == 0 ? "aaaa" : "bbbb", at: now.addingTimeInterval(Double(-minutesAgo * 60))))
                id += 1
            }
        }
        try PartitionManager.ensure(days: Set(batch.events.map { PartitionManager.day(of: $0.event.timestamp) }), on: connection)
        _ = try EventStore.write(batch, on: connection)
        #expect(try connection.query("SELECT sum(count) FROM service_counts").first?.int(0) == 31)
        let services = try APIStore.services(learning: (0, 0, 0), on: connection)
        let checkout = try #require(services.first)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(checkout.json.utf8)) as? [String: Any])
        #expect(summary["events_last_24h"] as? Int == 7, "\(summary)")
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
