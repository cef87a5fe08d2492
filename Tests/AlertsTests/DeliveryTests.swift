import API
import App
import Alerts
import Domain
import Foundation
import HTTPClient
import Postgres
import Storage
import Testing
import TestSupport

/// Checks a Slack incoming-webhook message: known block types within Slack's limits.
func expectValidSlack(_ object: [String: Any]) {
    let blocks = object["blocks"] as? [[String: Any]] ?? []
    #expect(!blocks.isEmpty && blocks.count <= 50)
    #expect((object["text"] as? String)?.isEmpty == false)
    for block in blocks {
        let type = block["type"] as? String ?? ""
        #expect(["header", "section", "divider", "context", "actions"].contains(type), "block type \(type)")
        if let text = block["text"] as? [String: Any] {
            let value = text["text"] as? String ?? ""
            #expect(!value.isEmpty && value.count <= (type == "header" ? 150 : 3000))
            #expect(["plain_text", "mrkdwn"].contains(text["type"] as? String ?? ""))
        }
        if let fields = block["fields"] as? [[String: Any]] {
            #expect(fields.count <= 10)
            for field in fields { #expect((field["text"] as? String)?.count ?? 0 <= 2000) }
        }
        if type == "context" { #expect((block["elements"] as? [Any])?.isEmpty == false) }
    }
}

/// Checks a Teams incoming-webhook message carrying an Adaptive Card.
func expectValidTeams(_ object: [String: Any]) {
    #expect(object["type"] as? String == "message")
    let attachment = (object["attachments"] as? [[String: Any]])?.first ?? [:]
    #expect(attachment["contentType"] as? String == "application/vnd.microsoft.card.adaptive")
    let card = attachment["content"] as? [String: Any] ?? [:]
    #expect(card["$schema"] as? String == "http://adaptivecards.io/schemas/adaptive-card.json")
    #expect(card["type"] as? String == "AdaptiveCard" && card["version"] as? String == "1.4")
    let body = card["body"] as? [[String: Any]] ?? []
    #expect(!body.isEmpty)
    for element in body { #expect(["TextBlock", "FactSet"].contains(element["type"] as? String ?? "")) }
    for action in card["actions"] as? [[String: Any]] ?? [] {
        #expect(action["type"] as? String == "Action.OpenUrl" && (action["url"] as? String)?.hasPrefix("https://") == true)
    }
}

@Suite(.serialized) struct DeliveryTests {
    /// The outbox row is written in its insight's transaction, so nothing can leave before that
    /// transaction commits: a trigger the test adds keeps it open for 3 s after the row is
    /// written, and the running dispatcher sends nothing until it ends.
    @Test func anAlertLeavesOnlyAfterItsInsightsTransactionCommits() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        try fixture.webhook(receiver.base + "/generic")
        try fixture.connection.execute("""
            CREATE FUNCTION hold_open() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$;
            CREATE TRIGGER hold_open AFTER INSERT ON alert_outbox FOR EACH ROW EXECUTE FUNCTION hold_open();
            """)
        let url = fixture.url
        try await withDispatcher(fixture) { status async throws in
            let recording = Task { try await onThread { try Fixture(existing: url).insight(1) } }
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .milliseconds(2500) {
                #expect(status.delivered == 0, "an alert left before its insight was committed")
                #expect(try await receiver.requests().isEmpty)
                try await Task.sleep(for: .milliseconds(250))
            }
            _ = try await recording.value
            #expect(try await eventually { status.delivered == 1 })
            let requests = try await receiver.requests()
            #expect(requests.count == 1)
        }
    }

    @Test func eachFormatArrivesSignedWithItsDeliveryIDAndAValidBody() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        for format in ["generic", "slack", "teams"] { try fixture.webhook(receiver.base + "/" + format, format: format) }
        let id = try fixture.insight(1)
        try await withDispatcher(fixture) { status async throws in
            #expect(try await eventually { status.delivered == 3 })
        }
        let requests = try await receiver.requests()
        #expect(requests.count == 3)
        let outbox = try fixture.deliveries()
        #expect(outbox.allSatisfy { $0.status == "delivered" && $0.attempts == 1 && $0.code == 200 })
        #expect(Set(requests.compactMap(\.delivery)) == Set(outbox.map(\.delivery)))
        for request in requests {
            #expect(request.signatureOK, "signature of \(request.path)")
            #expect(request.attempt == "1")
            let object = request.json
            switch request.path {
            case "/generic":
                #expect(object["type"] as? String == "alert" && object["delivery_id"] as? String == request.delivery)
                let alert = try #require((object["alerts"] as? [[String: Any]])?.first)
                #expect(alert["insight_id"] as? Int == Int(id) && alert["service"] as? String == "checkout")
                #expect(alert["environment"] as? String == "production" && alert["version"] as? String == "1.8.3")
                #expect(alert["observed"] as? Double == 180 && alert["expected"] as? Double == 6 && alert["event_count"] as? Int == 180)
                #expect(alert["fingerprint"] as? String == "fp-1")
                #expect(alert["url"] as? String == "https://faultline.example.com/v1/insights/\(id)")
                let recommendation = try #require((alert["recommendations"] as? [[String: Any]])?.first)
                #expect(recommendation["action"] as? String == "rollback" && (recommendation["evidence"] as? [String])?.count == 1)
            case "/slack":
                expectValidSlack(object)
                #expect(request.body.contains("Roll back checkout from 1.8.3 to 1.8.2") && request.body.contains("/v1/insights/\(id)"))
            case "/teams":
                expectValidTeams(object)
                #expect(request.body.contains("Roll back checkout from 1.8.3 to 1.8.2") && request.body.contains("/v1/insights/\(id)"))
            default:
                Issue.record("unexpected path \(request.path)")
            }
        }
    }

    @Test func aBurstFoldsIntoOneDigestAndTheSameGroupIsThrottled() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        let hook = try fixture.webhook(receiver.base + "/hook", filters: #"{"digest_window": 2, "cooldown": 30, "throttle": 600}"#)
        let ignored = try fixture.webhook(receiver.base + "/other", filters: #"{"kinds": ["regression"], "services": ["billing"]}"#)
        try fixture.webhook(receiver.base + "/big", filters: #"{"min_count": 1000, "digest_window": 0}"#)
        for n in 1...3 { try fixture.insight(n) }
        try fixture.insight(1, fingerprint: "fp-1")  // the same group again: throttled
        try fixture.insight(4, kind: .levelShift, fingerprint: "fp-1")  // a level shift counts as a spike: throttled too
        #expect(try fixture.deliveries(hook).count == 1)
        #expect(try fixture.deliveries(ignored).isEmpty)
        try await withDispatcher(fixture) { status async throws in
            #expect(try await eventually { status.delivered == 1 })
            try fixture.insight(5)  // during the cooldown: waits in a new delivery
            // Two passes later the dispatcher has seen it, whatever pass was under way.
            let seen = status.cycles + 2
            #expect(try await eventually { status.cycles >= seen })
        }
        let requests = try await receiver.requests()
        #expect(requests.count == 1)
        let digest = try #require(requests.first).json
        #expect(digest["type"] as? String == "digest" && digest["count"] as? Int == 3)
        let waiting = try fixture.deliveries(hook)
        #expect(waiting.count == 2 && waiting[1].status == "pending")
        // The update of a known insight alerts nobody.
        let before = try fixture.connection.query("SELECT count(*) FROM alert_items").first!.int(0)
        var insight = try #require(try AnalysisStore.insights(limit: 1, on: fixture.connection).first)
        insight.eventCount = 999
        #expect(try AlertOutbox.record(insight, on: fixture.connection).created == false)
        #expect(try fixture.connection.query("SELECT count(*) FROM alert_items").first!.int(0) == before)
    }

    @Test func everythingQueuedWhileTheReceiverIsDownArrivesOnceItIsBack() async throws {
        let fixture = try Fixture()
        var receiver = try Receiver()
        let port = receiver.port
        try await receiver.stop()
        try fixture.webhook("http://127.0.0.1:\(port)/hook")
        try fixture.webhook("http://127.0.0.1:\(port)/slack", format: "slack")
        for n in 1...5 { try fixture.insight(n) }
        var configuration = testDispatcherConfiguration()
        configuration.breakerThreshold = 3
        configuration.breakerOpen = .milliseconds(500)
        configuration.breakerMaxOpen = .seconds(1)
        try await withDispatcher(fixture, configuration) { status async throws in
            #expect(try await eventually { status.retried >= 6 })
            #expect(status.delivered == 0)
            // The breaker holds the subscription back as a whole.
            let open = try fixture.connection.query("SELECT count(*) FROM alert_endpoints WHERE open_until IS NOT NULL").first!.int(0)
            #expect(open >= 1)
            receiver = try Receiver(port: port)
            #expect(try await eventually(.seconds(30)) { status.delivered == 10 })
        }
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        let requests = try await receiver.requests()
        let outbox = try fixture.deliveries()
        #expect(outbox.count == 10 && outbox.allSatisfy { $0.status == "delivered" } && outbox.contains { $0.attempts > 1 })
        #expect(Set(requests.compactMap(\.delivery)) == Set(outbox.map(\.delivery)))
        #expect(requests.count == 10, "each delivery once")
        #expect(requests.allSatisfy { $0.signatureOK })
    }

    @Test func aSlowReceiverIsRetriedA400IsNotAndA429WaitsForRetryAfter() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        // Requests arrive in the order of the outbox: slow, bad request, too many requests.
        let slow = try fixture.webhook(receiver.base + "/slow", filters: #"{"services": ["checkout"], "digest_window": 0}"#)
        try fixture.insight(1)
        let bad = try fixture.webhook(receiver.base + "/bad", filters: #"{"services": ["billing"], "digest_window": 0}"#)
        try fixture.insight(2, service: "billing")
        let limited = try fixture.webhook(receiver.base + "/limited", filters: #"{"services": ["orders"], "digest_window": 0}"#)
        try fixture.insight(3, service: "orders")
        try await receiver.script([["status": 200, "delay": 2.5], ["status": 400], ["status": 429, "retry_after": 3]])
        var configuration = testDispatcherConfiguration()
        configuration.workers = 1  // the scripted answers go to the requests in the outbox's order
        try await withDispatcher(fixture, configuration) { status async throws in
            #expect(try await eventually { status.delivered == 2 && status.failed == 1 })
        }
        let requests = try await receiver.requests()
        let slowRequests = requests.filter { $0.path == "/slow" }
        #expect(slowRequests.count == 2 && slowRequests[0].delivery == slowRequests[1].delivery)
        let slowRow = try #require(try fixture.deliveries(slow).first)
        #expect(slowRow.status == "delivered" && slowRow.attempts == 2)

        let badRow = try #require(try fixture.deliveries(bad).first)
        #expect(badRow.status == "failed" && badRow.attempts == 1 && badRow.code == 400)
        #expect(requests.filter { $0.path == "/bad" }.count == 1)

        let limitedRequests = requests.filter { $0.path == "/limited" }
        #expect(limitedRequests.count == 2)
        if limitedRequests.count == 2 {
            #expect(limitedRequests[1].time - limitedRequests[0].time >= 2.9, "Retry-After: 3 honoured")
            #expect(limitedRequests[1].attempt == "2")
        }
        #expect(try fixture.deliveries(limited).first?.status == "delivered")
    }

    /// A delivery that failed for good is queued again through the API and arrives with the
    /// same delivery id and body; only a failed one can be retried.
    @Test func aFailedDeliveryRetriedThroughTheAPIArrivesWithTheSameID() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        let webhook = try fixture.webhook(receiver.base + "/hook")
        try fixture.insight(1)
        try await receiver.script([["status": 400]])
        try await withDispatcher(fixture) { status async throws in
            #expect(try await eventually { status.failed == 1 })
        }
        let failed = try #require(try fixture.deliveries(webhook).first)
        #expect(failed.status == "failed" && failed.code == 400)

        let token = "retry-admin-token"
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": fixture.url, "FAULTLINE_ADMIN_TOKEN": token, "FAULTLINE_WEBHOOK_ALLOW_PRIVATE": "true",
        ])
        let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
        defer { Task { await pool.close() } }
        let api = Faultline.makeAPI(configuration, pool: pool, producer: nil, readiness: { true }, logger: logger)
        func retry(_ delivery: String, webhook: Int64 = webhook) async -> (status: Int, body: String) {
            let response = await api.handle(APIRequest(
                method: "POST", target: "/v1/webhooks/\(webhook)/deliveries/\(delivery)/retry",
                headers: ["authorization": "Bearer \(token)"], body: []))
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        let accepted = await retry(failed.delivery)
        #expect(accepted.status == 202, "\(accepted.body)")
        #expect(accepted.body.contains(#""status" : "pending""#) || accepted.body.contains(#""status":"pending""#), "\(accepted.body)")
        #expect(!accepted.body.contains(#""retried_at" : null"#) && !accepted.body.contains(#""retried_at":null"#), "\(accepted.body)")
        let again = await retry(failed.delivery)
        #expect(again.status == 409 && again.body.contains("pending"), "\(again.body)")
        #expect(await retry(UUID().uuidString).status == 404)
        #expect(await retry(failed.delivery, webhook: webhook + 1).status == 404)
        #expect(await retry("not-a-uuid").status == 400)

        try await withDispatcher(fixture) { status async throws in
            #expect(try await eventually { status.delivered == 1 })
        }
        let requests = try await receiver.requests()
        #expect(requests.count == 2 && Set(requests.compactMap(\.delivery)) == [failed.delivery])
        #expect(requests.count == 2 && requests[0].body == requests[1].body, "the same message")
        let delivered = try #require(try fixture.deliveries(webhook).first)
        #expect(delivered.status == "delivered" && delivered.attempts == 2)
        #expect(await retry(failed.delivery).status == 409)
    }

    /// Two replicas' dispatchers on one outbox: every delivery is sent once.
    @Test func twoDispatchersShareTheOutboxWithoutSendingTwice() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        try fixture.webhook(receiver.base + "/a")
        try fixture.webhook(receiver.base + "/b", format: "slack")
        for n in 1...20 { try fixture.insight(n) }
        var configuration = testDispatcherConfiguration()
        configuration.batchSize = 3
        try await withDispatcher(fixture, configuration) { first async throws in
            try await withDispatcher(fixture, configuration) { second async throws in
                #expect(try await eventually { first.delivered + second.delivered == 40 })
                #expect(first.delivered > 0 && second.delivered > 0, "both replicas sent some: \(first.delivered), \(second.delivered)")
            }
        }
        let requests = try await receiver.requests()
        #expect(requests.count == 40)
        #expect(Set(requests.compactMap(\.delivery)).count == 40)
        #expect(try fixture.deliveries().allSatisfy { $0.status == "delivered" && $0.attempts == 1 })
    }

    @Test func privateAddressesAreRefusedUnlessAllowed() async throws {
        let fixture = try Fixture()
        let receiver = try Receiver()
        defer { kill(receiver.process.processIdentifier, SIGKILL) }
        try fixture.webhook("http://localhost:\(receiver.port)/hook")
        try fixture.insight(1)
        var configuration = testDispatcherConfiguration()
        configuration.http.allowPrivateAddresses = false
        try await withDispatcher(fixture, configuration) { status async throws in
            #expect(try await eventually { status.failed == 1 })
        }
        let row = try #require(try fixture.deliveries().first)
        #expect(row.status == "failed" && row.error?.contains("refused_address") == true, "\(row)")
        #expect(try await receiver.requests().isEmpty)
    }
}
