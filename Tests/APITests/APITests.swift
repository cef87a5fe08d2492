import Domain
import Foundation
import Postgres
import Storage
import Testing
import TestSupport

@testable import API

@Suite struct AccessTests {
    /// Every route of the table: 401 without a key and with a bad one, 403 outside the key's
    /// scope or service prefix; the public ones answer without a key.
    @Test func everyRouteChecksItsKey() async throws {
        let fixture = try Fixture()
        let fingerprint = try fixture.events(service: "checkout", message: "upstream timed out after 3s", at: [fixture.base])
        let readKey = try await fixture.key(scopes: ["read"])
        let writeKey = try await fixture.key(scopes: ["write"])
        let prefixedAdmin = try await fixture.key(scopes: ["admin"], prefix: "payments-")
        for route in FaultlineAPI.routes {
            let path = route.path.replacingOccurrences(of: "{id}", with: "1").replacingOccurrences(of: "{fingerprint}", with: fingerprint)
                .replacingOccurrences(of: "{service}", with: "checkout")
            let label = "\(route.method) \(route.path)"
            guard let scope = route.scope else {
                let reply = await fixture.call(route.method, path, key: nil)
                #expect(reply.status == 200, "\(label): \(reply.text)")
                continue
            }
            let anonymous = await fixture.call(route.method, path, key: nil)
            expectProblem(anonymous, 401)
            #expect(anonymous.response.header("www-authenticate")?.hasPrefix("Bearer") == true, "\(label)")
            expectProblem(await fixture.call(route.method, path, key: "flt_not-a-key"), 401)
            expectProblem(await fixture.call(route.method, path, key: "Basic abc"), 401)
            if scope >= .write { expectProblem(await fixture.call(route.method, path, key: readKey), 403) }
            if scope >= .admin { expectProblem(await fixture.call(route.method, path, key: writeKey), 403) }
            // The prefixed key has every scope: only its prefix stops it.
            let prefixed = await fixture.call(route.method, path, key: prefixedAdmin, body: "{}")
            let servesCheckout = path.contains(fingerprint) || path.contains("/services/checkout")
            if route.allServices || servesCheckout {
                expectProblem(prefixed, 403)
            } else {
                #expect(prefixed.status != 401 && prefixed.status != 403, "\(label): \(prefixed.text)")
            }
        }
    }

    @Test func keysWorkForTheirScopeAndStopWorkingWhenRevoked() async throws {
        let fixture = try Fixture()
        let fingerprint = try fixture.events(service: "checkout", message: "upstream timed out after 3s", at: [fixture.base])
        let created = await fixture.call("POST", "/v1/api-keys", body: #"{"name": "ci", "scopes": ["read"]}"#)
        #expect(created.status == 201)
        let key = try #require(created.object["key"] as? String)
        #expect(key.hasPrefix("flt_") && key.count == 4 + 43)
        let id = try #require(created.object["id"] as? Int)
        #expect(await fixture.call("GET", "/v1/groups", key: key).status == 200)
        expectProblem(await fixture.call("POST", "/v1/groups/\(fingerprint)/resolve", key: key), 403)
        // Listed without the secret; stored only as a hash.
        let listed = await fixture.call("GET", "/v1/api-keys")
        #expect(!listed.text.contains(key) && listed.items.contains { $0["id"] as? Int == id })
        let stored = try fixture.connection().query("SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))", [.text(key)])
        #expect(try stored.first?.int(0) == 1)
        let dump = try fixture.connection().query("SELECT row_to_json(k)::text FROM api_keys k").rows.map { try $0.string(0) }
        #expect(!dump.joined().contains(key))

        #expect(await fixture.call("DELETE", "/v1/api-keys/\(id)").status == 200)
        expectProblem(await fixture.call("GET", "/v1/groups", key: key), 401)
        expectProblem(await fixture.call("DELETE", "/v1/api-keys/999999"), 404)
        expectProblem(await fixture.call("POST", "/v1/api-keys", body: #"{"name": "x", "scopes": ["root"]}"#), 400)
        expectProblem(await fixture.call("POST", "/v1/api-keys", body: #"{"scopes": ["read"]}"#), 400)
        // The bootstrap token works; a near miss does not.
        expectProblem(await fixture.call("GET", "/v1/groups", key: adminToken + "x"), 401)
    }

    /// While every connection of the API's pool is busy, unknown keys are still refused at
    /// once (the keys are held in memory), a request that needs the database is answered 503
    /// with Retry-After after the pool's acquire timeout, `/readyz` says not ready, and
    /// everything works again once the database is free. A key made directly in the database
    /// (as `faultline keys create` does) is accepted within a second or so.
    @Test func aBusyDatabaseGivesUnknownKeys401AndRequests503() async throws {
        let fixture = try Fixture()
        try fixture.events(service: "checkout", message: "upstream timed out after 3s", at: [fixture.base])
        let pool = PostgresPool(configuration: .init(url: fixture.url, poolSize: 1), acquireTimeout: .milliseconds(500), logger: logger)
        defer { Task { await pool.close() } }
        let api = FaultlineAPI(pool: pool, configuration: APIConfiguration(adminToken: adminToken), logger: logger)
        func call(_ target: String, key: String) async -> Reply {
            Reply(response: await api.handle(APIRequest(method: "GET", target: target, headers: ["authorization": "Bearer \(key)"], body: [])))
        }
        let created = Reply(response: await api.handle(APIRequest(
            method: "POST", target: "/v1/api-keys", headers: ["authorization": "Bearer \(adminToken)"],
            body: Array(#"{"name": "busy", "scopes": ["read"]}"#.utf8))))
        let key = try #require(created.object["key"] as? String)
        #expect(await call("/v1/groups", key: key).status == 200)

        // The pool's one connection waits for a lock this test holds.
        let lock = try fixture.connection()
        try lock.query("SELECT pg_advisory_lock(4712)")
        let holder = Task { try await pool.withConnection { try $0.query("SELECT pg_advisory_lock(4712), pg_advisory_unlock(4712)").count } }
        try await Task.sleep(for: .milliseconds(200))
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<200 {
                group.addTask { await call("/v1/groups", key: APIKeyStore.generateKey()).status }
            }
            return await group.reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
        }
        #expect(statuses == [401: 200], "\(statuses)")
        // Another URL than the one read above, whose answer may still be shared.
        let busy = await call("/v1/groups?status=open", key: key)
        expectProblem(busy, 503)
        #expect(busy.response.header("retry-after") == "1")
        #expect(Reply(response: await api.handle(APIRequest(method: "GET", target: "/readyz", headers: [:], body: []))).status == 503)
        // All of that happened while the database was held.
        #expect(try lock.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").first?.int(0) == 1)
        try lock.query("SELECT pg_advisory_unlock(4712)")
        #expect(try await holder.value == 1)
        #expect(await call("/v1/groups", key: key).status == 200)

        // A key written straight to the database works soon after, without a restart.
        let direct = try APIKeyStore.create(name: "cli", scopes: ["read"], servicePrefix: nil, on: fixture.connection()).key
        var accepted = false
        for _ in 0..<100 where !accepted {
            accepted = await call("/v1/groups", key: direct).status == 200
            if !accepted { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(accepted)
    }

    @Test func aKeyLimitedToAPrefixSeesOnlyThoseServices() async throws {
        let fixture = try Fixture()
        let checkout = try fixture.events(service: "checkout", message: "cart is empty", at: [fixture.base])
        let payments = try fixture.events(service: "payments-api", message: "card declined", at: [fixture.base])
        try fixture.events(service: "payments-worker", message: "queue full", at: [fixture.base])
        let key = try await fixture.key(scopes: ["write"], prefix: "payments-")

        let groups = await fixture.call("GET", "/v1/groups", key: key)
        #expect(Set(groups.items.compactMap { $0["service"] as? String }) == ["payments-api", "payments-worker"])
        let services = await fixture.call("GET", "/v1/services", key: key)
        #expect(services.items.compactMap { $0["name"] as? String } == ["payments-api", "payments-worker"])
        #expect(await fixture.call("GET", "/v1/groups/\(payments)", key: key).status == 200)
        expectProblem(await fixture.call("GET", "/v1/groups/\(checkout)", key: key), 403)
        expectProblem(await fixture.call("GET", "/v1/groups/\(checkout)/events", key: key), 403)
        expectProblem(await fixture.call("GET", "/v1/services/checkout/series", key: key), 403)
        expectProblem(await fixture.call("POST", "/v1/groups/\(checkout)/resolve", key: key), 403)
        let deployment = #"{"service": "checkout", "environment": "production", "version": "1.0.0", "started_at": "2026-11-22T04:00:00Z"}"#
        expectProblem(await fixture.call("POST", "/v1/deployments", key: key, body: deployment), 403)
        let own = deployment.replacingOccurrences(of: "\"checkout\"", with: "\"payments-api\"")
        #expect(await fixture.call("POST", "/v1/deployments", key: key, body: own).status == 201)
        let deployments = await fixture.call("GET", "/v1/deployments", key: key)
        #expect(deployments.items.count == 1)
        expectProblem(await fixture.call("GET", "/v1/dead-letters", key: key), 403)
        expectProblem(await fixture.call("GET", "/v1/webhooks", key: key), 403)
    }
}

@Suite struct ProblemTests {
    @Test func errorsAreProblemJSON() async throws {
        let fixture = try Fixture()
        expectProblem(await fixture.call("GET", "/v1/nothing"), 404)
        expectProblem(await fixture.call("GET", "/nothing", key: nil), 404)
        let wrongMethod = await fixture.call("DELETE", "/v1/groups")
        expectProblem(wrongMethod, 405)
        #expect(wrongMethod.response.header("allow") == "GET")
        #expect(await fixture.call("PATCH", "/v1/webhooks/1").response.header("allow") == "GET, PUT, DELETE")
        expectProblem(await fixture.call("GET", "/v1/groups/nope"), 404)
        expectProblem(await fixture.call("GET", "/v1/insights/abc"), 404)
        expectProblem(await fixture.call("GET", "/v1/groups?limit=501"), 400)
        expectProblem(await fixture.call("GET", "/v1/groups?limit=0"), 400)
        expectProblem(await fixture.call("GET", "/v1/groups?sort=name"), 400)
        expectProblem(await fixture.call("GET", "/v1/groups?cursor=%%%"), 400)
        expectProblem(await fixture.call("GET", "/v1/groups?cursor=Zm9v"), 400)
        expectProblem(await fixture.call("GET", "/v1/insights?since=yesterday"), 400)
        expectProblem(await fixture.call("GET", "/v1/insights?kind=volcano"), 400)
        expectProblem(await fixture.call("GET", "/v1/groups?service=a%00b"), 400)
        expectProblem(await fixture.call("POST", "/v1/deployments", body: "not json"), 400)
        expectProblem(await fixture.call("POST", "/v1/deployments", body: #"{"service": "a"}"#), 400)
        expectProblem(await fixture.call("POST", "/v1/deployments", body: String(repeating: "x", count: 70 * 1024)), 413)
        // Empty typed parameters are not valid values; an empty cursor is the first page.
        expectProblem(await fixture.call("GET", "/v1/insights?since="), 400)
        expectProblem(await fixture.call("GET", "/v1/services/\(String(repeating: "s", count: 201))/series"), 400)
        expectProblem(await fixture.call("GET", "/v1/insights?kind="), 400)
        expectProblem(await fixture.call("GET", "/v1/groups?limit="), 400)
        #expect(await fixture.call("GET", "/v1/groups?cursor=").status == 200)
        expectProblem(await fixture.call("GET", "/v1/deployments?environment=\(String(repeating: "e", count: 101))"), 400)
        // Deployment fields: no control characters; lengths in characters, not bytes; null is absent.
        expectProblem(await fixture.call("POST", "/v1/deployments", body: #"{"service": "a\n", "version": "1", "started_at": "2026-11-22T04:50:32Z"}"#), 400)
        let wide = String(repeating: "é", count: 200)
        let recorded = await fixture.call("POST", "/v1/deployments", body: """
            {"service": "\(wide)", "version": "1", "commit": null, "region": null, "environment": null, "started_at": "2026-11-22T04:50:32Z"}
            """)
        #expect(recorded.status == 201 && recorded.object["service"] as? String == wide, "\(recorded.text)")
        // A cursor of one sort does not continue another.
        try fixture.events(service: "a", message: "one", at: [fixture.base])
        try fixture.events(service: "b", message: "two", at: [fixture.base])
        let first = await fixture.call("GET", "/v1/groups?limit=1&sort=event_count")
        let cursor = try #require(first.nextCursor)
        expectProblem(await fixture.call("GET", "/v1/groups?limit=1&sort=first_seen&cursor=\(cursor)"), 400)
    }

    @Test func healthReadinessMetricsAndDocuments() async throws {
        let fixture = try Fixture()
        #expect(await fixture.call("GET", "/healthz", key: nil).status == 200)
        #expect(await fixture.call("GET", "/readyz", key: nil).status == 200)
        fixture.readiness.value = false
        expectProblem(await fixture.call("GET", "/readyz", key: nil), 503)
        #expect(await fixture.call("GET", "/healthz", key: nil).status == 200)
        let metrics = await fixture.call("GET", "/metrics", key: nil)
        #expect(metrics.text.contains("faultline_test_metric 1"))
        let document = await fixture.call("GET", "/openapi.yaml", key: nil)
        #expect(document.status == 200 && document.text.hasPrefix("openapi: 3.1"))
        let page = await fixture.call("GET", "/", key: nil)
        #expect(page.response.header("content-type")?.hasPrefix("text/html") == true)
        // The page's script and style sheet, by the relative links it holds, with their types.
        for (link, type, start) in [("src=\"dashboard/app.js\"", "text/javascript", "(function () {"),
                                    ("href=\"dashboard/style.css\"", "text/css", ":root {")] {
            #expect(page.text.contains(link), "the page does not link \(link)")
            let path = "/" + link.split(separator: "\"")[1]
            let file = await fixture.call("GET", path, key: nil)
            #expect(file.status == 200 && file.response.header("content-type")?.hasPrefix(type) == true, "\(path)")
            #expect(file.response.header("cache-control") == "no-cache" && file.text.hasPrefix(start), "\(path)")
        }
        #expect(!page.text.contains("<script>") && !page.text.contains("<style>") && !page.text.contains("style=\""))
    }

    /// A 200 to a GET carries an entity tag; asked again with it, the answer is 304 with no body
    /// until the content changes. Errors and writes carry none.
    @Test func unchangedAnswersAreNotSentAgain() async throws {
        let fixture = try Fixture()
        let first = await fixture.call("GET", "/v1/webhooks")
        let tag = try #require(first.response.header("etag"))
        #expect(first.status == 200 && tag.hasPrefix("\"") && tag.count == 18)
        #expect(first.response.header("cache-control") == "private, no-cache")
        for ifNoneMatch in [tag, "W/\(tag)", "\"other\", \(tag)", "*"] {
            let again = await fixture.call("GET", "/v1/webhooks", headers: ["if-none-match": ifNoneMatch])
            #expect(again.status == 304 && again.response.body.isEmpty && again.response.header("etag") == tag, "\(ifNoneMatch)")
        }
        #expect(await fixture.call("GET", "/v1/webhooks", headers: ["if-none-match": "\"other\""]).status == 200)
        // The dashboard keeps its own caching rule, and gets a tag too.
        let page = await fixture.call("GET", "/", key: nil)
        #expect(page.response.header("cache-control") == "no-cache" && page.response.header("etag") != nil)
        #expect(await fixture.call("GET", "/", key: nil, headers: ["if-none-match": page.response.header("etag") ?? ""]).status == 304)
        // A change is a new tag.
        #expect(await fixture.call("POST", "/v1/webhooks", body: #"{"url": "https://hooks.example.com/etag"}"#).status == 201)
        let changed = await fixture.call("GET", "/v1/webhooks", headers: ["if-none-match": tag])
        #expect(changed.status == 200 && changed.response.header("etag") != tag)
        #expect(await fixture.call("GET", "/v1/webhooks/999999").response.header("etag") == nil, "an error has no tag")
    }

    /// What the HTTP server answers on its event loop is what ``FaultlineAPI/handle(_:)`` would
    /// answer, for the caller it is: nothing before a read was answered once, then the shared
    /// answer (or 304 for its tag); a prefixed key gets its own services' answer, never another's;
    /// everything else (unknown keys, missing keys, endpoints a prefixed key may not call,
    /// writes, and reads after a write) is left to `handle`.
    @Test func readsInMemoryAreAnsweredAtOnceAsHandleWould() async throws {
        let fixture = try Fixture()
        try fixture.events(service: "checkout", message: "cart is empty", at: [fixture.base])
        try fixture.events(service: "payments-api", message: "card declined", at: [fixture.base])
        let prefixed = try await fixture.key(scopes: ["read"], prefix: "payments-")
        func now(_ target: String, key: String? = adminToken, headers: [String: String] = [:]) -> APIResponse? {
            var headers = headers
            if let key { headers["authorization"] = "Bearer \(key)" }
            return fixture.api.answerFromMemory(APIRequest(method: "GET", target: target, headers: headers))
        }

        #expect(now("/v1/groups?limit=5&sort=last_seen") == nil, "nothing is shared before a first answer")
        let live = await fixture.call("GET", "/healthz", key: nil)
        let liveNow = try #require(now("/healthz", key: nil), "the liveness probe needs nothing but memory")
        #expect(liveNow.status == 200 && liveNow.body == live.response.body && liveNow.header("etag") == live.response.header("etag"))
        #expect(now("/readyz", key: nil) == nil, "readiness asks the database")
        let handled = await fixture.call("GET", "/v1/groups?limit=5&sort=last_seen")
        #expect(handled.status == 200 && handled.items.count == 2)
        let shared = try #require(now("/v1/groups?sort=last_seen&limit=5"), "the same query in another order")
        #expect(shared.status == 200 && shared.body == handled.response.body && shared.route == "/v1/groups")
        #expect(shared.header("etag") == handled.response.header("etag"))
        let unchanged = try #require(now("/v1/groups?limit=5&sort=last_seen", headers: ["if-none-match": shared.header("etag") ?? ""]))
        #expect(unchanged.status == 304 && unchanged.body.isEmpty)

        #expect(now("/v1/groups?limit=5&sort=last_seen", key: prefixed) == nil, "not the answer another caller was given")
        let own = await fixture.call("GET", "/v1/groups?limit=5&sort=last_seen", key: prefixed)
        #expect(own.items.compactMap { $0["service"] as? String } == ["payments-api"])
        #expect(now("/v1/groups?limit=5&sort=last_seen", key: prefixed)?.body == own.response.body)
        #expect(now("/v1/groups?limit=5&sort=last_seen", key: "flt_not-a-key") == nil)
        #expect(now("/v1/groups?limit=5&sort=last_seen", key: nil) == nil)
        expectProblem(await fixture.call("GET", "/v1/dead-letters", key: prefixed), 403)
        #expect(now("/v1/dead-letters", key: prefixed) == nil)
        #expect(now("/v1/dead-letters") == nil)
        #expect(await fixture.call("GET", "/v1/dead-letters").status == 200)
        #expect(now("/v1/dead-letters")?.status == 200)

        #expect(await fixture.call("POST", "/v1/webhooks", body: #"{"url": "https://hooks.example.com/now"}"#).status == 201)
        #expect(now("/v1/groups?limit=5&sort=last_seen") == nil, "a write forgets what was shared")
        #expect(fixture.api.answerFromMemory(APIRequest(method: "POST", target: "/v1/webhooks",
                                                        headers: ["authorization": "Bearer \(adminToken)"])) == nil)
    }

    /// Every route in the router is documented in openapi/openapi.yaml, and nothing more.
    @Test func theOpenAPIDocumentListsEveryRoute() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("openapi/openapi.yaml"), encoding: .utf8)
        var documented: Set<String> = []
        var path: String?
        var inPaths = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            if inPaths && !line.isEmpty && !line.hasPrefix(" ") && !line.hasPrefix("#") { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                if ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(method) { documented.insert("\(method) \(path)") }
            }
        }
        let routed = Set(FaultlineAPI.routes.map { "\($0.method) \($0.path)" })
        #expect(routed.subtracting(documented).isEmpty, "not documented: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented but not routed: \(documented.subtracting(routed).sorted())")
    }
}

@Suite struct GroupTests {
    /// 23 groups with distinct counts and times, paged 4 at a time in every sort: each group
    /// exactly once, in order.
    @Test func paginationVisitsEveryGroupOnceInEverySort() async throws {
        let fixture = try Fixture()
        for n in 0..<23 {
            let times = (0...(n % 7)).map { fixture.base.addingTimeInterval(Double(n * 60 + $0)) }
            try fixture.events(service: n % 2 == 0 ? "checkout" : "search", errorType: "E\(n)", message: "failure number \(n)", at: times)
        }
        for sort in ["last_seen", "first_seen", "event_count"] {
            for order in ["asc", "desc"] {
                let (items, pages) = try await fixture.all("/v1/groups?limit=4&sort=\(sort)&order=\(order)")
                let fingerprints = items.compactMap { $0["fingerprint"] as? String }
                #expect(fingerprints.count == 23 && Set(fingerprints).count == 23, "\(sort) \(order)")
                #expect(pages == 6)
                let keys = items.map { item -> String in
                    sort == "event_count" ? String(format: "%06d", item["event_count"] as? Int ?? -1) : item[sort] as? String ?? ""
                }
                #expect(keys == (order == "asc" ? keys.sorted() : keys.sorted(by: >)), "\(sort) \(order)")
            }
        }
        let checkout = try await fixture.all("/v1/groups?service=checkout&limit=5").items
        #expect(checkout.count == 12 && checkout.allSatisfy { $0["service"] as? String == "checkout" })
        let q = try await fixture.all("/v1/groups?q=NUMBER&limit=500").items
        #expect(q.count == 23)
        #expect(await fixture.call("GET", "/v1/groups?q=nothing%20like%20it").items.isEmpty)
        let typed = await fixture.call("GET", "/v1/groups?error_type=E7")
        #expect(typed.items.count == 1 && typed.items.first?["error_type"] as? String == "E7")
        let recent = await fixture.call("GET", "/v1/groups?since=\(RFC3339.format(fixture.base.addingTimeInterval(20 * 60)))")
        #expect(recent.items.count == 3)
    }

    @Test func resolveIgnoreAndReopenSetTheStatus() async throws {
        let fixture = try Fixture()
        let fingerprint = try fixture.events(service: "checkout", version: "1.8.2", message: "cart total is negative",
                                             at: [fixture.base, fixture.base.addingTimeInterval(30)])
        try fixture.events(service: "checkout", message: "other", at: [fixture.base])
        let resolved = await fixture.call("POST", "/v1/groups/\(fingerprint)/resolve")
        #expect(resolved.status == 200)
        #expect(resolved.object["status"] as? String == "resolved")
        #expect(resolved.object["resolved_in_version"] as? String == "1.8.2")
        let open = await fixture.call("GET", "/v1/groups?status=open")
        #expect(open.items.count == 1 && open.items.first?["fingerprint"] as? String != fingerprint)
        #expect(await fixture.call("POST", "/v1/groups/\(fingerprint)/ignore").object["status"] as? String == "ignored")
        #expect(await fixture.call("POST", "/v1/groups/\(fingerprint)/reopen").object["status"] as? String == "open")
        let detail = await fixture.call("GET", "/v1/groups/\(fingerprint)")
        #expect(detail.object["event_count"] as? Int == 2 && detail.object["events_last_24h"] as? Int == 2)
        expectProblem(await fixture.call("POST", "/v1/groups/unknown/resolve"), 404)
    }

    /// Each service says when the analysis reports its spikes and new errors: a service seen
    /// for two hours is ready, one first seen a minute ago is still learning.
    @Test func servicesSayWhatTheAnalysisIsStillLearning() async throws {
        let fixture = try Fixture()
        _ = try fixture.events(service: "billing", message: "card declined", at: [fixture.base])
        let recent = Date().addingTimeInterval(-60)
        _ = try fixture.events(service: "checkout", message: "timed out", at: [recent])
        let services = await fixture.call("GET", "/v1/services")
        let byName = Dictionary(uniqueKeysWithValues: services.items.compactMap { item in (item["name"] as? String).map { ($0, item) } })
        let billing = try #require(byName["billing"]?["learning"] as? [String: Any])
        let checkout = try #require(byName["checkout"]?["learning"] as? [String: Any])
        #expect(billing["state"] as? String == "ready", "\(billing)")
        #expect(checkout["state"] as? String == "learning", "\(checkout)")
        func time(_ value: Any?) -> Date? { (value as? String).flatMap { RFC3339.parse($0) } }
        let spikesFrom = try #require(time(checkout["spikes_from"]))
        #expect(abs(spikesFrom.timeIntervalSince(recent.addingTimeInterval(1800))) < 2, "30 minutes after its first error")
        // New errors count from the first error stored at all: billing's, two hours ago.
        #expect(time(checkout["new_errors_from"]) == time(billing["new_errors_from"]))
        #expect(abs((time(checkout["new_errors_from"]) ?? .distantPast).timeIntervalSince(fixture.base.addingTimeInterval(3600))) < 2)
        #expect(time(byName["checkout"]?["first_seen"]) != nil && time(checkout["daily_pattern_from"]) != nil)
    }

    @Test func eventsOfAGroupNewestFirstAndSeriesZeroFilled() async throws {
        let fixture = try Fixture()
        let times = (0..<9).map { fixture.base.addingTimeInterval(Double($0) * 20) }  // three minutes
        let fingerprint = try fixture.events(service: "checkout", message: "timed out", at: times)
        let (events, pages) = try await fixture.all("/v1/groups/\(fingerprint)/events?limit=2")
        #expect(pages == 5 && events.count == 9 && Set(events.compactMap { $0["event_id"] as? String }).count == 9)
        let occurred = events.compactMap { $0["occurred_at"] as? String }
        #expect(occurred == occurred.sorted(by: >))

        let from = RFC3339.format(fixture.base.addingTimeInterval(-120))
        let to = RFC3339.format(fixture.base.addingTimeInterval(300))
        let series = await fixture.call("GET", "/v1/services/checkout/series?from=\(from)&to=\(to)&step=1m")
        let points = try #require(series.object["points"] as? [[String: Any]])
        #expect(points.compactMap { $0["count"] as? Int } == [0, 0, 3, 3, 3, 0, 0])
        let group = await fixture.call("GET", "/v1/groups/\(fingerprint)/series?from=\(from)&to=\(to)&step=5m")
        #expect((group.object["points"] as? [[String: Any]])?.compactMap { $0["count"] as? Int }.reduce(0, +) == 9)
        expectProblem(await fixture.call("GET", "/v1/services/checkout/series?step=2m"), 400)
        expectProblem(await fixture.call("GET", "/v1/services/checkout/series?from=2020-01-01T00:00:00Z&step=1m"), 400)
        let services = await fixture.call("GET", "/v1/services")
        #expect(services.items.first?["name"] as? String == "checkout" && services.items.first?["events_last_24h"] as? Int == 9)
    }
}

@Suite struct DeploymentTests {
    @Test func aPostedDeploymentEnrichesStoredEventsAndIsIdempotent() async throws {
        let fixture = try Fixture()
        let rollout = fixture.base
        let fingerprint = try fixture.events(service: "checkout", message: "cart failed", at: [rollout.addingTimeInterval(90)])
        let body = """
            {"service": "checkout", "environment": "production", "version": "1.8.3", "commit": "abc123", "region": "eu-west-1",
             "started_at": "\(RFC3339.format(rollout))"}
            """
        let first = await fixture.call("POST", "/v1/deployments", body: body)
        #expect(first.status == 201, "\(first.text)")
        #expect(first.object["version"] as? String == "1.8.3" && first.object["commit"] as? String == "abc123")
        let again = await fixture.call("POST", "/v1/deployments", body: body)
        #expect(again.status == 200 && again.object["id"] as? Int == first.object["id"] as? Int)
        let event = try #require(await fixture.call("GET", "/v1/groups/\(fingerprint)/events").items.first)
        #expect(event["commit"] as? String == "abc123" && event["version"] as? String == "1.8.3")
        #expect(event["seconds_since_deploy"] as? Int == 90 && event["deployment_id"] as? Int == first.object["id"] as? Int)
        let listed = await fixture.call("GET", "/v1/deployments?service=checkout&environment=production")
        #expect(listed.items.count == 1)
        #expect(await fixture.call("GET", "/v1/deployments?environment=staging").items.isEmpty)
        expectProblem(await fixture.call("POST", "/v1/deployments", body: #"{"service": "a", "version": "1", "started_at": "soon"}"#), 400)
    }
}

@Suite struct DeadLetterTests {
    @Test func replayProducesTheOriginalBytesAndHeaders() async throws {
        let fixture = try Fixture()
        var batch = IngestBatch()
        let value: [UInt8] = Array("{\"service\": \"checkout\"".utf8)
        batch.deadLetters = [
            DeadLetter(origin: MessageOrigin(topic: "errors", partition: 2, offset: 41), key: [1, 2, 3], value: value,
                       headers: [("content-type", Array("application/json".utf8)), ("trace", nil)], reason: "truncated JSON"),
            DeadLetter(origin: MessageOrigin(topic: "errors", partition: 2, offset: 42), key: nil, value: [0xFF, 0xFE, 0x00],
                       headers: [], reason: "not UTF-8"),
        ]
        _ = try EventStore.write(batch, on: fixture.connection())
        let listed = await fixture.call("GET", "/v1/dead-letters")
        #expect(listed.items.count == 2)
        let binary = try #require(listed.items.first)
        #expect(binary["reason"] as? String == "not UTF-8" && binary["value_text"] is NSNull)
        #expect(binary["value_base64"] as? String == Data([0xFF, 0xFE, 0x00]).base64EncodedString() && binary["size"] as? Int == 3)
        let text = try #require(listed.items.last)
        #expect(text["value_text"] as? String == String(decoding: value, as: UTF8.self) && text["source_offset"] as? Int == 41)
        let id = try #require(text["id"] as? Int)

        let replayed = await fixture.call("POST", "/v1/dead-letters/\(id)/replay")
        #expect(replayed.status == 200, "\(replayed.text)")
        #expect(replayed.object["replayed_at"] is String)
        let calls = fixture.replayer.calls.withLock { $0 }
        let call = try #require(calls.first)
        #expect(calls.count == 1 && call.topic == "errors" && call.key == [1, 2, 3] && call.value == value)
        #expect(call.headers.map(\.0) == ["content-type", "trace"])
        #expect(call.headers.first?.1 == Array("application/json".utf8) && call.headers.last?.1 == nil)
        // Once only, unless forced.
        expectProblem(await fixture.call("POST", "/v1/dead-letters/\(id)/replay"), 409)
        #expect(fixture.replayer.calls.withLock { $0.count } == 1)
        let forced = await fixture.call("POST", "/v1/dead-letters/\(id)/replay?force=true")
        #expect(forced.status == 200, "\(forced.text)")
        #expect(fixture.replayer.calls.withLock { $0.count } == 2)
        expectProblem(await fixture.call("POST", "/v1/dead-letters/\(id)/replay?force=yes"), 400)
        expectProblem(await fixture.call("POST", "/v1/dead-letters/999/replay"), 404)
        // Two pages of one cover both.
        let (all, pages) = try await fixture.all("/v1/dead-letters?limit=1")
        #expect(all.count == 2 && pages == 2)
    }
}

@Suite struct WebhookTests {
    @Test func subscriptionsAreValidatedAndTheSecretIsNeverReturned() async throws {
        let fixture = try Fixture()
        for bad in [
            #"{"url": "ftp://example.com/hook"}"#, #"{"url": "javascript:alert(1)"}"#, #"{"url": "http://"}"#, #"{}"#,
            #"{"url": "https://example.com", "format": "email"}"#, #"{"url": "https://example.com", "secret": "short"}"#,
            #"{"url": "https://example.com", "filters": {"kinds": ["volcano"]}}"#,
            #"{"url": "https://example.com", "filters": {"min_severity": "loud"}}"#,
            #"{"url": "https://example.com", "filters": {"colour": "red"}}"#,
            #"{"url": "https://example.com", "filters": {"min_count": 0}}"#,
            #"{"url": "https://example.com", "filters": {"cooldown": -1}}"#,
            #"{"url": "https://example.com", "filters": {"throttle": "1h"}}"#,
            #"{"url": "https://example.com", "filters": {"digest_window": 3600}}"#,
            "{\"url\": \"https://example.com/\(String(repeating: "a", count: 2100))\"}",
            // null is not a value of these fields (the OpenAPI document does not allow it).
            #"{"url": "https://example.com", "enabled": null}"#, #"{"url": "https://example.com", "format": null}"#,
            #"{"url": "https://example.com", "filters": null}"#, #"{"url": "https://example.com", "filters": {"cooldown": 1.5}}"#,
            #"{"url": "https://example.com", "secret": "abc\u0000defghi"}"#,
        ] {
            expectProblem(await fixture.call("POST", "/v1/webhooks", body: bad), 400)
        }
        let created = await fixture.call("POST", "/v1/webhooks", body: """
            {"url": "https://hooks.example.com/faultline", "secret": "s3cret-signing-key", "format": "slack",
             "filters": {"kinds": ["spike", "regression"], "services": ["checkout"], "min_severity": "warning",
                         "min_count": 10, "cooldown": 120, "throttle": 1800, "digest_window": 10}}
            """)
        #expect(created.status == 201, "\(created.text)")
        #expect(!created.text.contains("s3cret") && created.object["has_secret"] as? Bool == true)
        // A whole number is an integer however it is written (JSON Schema's integer).
        let written = await fixture.call("POST", "/v1/webhooks", body: """
            {"url": "https://hooks.example.com/other", "filters": {"min_count": 1e2, "cooldown": 120.0}}
            """)
        #expect(written.status == 201, "\(written.text)")
        let writtenFilters = try #require(written.object["filters"] as? [String: Any])
        #expect(writtenFilters["min_count"] as? Int == 100 && writtenFilters["cooldown"] as? Int == 120, "\(written.text)")
        #expect(created.object["enabled"] as? Bool == true && created.object["format"] as? String == "slack")
        let id = try #require(created.object["id"] as? Int)
        let filters = try #require(created.object["filters"] as? [String: Any])
        #expect(filters["min_count"] as? Int == 10 && filters["cooldown"] as? Int == 120 && filters["digest_window"] as? Int == 10)
        let deliveries = await fixture.call("GET", "/v1/webhooks/\(id)/deliveries")
        #expect(deliveries.status == 200 && (deliveries.object["items"] as? [Any])?.isEmpty == true, "\(deliveries.text)")
        expectProblem(await fixture.call("GET", "/v1/webhooks/999999/deliveries"), 404)
        let updated = await fixture.call("PUT", "/v1/webhooks/\(id)", body: #"{"url": "http://internal:8080/hook", "enabled": false}"#)
        #expect(updated.status == 200 && updated.object["enabled"] as? Bool == false && updated.object["has_secret"] as? Bool == true)
        #expect(!(await fixture.call("GET", "/v1/webhooks").text.contains("s3cret")))
        #expect(await fixture.call("GET", "/v1/webhooks/\(id)").object["url"] as? String == "http://internal:8080/hook")
        #expect(await fixture.call("DELETE", "/v1/webhooks/\(id)").status == 204)
        expectProblem(await fixture.call("GET", "/v1/webhooks/\(id)"), 404)
    }
}

@Suite struct InsightTests {
    func insight(_ n: Int, kind: Insight.Kind, service: String?, at time: Date) -> Insight {
        Insight(dedupeKey: "test/\(n)", kind: kind, severity: .warning, service: service, title: "insight \(n)", summary: "s",
                startedAt: time,
                recommendations: [Recommendation(ruleID: "r", action: "rollback", title: "Roll back \(n)", confidence: 0.8,
                                                 evidence: ["e"])])
    }

    /// Served from memory and, past the cached ones, from the database: the same pages either way.
    @Test(arguments: [2000, 3])
    func listFilterGetAndAcknowledge(cachedInsights: Int) async throws {
        let fixture = try Fixture(cachedInsights: cachedInsights)
        let connection = try fixture.connection()
        for n in 0..<11 {
            try AnalysisStore.upsertInsight(insight(n, kind: n % 3 == 0 ? .newGroup : .spike, service: n % 2 == 0 ? "checkout" : "search",
                                                    at: fixture.base.addingTimeInterval(Double(n))), on: connection)
        }
        try AnalysisStore.upsertInsight(insight(99, kind: .cluster, service: nil, at: fixture.base), on: connection)
        let (items, pages) = try await fixture.all("/v1/insights?limit=5")
        #expect(items.count == 12 && pages == 3 && Set(items.compactMap { $0["id"] as? Int }).count == 12)
        let ids = items.compactMap { $0["id"] as? Int }
        #expect(ids == ids.sorted(by: >), "newest first")
        let spikes = try await fixture.all("/v1/insights?kind=spike&service=checkout&limit=2").items
        #expect(spikes.count == 4 && spikes.allSatisfy { $0["kind"] as? String == "spike" && $0["service"] as? String == "checkout" })

        let id = try #require(ids.first)
        let detail = await fixture.call("GET", "/v1/insights/\(id)")
        #expect((detail.object["recommendations"] as? [[String: Any]])?.first?["action"] as? String == "rollback")
        let acknowledged = await fixture.call("POST", "/v1/insights/\(id)/acknowledge")
        #expect(acknowledged.object["status"] as? String == "acknowledged" && acknowledged.object["acknowledged_at"] is String)
        let open = try await fixture.all("/v1/insights?status=open&limit=4").items
        #expect(open.count == 11 && !open.contains { $0["id"] as? Int == id })
        let recommendations = try await fixture.all("/v1/recommendations?limit=3").items
        #expect(recommendations.count == 11)

        let prefixed = try await fixture.key(scopes: ["read"], prefix: "search")
        let visible = try await fixture.all("/v1/insights?limit=2", key: prefixed).items
        #expect(visible.count == 5 && visible.allSatisfy { $0["service"] as? String == "search" })
        let cluster = try #require(items.first { $0["kind"] as? String == "cluster" }?["id"] as? Int)
        expectProblem(await fixture.call("GET", "/v1/insights/\(cluster)", key: prefixed), 403)
        expectProblem(await fixture.call("GET", "/v1/insights/424242"), 404)
    }

    @Test func clustersSpikesAndPredictionsList() async throws {
        let fixture = try Fixture()
        let connection = try fixture.connection()
        try AnalysisStore.insertSpikes([
            SpikeRecord(series: "service:checkout", service: "checkout", fingerprint: nil, bucket: fixture.base, kind: .spike,
                        observed: 50, expected: 5, score: 9, pValue: 0.001),
        ], on: connection)
        try AnalysisStore.insertPrediction(PredictionRecord(series: "service:checkout", service: "checkout", fingerprint: nil,
                                                            threshold: 60, currentValue: 20, predictedValue: 70,
                                                            breachAt: fixture.base.addingTimeInterval(600), madeAt: fixture.base),
                                           on: connection)
        _ = try AnalysisStore.saveClusters([
            ClusterRecord(generation: 1, label: "timeout", terms: ["timeout"], services: ["checkout", "search"], groupCount: 2,
                          eventCount: 10, centroid: [0.5, 0.5]),
        ], members: [], on: connection)
        #expect(await fixture.call("GET", "/v1/spikes?service=checkout").items.first?["observed"] as? Double == 50)
        #expect(await fixture.call("GET", "/v1/spikes?service=search").items.isEmpty)
        #expect(await fixture.call("GET", "/v1/predictions").items.first?["predicted_value"] as? Double == 70)
        let clusters = await fixture.call("GET", "/v1/clusters")
        #expect(clusters.items.first?["services"] as? [String] == ["checkout", "search"])
        #expect(clusters.items.first?["member_count"] as? Int == 0)
    }

    /// A key limited to `team-a-` sees a cross-tenant cluster through its own groups only: no
    /// other service's name, template, term or count appears.
    @Test func aPrefixedKeySeesClustersThroughItsOwnServicesOnly() async throws {
        let fixture = try Fixture()
        let times = (0..<3).map { fixture.base.addingTimeInterval(Double($0)) }
        let mine = try fixture.events(service: "team-a-checkout", errorType: "TimeoutError", message: "timeout after 3s calling db", at: times)
        let theirs = try fixture.events(service: "team-b-billing", errorType: "SecretLedgerError", message: "ledger zeta failed",
                                        at: times + times)
        let connection = try fixture.connection()
        _ = try AnalysisStore.saveClusters([
            ClusterRecord(generation: 1, label: "In 2 services: SecretLedgerError: ledger zeta failed", terms: ["ledger", "zeta"],
                          services: ["team-a-checkout", "team-b-billing"], groupCount: 2, eventCount: 9, centroid: [0.5, 0.5]),
            ClusterRecord(generation: 1, label: "only b", terms: ["b"], services: ["team-b-billing"], groupCount: 1, eventCount: 6,
                          centroid: [0.1, 0.9]),
        ], members: [(mine, 0), (theirs, 0)], on: connection)
        let key = try await fixture.key(scopes: ["read"], prefix: "team-a-")
        let reply = await fixture.call("GET", "/v1/clusters", key: key)
        #expect(reply.status == 200)
        #expect(reply.items.count == 1, "\(reply.text)")
        let cluster = try #require(reply.items.first)
        #expect(cluster["services"] as? [String] == ["team-a-checkout"])
        #expect(cluster["group_count"] as? Int == 1 && cluster["member_count"] as? Int == 1 && cluster["event_count"] as? Int == 3)
        #expect(cluster["terms"] as? [String] == [])
        #expect((cluster["label"] as? String)?.hasPrefix("TimeoutError: timeout after") == true, "\(cluster)")
        for secret in ["team-b", "SecretLedger", "ledger", "zeta", "only b"] {
            #expect(!reply.text.contains(secret), "\(secret) leaked: \(reply.text)")
        }
        // The unlimited key still sees both, whole.
        let all = await fixture.call("GET", "/v1/clusters")
        #expect(all.items.count == 2 && (all.items.first?["services"] as? [String])?.count == 2)
    }
}

/// Two tenants in one installation: a key limited to `team-a-` walks every route it may use,
/// with the other tenant's ids and names as parameters too, and no response carries a name,
/// term, version, fingerprint or insight id of `team-b-`.
@Suite struct TenancyTests {
    @Test func aPrefixedKeyFindsNothingOfTheOtherTenantOnAnyRoute() async throws {
        let fixture = try Fixture()
        let times = (0..<3).map { fixture.base.addingTimeInterval(Double($0)) }
        let mine = try fixture.events(service: "team-a-checkout", version: "1.0.0", errorType: "TimeoutError",
                                      message: "timeout after 3s calling db", at: times)
        let theirs = try fixture.events(service: "team-b-billing", version: "9.9.9-zeta", errorType: "SecretLedgerError",
                                        message: "ledger zeta failed", at: times + times)
        let connection = try fixture.connection()
        func insight(_ key: String, service: String?, title: String) -> Insight {
            Insight(dedupeKey: key, kind: service == nil ? .cluster : .spike, severity: .warning, service: service, title: title,
                    summary: title, startedAt: fixture.base,
                    recommendations: [Recommendation(ruleID: "r", action: "rollback", title: "About \(title)", confidence: 0.8, evidence: [title])])
        }
        let myInsight = try AnalysisStore.upsertInsight(insight("a", service: "team-a-checkout", title: "Spike in team-a-checkout"), on: connection).id
        let theirInsight = try AnalysisStore.upsertInsight(insight("b", service: "team-b-billing", title: "Spike in team-b-billing zeta"), on: connection).id
        let sharedInsight = try AnalysisStore.upsertInsight(
            insight("ab", service: nil, title: "In 2 services: SecretLedgerError (team-a-checkout, team-b-billing)"), on: connection).id
        for service in ["team-a-checkout", "team-b-billing"] {
            try AnalysisStore.insertSpikes([
                SpikeRecord(series: "service:\(service)", service: service, fingerprint: nil, bucket: fixture.base, kind: .spike,
                            observed: 50, expected: 5, score: 9, pValue: 0.001),
            ], on: connection)
            try AnalysisStore.insertPrediction(PredictionRecord(
                series: "service:\(service)", service: service, fingerprint: nil, threshold: 60, currentValue: 20, predictedValue: 70,
                breachAt: fixture.base.addingTimeInterval(600), madeAt: fixture.base), on: connection)
        }
        _ = try AnalysisStore.saveClusters([
            ClusterRecord(generation: 1, label: "In 2 services: SecretLedgerError: ledger zeta failed", terms: ["ledger", "zeta"],
                          services: ["team-a-checkout", "team-b-billing"], groupCount: 2, eventCount: 9, centroid: [0.5, 0.5]),
        ], members: [(mine, 0), (theirs, 0)], on: connection)
        for (service, version) in [("team-a-checkout", "1.0.0"), ("team-b-billing", "9.9.9-zeta")] {
            let body = #"{"service": "\#(service)", "environment": "production", "version": "\#(version)", "started_at": "2026-11-22T04:00:00Z"}"#
            #expect(await fixture.call("POST", "/v1/deployments", body: body).status == 201)
        }
        await fixture.api.invalidateCache()

        let key = try await fixture.key(scopes: ["admin"], prefix: "team-a-")
        let secrets = ["team-b", "billing", "SecretLedger", "ledger", "zeta", "9.9.9", theirs, "\"id\":\(theirInsight)", "\"id\":\(sharedInsight)"]
        var walked = 0
        for route in FaultlineAPI.routes where route.scope != nil && !route.allServices {
            for (label, fingerprint, service, id) in [("own", mine, "team-a-checkout", myInsight), ("other", theirs, "team-b-billing", theirInsight)] {
                let path = route.path.replacingOccurrences(of: "{id}", with: String(id))
                    .replacingOccurrences(of: "{fingerprint}", with: fingerprint).replacingOccurrences(of: "{service}", with: service)
                for query in ["", "?service=team-b-billing", "?limit=200"] {
                    let body = route.path == "/v1/deployments"
                        ? #"{"service": "\#(service)", "environment": "production", "version": "2.0.0", "started_at": "2026-11-22T05:00:00Z"}"# : "{}"
                    if route.method == "GET" {
                        // The same request by a key that sees everything first: its answer,
                        // shared for a moment, must not reach the prefixed key.
                        #expect(await fixture.call("GET", path + query).status < 500)
                    }
                    let reply = await fixture.call(route.method, path + query, key: key, body: body)
                    walked += 1
                    let where_ = "\(route.method) \(path + query) (\(label))"
                    // What the request itself named may come back (a problem's `instance`).
                    for secret in secrets where !(path + query + body).contains(secret) {
                        #expect(!reply.text.contains(secret), "\(where_) shows \(secret): \(reply.text)")
                    }
                    let theirID = path.hasSuffix("/\(theirInsight)") || path.contains("/\(theirInsight)/")
                    if path.contains("team-b") || path.contains(theirs) || theirID || (route.method == "POST" && body.contains("team-b")) {
                        #expect([403, 404].contains(reply.status), "\(where_): \(reply.status) \(reply.text)")
                    } else if query.contains("team-b") {
                        // Refused, or (where the route has no such filter) answered as without it.
                        #expect(reply.status < 500, "\(where_): \(reply.status) \(reply.text)")
                    } else {
                        #expect(reply.status < 400, "\(where_): \(reply.status) \(reply.text)")
                    }
                }
            }
        }
        #expect(walked > 60)
        // The key does see its own tenant's data.
        #expect(await fixture.call("GET", "/v1/insights/\(myInsight)", key: key).status == 200)
        #expect(await fixture.call("GET", "/v1/groups", key: key).items.count == 1)
        #expect(await fixture.call("GET", "/v1/clusters", key: key).items.count == 1)
    }
}
