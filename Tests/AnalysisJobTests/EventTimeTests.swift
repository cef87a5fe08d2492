import Analysis
import Domain
import Foundation
import Postgres
import Storage
import Testing
import TestSupport

@testable import AnalysisJob

/// Ingest's watermark as a batch of partition 0 reports it: caught up (complete up to when it
/// was read) or lagging (complete up to the batch's earliest event).
func progress(_ offset: Int, completeUntil: Date?) -> PartitionProgress {
    PartitionProgress(topic: "errors", partition: 0, nextOffset: Int64(offset), completeUntil: completeUntil)
}

/// Findings must not depend on when the errors arrive: late, lagging and back-filled data.
@Suite(.serialized) struct EventTimeTests {
    static let incidents: [(service: String, errorType: String, message: String)] = [
        ("gateway", "SSLHandshakeException", "certificate expired for api.partner.example"),
        ("search", "HTTPError", "429 Too Many Requests from catalog"),
        ("reports", "OutOfMemoryError", "Java heap space"),
        ("mailer", "UnknownHostException", "smtp.internal: Name or service not known"),
        ("orders", "SQLTransientConnectionException", "HikariPool-1 - Connection is not available, request timed out after 30000ms"),
        ("uploads", "IOException", "No space left on device"),
    ]

    /// Six services, three hours of background errors and six incidents at the end (~120/min
    /// against ~8/min), all of it reaching the database while the analysis runs (ingest works
    /// through a backlog): each incident is reported as a spike, with nothing to correct
    /// afterwards, and the findings are those of the same history stored before the analysis
    /// started.
    @Test func historyArrivingWhileTheAnalysisRunsStillReportsEverySpike() async throws {
        try await onThread { check in
            let (arriving, rescored) = try Self.sixIncidents(whileRunning: true)
            for incident in Self.incidents {
                let found = arriving.filter { $0.hasPrefix("spike \(incident.service) ") }
                check.expect(!found.isEmpty, "no spike for \(incident.service): \(arriving.sorted())")
                check.expect(found.allSatisfy { $0.hasSuffix(RFC3339.format(start.addingTimeInterval(180 * 60))) }, "\(found)")
            }
            check.expect(rescored == 0, "the watermark held the scoring back; nothing was late: \(rescored) services scored again")
            let (first, _) = try Self.sixIncidents(whileRunning: false)
            check.expect(arriving == first, "arriving while running: \(arriving.sorted()); stored first: \(first.sorted())")
        }
    }

    /// The six incidents' findings ("kind service started_at" of spikes, level shifts and new
    /// groups), with the history stored while the analysis runs, or all of it before.
    static func sixIncidents(whileRunning: Bool) throws -> (findings: Set<String>, rescored: Int) {
        var fixture = try Fixture()
        let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
        let end = start.addingTimeInterval(184 * 60)
        var now = end.addingTimeInterval(5)
        var rescored = 0
        // Ingest reads the backlog ten minutes of event time at a time.
        for chunk in stride(from: 0, to: 184, by: 10) {
            for minute in chunk..<min(chunk + 10, 184) {
                let time = start.addingTimeInterval(Double(minute) * 60)
                for (index, incident) in incidents.enumerated() {
                    let last = minute == min(chunk + 10, 184) - 1 && index == incidents.count - 1
                    let caughtUp = last && minute == 183
                    // A lagging partition is complete up to the batch's earliest event.
                    let watermark = last ? progress(fixture.sequence + 1, completeUntil: caughtUp ? now : start.addingTimeInterval(Double(chunk) * 60)) : nil
                    try fixture.events(service: incident.service, errorType: "TimeoutError", message: "call timed out after \(minute % 5 + 1)s",
                                       at: spread(noisy(8, minute + index), in: time))
                    if minute >= 180 {
                        try fixture.events(service: incident.service, errorType: incident.errorType, message: incident.message,
                                           at: spread(120, in: time))
                    }
                    if let watermark {
                        try fixture.events(service: incident.service, errorType: "TimeoutError", message: "call timed out after 1s",
                                           at: [time.addingTimeInterval(59)], progress: watermark)
                    }
                }
            }
            if whileRunning {
                rescored += try engine.run(on: fixture.connection, now: now).servicesRescored
                now = now.addingTimeInterval(15)
            }
        }
        if !whileRunning { now = end.addingTimeInterval(5) }
        for _ in 0..<4 {
            rescored += try engine.run(on: fixture.connection, now: now).servicesRescored
            now = now.addingTimeInterval(15)
        }
        let findings = try fixture.insights().filter { [.spike, .levelShift, .newGroup].contains($0.kind) }
            .map { "\($0.kind.rawValue) \($0.service ?? "-") \(RFC3339.format($0.startedAt))" }
        return (Set(findings), rescored)
    }

    /// Ingest held back for five minutes while an incident begins: nothing is scored past the
    /// watermark meanwhile, and once ingest catches up the spike is reported once, from the
    /// minute it began.
    @Test func aConsumerHeldBackDuringAnIncidentReportsTheSpikeOnceItCatchesUp() async throws {
        try await onThread { check in
            var fixture = try Fixture()
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let incident = start.addingTimeInterval(180 * 60)
            for minute in 0..<180 {
                let time = start.addingTimeInterval(Double(minute) * 60)
                try fixture.events(service: "payments", errorType: "TimeoutError", message: "ledger timed out after \(minute % 7 + 1)s",
                                   at: spread(noisy(8, minute), in: time), progress: progress(fixture.sequence + 1, completeUntil: time.addingTimeInterval(60)))
            }
            _ = try engine.run(on: fixture.connection, now: incident.addingTimeInterval(1))
            // Held back: the incident's errors are produced, but not stored.
            for minute in 1...5 {
                let report = try engine.run(on: fixture.connection, now: incident.addingTimeInterval(Double(minute) * 60 + 20))
                check.expect(report.bucketsScored == 0 && report.spikes == 0, "minute \(minute): \(report)")
                check.expect(report.scoredUntil.map { $0 <= incident } ?? false, "scored past the watermark: \(report)")
            }
            check.expect(try fixture.insights().filter { $0.kind == .spike }.isEmpty)
            // Caught up: five minutes at 120/min arrive at once.
            let caughtUp = incident.addingTimeInterval(5 * 60 + 25)
            for minute in 0..<5 {
                let time = incident.addingTimeInterval(Double(minute) * 60)
                try fixture.events(service: "payments", errorType: "TimeoutError", message: "ledger timed out after 30s",
                                   at: spread(120, in: time), progress: minute == 4 ? progress(fixture.sequence + 121, completeUntil: caughtUp) : nil)
            }
            for seconds in [30.0, 45, 60, 90, 150] {
                _ = try engine.run(on: fixture.connection, now: caughtUp.addingTimeInterval(seconds))
            }
            let spikes = try fixture.insights().filter { $0.kind == .spike && $0.service == "payments" }
            check.expect(spikes.count == 1, "one insight for the incident: \(spikes.map(\.title))")
            check.expect(spikes.first?.startedAt == incident, "\(spikes.map(\.startedAt)) against \(incident)")
            check.expect((spikes.first?.eventCount ?? 0) >= 4 * 120, "the insight grew with the incident: \(spikes.first?.eventCount ?? 0)")
        }
    }

    /// One old minute arrives late (a producer that buffered): that service's series are scored
    /// again once, the minute's spike is reported, and the other service is left alone.
    @Test func aLateBatchOfOneOldMinuteReScoresThatSeriesOnce() async throws {
        try await onThread { check in
            var fixture = try Fixture()
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let now = start.addingTimeInterval(180 * 60)
            for minute in 0..<180 {
                let time = start.addingTimeInterval(Double(minute) * 60)
                try fixture.events(service: "billing", errorType: "TimeoutError", message: "invoice store timed out after \(minute % 7 + 1)s",
                                   at: spread(noisy(8, minute), in: time))
                try fixture.events(service: "catalog", errorType: "TimeoutError", message: "index timed out after \(minute % 5 + 1)s",
                                   at: spread(noisy(6, minute), in: time), progress: progress(fixture.sequence + 1, completeUntil: time.addingTimeInterval(60)))
            }
            let first = try engine.run(on: fixture.connection, now: now.addingTimeInterval(15))
            check.expect(first.servicesRescored == 0 && first.spikes == 0, "\(first)")
            // Thirty minutes late: a minute of billing with 150 errors.
            let lateMinute = now.addingTimeInterval(-30 * 60)
            try fixture.events(service: "billing", errorType: "TimeoutError", message: "invoice store timed out after 30s",
                               at: (0..<150).map { lateMinute.addingTimeInterval(Double($0) * 0.39) })
            let late = try fixture.connection.query("SELECT service, bucket FROM late_counts").rows.map { (try $0.string(0), try $0.date(1)) }
            check.expect(late.count == 1 && late.first?.0 == "billing" && late.first?.1 == lateMinute, "\(late)")
            let report = try engine.run(on: fixture.connection, now: now.addingTimeInterval(30))
            check.expect(report.servicesRescored == 1, "\(report)")
            let spikes = try fixture.insights().filter { $0.kind == .spike }
            check.expect(spikes.map(\.service) == ["billing"] && spikes.first?.startedAt == lateMinute, "\(spikes.map(\.title))")
            let again = try engine.run(on: fixture.connection, now: now.addingTimeInterval(45))
            check.expect(again.servicesRescored == 0 && again.insightsCreated == 0, "\(again)")
            check.expect(try fixture.connection.query("SELECT count(*) FROM late_counts").first?.int(0) == 0)
        }
    }

    /// A back-fill that the watermark ran ahead of, as a paced back-fill makes it (ingest
    /// catches up with a producer still sending history): the analysis scored the minutes with
    /// only the first part of the history, and the rest arrives late, the first new minute with
    /// its tail. The new minute, as busy as the history, is compared with the whole history, not
    /// with the part stored before: no spike.
    @Test(arguments: [60, 120, 150])
    func aNewMinuteIsScoredAfterTheLateHistoryThatCameWithIt(storedFirst: Int) async throws {
        try await onThread { check in
            var fixture = try Fixture()
            let engine = AnalysisEngine(configuration: configuration(try shippedRules()), logger: logger)
            let live = start.addingTimeInterval(180 * 60)
            func minutes(_ range: Range<Int>, caughtUpAt caughtUp: Date) throws {
                for minute in range {
                    let time = start.addingTimeInterval(Double(minute) * 60)
                    for (index, service) in ["billing", "catalog"].enumerated() {
                        let last = minute == range.upperBound - 1 && index == 1
                        try fixture.events(service: service, errorType: "TimeoutError", message: "store timed out after \(minute % 7 + 1)s",
                                           at: spread(noisy(30, minute + index), in: time),
                                           progress: last ? progress(fixture.sequence + 1, completeUntil: caughtUp) : nil)
                    }
                }
            }
            // The analysis runs before anything is stored, as it does when a demo starts.
            _ = try engine.run(on: fixture.connection, now: live.addingTimeInterval(-60))
            // The first part of the history is in when ingest finds nothing more to read:
            // complete up to now.
            try minutes(0..<storedFirst, caughtUpAt: live)
            _ = try engine.run(on: fixture.connection, now: live.addingTimeInterval(5))
            // The rest arrives, late, and the first new minute with it.
            try minutes(storedFirst..<181, caughtUpAt: live.addingTimeInterval(61))
            let report = try engine.run(on: fixture.connection, now: live.addingTimeInterval(75))
            check.expect(report.servicesRescored == 2, "\(report)")
            let spikes = try fixture.insights().filter { [.spike, .levelShift].contains($0.kind) }
            check.expect(spikes.isEmpty, "the new minute against part of the history: \(spikes.map(\.title))")
        }
    }
}
