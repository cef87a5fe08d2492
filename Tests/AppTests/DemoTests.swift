import Foundation
@testable import DevTools
import Posix
import Synchronization
import Postgres
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `faultline demo`, launched as a user would (with its scenarios brought forward): every
/// scenario's finding appears in the REST API, alerts arrive signed at the demo's receiver, and
/// SIGINT leaves nothing running.
@Suite struct DemoTests {
    @Test func theDemoShowsEveryScenarioAndStopsCleanly() async throws {
        // PostgreSQL runs as the postgres user when the tests run as root: a folder it can reach.
        let directory = "/tmp/faultline-demo-test-\(UUID().uuidString.prefix(8).lowercased())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try Loopback.freePort()
        let base = "http://127.0.0.1:\(port)"
        let output = directory + ".out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: output) }
        let outputHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        let demo = Process()
        demo.executableURL = URL(fileURLWithPath: try faultlineBinary())
        demo.currentDirectoryURL = repositoryRoot
        demo.arguments = ["demo", "--directory", directory, "--brokers", "1", "--partitions", "3", "--rate", "10",
                          "--history-minutes", "120", "--deployment-after", "10", "--outage-after", "45", "--outage-length", "60",
                          "--status-every", "2"]
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FAULTLINE_") }
        environment["FAULTLINE_HTTP_PORT"] = "\(port)"
        environment["FAULTLINE_ANALYSIS_INTERVAL"] = "2s"
        environment["FAULTLINE_API_CACHE_TTL"] = "0s"
        environment["FAULTLINE_MIGRATIONS_DIR"] = repositoryRoot.appendingPathComponent("migrations").path
        demo.environment = environment
        demo.standardOutput = outputHandle
        demo.standardError = outputHandle
        try demo.run()
        defer {
            if demo.isRunning { kill(demo.processIdentifier, SIGKILL) }
            // Whatever happened above, the test's PostgreSQL must not outlive it.
            try? LocalPostgresCluster(directory: directory + "/postgres").stop()
        }

        // The demo's key is in its first lines.
        var token: String?
        for _ in 0..<300 where token == nil {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"#key=demo-[0-9a-f-]+"#, options: .regularExpression) {
                token = String(text[range].dropFirst(5))
            } else {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        let key = try #require(token, "no dashboard link in: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        let auth = ["-H", "Authorization: Bearer \(key)"]

        func items(_ path: String) async throws -> [[String: Any]] {
            let (status, body) = try await curl(base + path, auth)
            guard status == 200, let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return [] }
            return object["items"] as? [[String: Any]] ?? []
        }

        // Every scenario's finding, with its recommendation.
        var missing: [String] = ["the rollout", "the outage", "the leak"]
        var insights: [[String: Any]] = []
        var recommendations: [[String: Any]] = []
        // About three minutes on a quiet machine (README); a loaded one gets longer.
        let deadline = ContinuousClock.now + .seconds(240)
        while !missing.isEmpty && ContinuousClock.now < deadline && demo.isRunning {
            try await Task.sleep(for: .seconds(2))
            insights = try await items("/v1/insights?limit=200")
            recommendations = try await items("/v1/recommendations?limit=200")
            func recommended(_ kinds: Set<String>, _ service: String?, _ title: String) -> Bool {
                insights.contains { insight in
                    kinds.contains(insight["kind"] as? String ?? "") && (service == nil || insight["service"] as? String == service)
                        && recommendations.contains {
                            ($0["insight_id"] as? NSNumber)?.int64Value == (insight["id"] as? NSNumber)?.int64Value
                                && ($0["title"] as? String ?? "").hasPrefix(title)
                        }
                }
            }
            let rollback = "Roll back checkout from 1.8.3 to 1.8.2"
            // The rollout's rise lasts: whether it is first seen as a spike or as a level shift
            // depends on where in its minute it falls.
            let rollout = recommended(["new_group"], "checkout", rollback) && recommended(["spike", "level_shift"], "checkout", rollback)
            let outage = insights.contains { insight in
                insight["kind"] as? String == "cluster"
                    && ((insight["details"] as? [String: Any])?["services"] as? String) == "checkout, orders, payments"
            }
            let leak = recommended(["predicted_breach"], "catalog", "Raise the memory limit of catalog")
            missing = [(rollout, "the rollout"), (outage, "the outage"), (leak, "the leak")].filter { !$0.0 }.map(\.1)
        }
        #expect(missing.isEmpty, """
            missing findings: \(missing); insights: \(insights.map { insight in
                let id = (insight["id"] as? NSNumber)?.int64Value
                let titles = recommendations.filter { ($0["insight_id"] as? NSNumber)?.int64Value == id }.map { $0["title"] as? String ?? "" }
                return "\(insight["kind"] ?? "") \(insight["service"] ?? "-") \(insight["version"] ?? "-") (previous \(insight["previous_version"] ?? "-")) from \(insight["started_at"] ?? "?") made \(insight["created_at"] ?? "?"): \(insight["title"] ?? "") -> \(titles)"
            })
            """)
        // The new error is the one of 1.8.3.
        #expect(insights.contains { ($0["title"] as? String ?? "").hasPrefix("New in checkout 1.8.3: NullPointerException") })

        // Background noise alone never alerts.
        let spikes = try await items("/v1/spikes?limit=200")
        let quiet = ["search", "inventory"]
        #expect(!spikes.contains { quiet.contains($0["service"] as? String ?? "") }, "spikes: \(spikes)")
        #expect(!insights.contains { ["spike", "level_shift"].contains($0["kind"] as? String ?? "") && quiet.contains($0["service"] as? String ?? "") })

        // Alerts arrive at the demo's receiver, signed, and are logged.
        var webhookLines: [String] = []
        for _ in 0..<60 {
            webhookLines = ((try? String(contentsOfFile: directory + "/webhooks.log", encoding: .utf8)) ?? "")
                .split(separator: "\n").map(String.init)
            if ["new_group", "spike", "cluster", "predicted_breach"].allSatisfy({ kind in webhookLines.contains { $0.contains("kind: \(kind) ") } }) { break }
            try await Task.sleep(for: .seconds(1))
        }
        for kind in ["new_group", "spike", "cluster", "predicted_breach"] {
            #expect(webhookLines.contains { $0.contains("signature verified: yes kind: \(kind) ") }, "\(kind) alert in \(webhookLines)")
        }
        #expect(!webhookLines.contains { $0.contains("signature verified: no") })

        // SIGINT stops everything: exit status 0, PostgreSQL down, the port closed.
        kill(demo.processIdentifier, SIGINT)
        let exited = try await onThread { () -> Bool in
            let until = Date().addingTimeInterval(60)
            while demo.isRunning && Date() < until { usleep(100_000) }
            return !demo.isRunning
        }
        #expect(exited)
        if exited { #expect(demo.terminationStatus == 0 && demo.terminationReason == .exit) }
        #expect(!FileManager.default.fileExists(atPath: directory + "/postgres/data/postmaster.pid"))
        let postgresPort = (try? String(contentsOfFile: directory + "/postgres/port", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(postgresPort != nil)
        if let postgresPort { #expect(!Loopback.isListening(port: postgresPort)) }
        #expect(!Loopback.isListening(port: port))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(text.contains("stopped: PostgreSQL is down"))
    }
}

@Suite struct SimulationBacklogTests {
    /// The demo's history is produced no faster than it is ingested: the embedded broker keeps
    /// only the newest 5 MiB of a partition and would drop the rest unread.
    @Test func historyWaitsForIngestOnceTheBacklogIsFull() async throws {
        let progress = SimulationProgress(backlogLimit: 100)
        progress.add(150)
        try await progress.waitForBacklog()  // nothing known ingested yet: no waiting
        progress.noteIngested(0)
        let returned = Mutex(false)
        let waiting = Task {
            try await progress.waitForBacklog()
            returned.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(!returned.withLock { $0 }, "150 produced, none ingested, a limit of 100: it must wait")
        progress.noteIngested(60)  // 90 waiting now: within the limit
        try await waiting.value
        #expect(returned.withLock { $0 })
    }
}
