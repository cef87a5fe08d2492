import App
import Foundation
import Posix
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct ServeHTTPTests {
    static let token = "test-admin-token-0123456789abcdef"

    func environment(_ url: String, _ bootstrap: String, port: Int) -> [String: String] {
        [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": bootstrap, "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "FAULTLINE_LOG_LEVEL": "warning", "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_HTTP_HOST": "127.0.0.1", "FAULTLINE_HTTP_PORT": "\(port)", "FAULTLINE_ADMIN_TOKEN": Self.token,
            "FAULTLINE_API_CACHE_TTL": "0s",
        ]
    }

    /// `faultline serve` ingests what is produced and answers real HTTP clients with it; SIGTERM ends it cleanly.
    @Test func serveAnswersTheAPIAndTheDashboardOverHTTP() async throws {
        let url = try migratedDatabaseURL()
        let (kafka, bootstrap) = try startDevKafka(partitions: 2)
        defer { kafka.terminate() }
        let port = try Loopback.freePort()
        let base = "http://127.0.0.1:\(port)"
        let environment = environment(url, bootstrap, port: port)
        let serve = try launch(["serve"], environment: environment)
        defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }

        var ready = false
        for _ in 0..<150 where !ready {
            ready = (try? await curl(base + "/readyz").status) == 200
            if !ready { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(ready)
        #expect(try await curl(base + "/healthz").status == 200)

        // Errors produced into Kafka become groups the API lists.
        let file = NSTemporaryDirectory() + "serve-\(UUID().uuidString.prefix(8)).ndjson"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let now = Date()
        let lines = (0..<30).map { index in
            #"{"timestamp":"\#(rfc3339(now.addingTimeInterval(Double(-index))))","service":"checkout","error_type":"TimeoutError","message":"upstream payments timed out after \#(index)s"}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let producer = try launch(["produce", "--file", file], environment: environment)
        try await onThread { producer.waitUntilExit() }
        #expect(producer.terminationStatus == 0)
        let auth = ["-H", "Authorization: Bearer \(Self.token)"]
        var groups = ""
        func counted(_ body: String) -> Bool { body.replacingOccurrences(of: " ", with: "").contains("\"event_count\":30") }
        for _ in 0..<150 where !counted(groups) {
            groups = try await curl(base + "/v1/groups?service=checkout", auth).body
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(counted(groups), "\(groups)")
        #expect(groups.contains("upstream payments timed out after <*>"), "\(groups)")

        let unauthorised = try await curl(base + "/v1/insights")
        #expect(unauthorised.status == 401 && unauthorised.body.contains("\"status\""))
        let insights = try await curl(base + "/v1/insights", auth)
        #expect(insights.status == 200 && insights.body.contains("\"items\""))
        // A request the server refuses by itself (headers over 64 KiB) is counted too.
        let huge = try await curl(base + "/v1/groups", ["-H", "X-Padding: " + String(repeating: "a", count: 70_000)])
        #expect(huge.status == 431)
        let metrics = try await curl(base + "/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("faultline_events_ingested_total{outcome=\"inserted\"} 30"), "\(metrics.body)")
        // Every metric of the catalog is exported with its help, except the lag of partitions
        // (reported every 5 s once assigned).
        for metric in FaultlineMetrics.catalog where metric.name != "faultline_consumer_lag" {
            #expect(metrics.body.contains("# HELP \(metric.name) \(metric.help)\n# TYPE \(metric.name) \(metric.kind.rawValue)\n"),
                    "\(metric.name) missing")
        }
        #expect(metrics.body.contains("faultline_http_requests_total{route=\"/v1/groups\",method=\"GET\",status=\"200\"}"))
        #expect(metrics.body.contains("faultline_http_requests_total{route=\"/v1/insights\",method=\"GET\",status=\"401\"} 1"))
        #expect(metrics.body.contains("faultline_batch_write_seconds_count "))
        #expect(metrics.body.contains("faultline_http_requests_total{route=\"refused\",method=\"other\",status=\"431\"} 1"))
        #expect(metrics.body.contains("faultline_analysis_leader 1"))
        let headerFile = NSTemporaryDirectory() + "headers-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: headerFile) }
        let page = try await curl(base + "/", ["-D", headerFile])
        #expect(page.status == 200 && page.body.contains("id=\"error-rate-chart\""))
        // Security headers on the dashboard and on the API's answers, errors included.
        for path in ["/", "/dashboard/app.js", "/v1/insights", "/healthz"] {
            _ = try await curl(base + path, ["-D", headerFile])
            let headers = ((try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? "").lowercased()
            #expect(headers.contains("content-security-policy: default-src 'none';") && headers.contains("frame-ancestors 'none'"), "\(path): \(headers)")
            #expect(headers.contains("script-src 'self';") && !headers.contains("unsafe-inline"), "\(path): \(headers)")
            #expect(headers.contains("x-content-type-options: nosniff") && headers.contains("x-frame-options: deny"), "\(path): \(headers)")
        }
        // Asked again with its entity tag, an unchanged page is 304 with no body, over the wire.
        _ = try await curl(base + "/dashboard/app.js", ["-D", headerFile])
        let scriptHeaders = ((try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? "").split(separator: "\r\n")
        let tag = try #require(scriptHeaders.first { $0.lowercased().hasPrefix("etag: ") }.map { String($0.dropFirst(6)) })
        let unchanged = try await curl(base + "/dashboard/app.js", ["-H", "If-None-Match: \(tag)"])
        #expect(unchanged.status == 304 && unchanged.body.isEmpty)
        let contract = try await curl(base + "/openapi.yaml")
        #expect(contract.status == 200 && contract.body.hasPrefix("openapi: 3.1"))

        kill(serve.processIdentifier, SIGTERM)
        try await onThread { serve.waitUntilExit() }
        #expect(serve.terminationStatus == 0)
    }

    /// A replica without the api role answers its probes and metrics, and nothing else.
    @Test func aReplicaWithoutTheAPIRoleServesOnlyHealthAndMetrics() async throws {
        let url = try migratedDatabaseURL()
        let (kafka, bootstrap) = try startDevKafka(partitions: 1)
        defer { kafka.terminate() }
        let port = try Loopback.freePort()
        let base = "http://127.0.0.1:\(port)"
        let serve = try launch(["serve", "--role", "ingest"], environment: environment(url, bootstrap, port: port))
        defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
        var health = 0
        for _ in 0..<150 where health != 200 {
            health = (try? await curl(base + "/healthz").status) ?? 0
            if health != 200 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(health == 200)
        #expect(try await curl(base + "/metrics").body.contains("faultline_events_ingested_total"))
        #expect(try await !curl(base + "/metrics").body.contains("faultline_analysis_leader"), "no analyze role")
        let api = try await curl(base + "/v1/insights", ["-H", "Authorization: Bearer \(Self.token)"])
        #expect(api.status == 404)
        kill(serve.processIdentifier, SIGTERM)
        try await onThread { serve.waitUntilExit() }
        #expect(serve.terminationStatus == 0)
    }
}
