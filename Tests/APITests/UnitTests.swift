import Domain
import Foundation
import Storage
import Synchronization
import Testing

@testable import API

/// The pure pieces: no database.
@Suite struct UnitTests {
    let router = Router(routes: FaultlineAPI.routeTable)

    /// Byte for byte, as PostgreSQL's starts_with: canonically equivalent text is not the same
    /// prefix, and a prefix is no word.
    @Test func servicePrefixesCompareBytes() {
        #expect(Principal.matches(service: "payments-api", prefix: "payments-"))
        #expect(!Principal.matches(service: "caf\u{E9}-api", prefix: "cafe\u{301}"))
        #expect("caf\u{E9}-api".hasPrefix("cafe\u{301}"))  // what String.hasPrefix would have let through
        #expect(Principal.matches(service: "team-ab", prefix: "team-a"))
    }

    @Test func routesMatchLiteralsAndDecodeParameters() {
        guard case .found(let route, let parameters) = router.resolve(method: "GET", path: "/v1/services/payments%20api/series") else {
            Issue.record("no match")
            return
        }
        #expect(route.pattern == "/v1/services/{service}/series" && parameters["service"] == "payments api")
        guard case .found(let root, _) = router.resolve(method: "GET", path: "/") else { Issue.record("no root"); return }
        #expect(root.pattern == "/")
        guard case .methodNotAllowed(let allowed) = router.resolve(method: "POST", path: "/v1/groups/abc") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == ["GET"])
        for path in ["/v1/groups/", "/v1", "/v1/groups/a/b/c", "", "/v1//events"] {
            guard case .notFound = router.resolve(method: "GET", path: path) else { Issue.record("\(path) matched"); continue }
        }
    }

    @Test func everyRoutePatternIsUniquePerMethod() {
        let keys = FaultlineAPI.routes.map { "\($0.method) \($0.path)" }
        #expect(Set(keys).count == keys.count)
    }

    @Test func queryStringsAreDecoded() {
        let request = APIRequest(method: "get", target: "/v1/groups?q=a+b%2Fc&service=x&service=y&empty=&flag")
        #expect(request.method == "GET" && request.path == "/v1/groups")
        #expect(request.query["q"] == ["a b/c"] && request.query["service"] == ["x", "y"])
        #expect(request.query["empty"] == [""] && request.query["flag"] == [""])
    }

    @Test func base64URLRoundTripsAndRefusesOtherAlphabets() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(($0 * 73 + 11) % 256) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.decode("ab+/") == nil && Base64URL.decode("a=") == nil)
    }

    @Test func secretsCompareWithoutShortCuts() {
        #expect(constantTimeEquals("flt_abc", "flt_abc"))
        #expect(!constantTimeEquals("flt_abc", "flt_abd"))
        #expect(!constantTimeEquals("flt_abc", "flt_ab"))
        #expect(!constantTimeEquals("", "x") && constantTimeEquals("", ""))
    }

    @Test func scopesImplyTheLowerOnes() {
        let admin = Principal(keyID: 1, scopes: [.admin], servicePrefix: nil)
        let write = Principal(keyID: 2, scopes: [.write], servicePrefix: "payments-")
        #expect(admin.has(.read) && admin.has(.write) && admin.has(.admin))
        #expect(write.has(.read) && write.has(.write) && !write.has(.admin))
        #expect(write.sees(service: "payments-api") && !write.sees(service: "checkout") && !write.sees(service: nil))
        #expect(admin.sees(service: nil))
    }

    @Test(arguments: [
        ("https://hooks.slack.com/services/T/B/X", true), ("http://10.0.0.1:8080/hook", true), ("HTTPS://EXAMPLE.COM", true),
        ("ftp://example.com", false), ("file:///etc/passwd", false), ("https://", false), ("example.com/hook", false),
        ("https://exa mple.com", false), ("javascript:alert(1)", false), ("", false),
    ])
    func webhookURLs(url: String, valid: Bool) {
        let accepted = (try? WebhookValidation.validate(url: url)) != nil
        #expect(accepted == valid, "\(url)")
    }

    @Test func keysAreFltAnd32RandomBytes() {
        let keys = (0..<20).map { _ in APIKeyStore.generateKey() }
        #expect(Set(keys).count == 20)
        for key in keys {
            #expect(key.hasPrefix("flt_") && Base64URL.decode(String(key.dropFirst(4)))?.count == 32)
        }
    }

    /// Identical reads share one answer; a key that sees other services, another query, a
    /// write or the end of the time to live make a new one; memory stays within its bounds.
    @Test func readsAreSharedOnlyBetweenTheSameRequestAndServices() async throws {
        let gate = ComputeGate()
        func request(_ path: String, _ query: [String: [String]] = [:]) -> APIRequest {
            APIRequest(method: "GET", path: path, query: query)
        }
        @Sendable func answer(_ reads: SharedReads, _ request: APIRequest, prefix: String? = nil, status: Int = 200, bytes: Int = 10,
                              gated: Bool = false) async -> APIResponse {
            await gate.answer(reads, request, prefix: prefix, status: status, bytes: bytes, gated: gated)
        }
        let reads = SharedReads(timeToLive: .seconds(600))

        // Fifty callers while the first is still computing: one computation, one answer.
        let first = Task { await answer(reads, request("/v1/groups"), gated: true) }
        while gate.computed.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let others = (0..<49).map { _ in Task { await answer(reads, request("/v1/groups")) } }
        try await Task.sleep(for: .milliseconds(20))
        gate.released.store(true, ordering: .releasing)
        var bodies = [await first.value.body]
        for other in others { bodies.append(await other.value.body) }
        #expect(gate.computed.withLock { $0 } == 1)
        #expect(Set(bodies).count == 1)

        // The same query in another order is the same request; another value, path or prefix is not.
        _ = await answer(reads, request("/v1/groups", ["limit": ["5"], "status": ["open"]]))
        _ = await answer(reads, request("/v1/groups", ["status": ["open"], "limit": ["5"]]))
        #expect(gate.computed.withLock { $0 } == 2)
        _ = await answer(reads, request("/v1/groups", ["limit": ["6"], "status": ["open"]]))
        _ = await answer(reads, request("/v1/spikes"))
        _ = await answer(reads, request("/v1/groups"), prefix: "team-a-")
        _ = await answer(reads, request("/v1/groups"), prefix: "team-b-")
        #expect(gate.computed.withLock { $0 } == 6)
        _ = await answer(reads, request("/v1/groups"), prefix: "team-a-")
        #expect(gate.computed.withLock { $0 } == 6)

        // A write forgets everything, including an answer computed while it happened.
        reads.invalidate()
        _ = await answer(reads, request("/v1/groups"))
        #expect(gate.computed.withLock { $0 } == 7)
        gate.released.store(false, ordering: .releasing)
        let during = Task { await answer(reads, request("/v1/spikes"), gated: true) }
        while gate.computed.withLock({ $0 }) == 7 { try await Task.sleep(for: .milliseconds(1)) }
        reads.invalidate()
        gate.released.store(true, ordering: .releasing)
        _ = await during.value
        _ = await answer(reads, request("/v1/spikes"))
        #expect(gate.computed.withLock { $0 } == 9)

        // Failures are not kept.
        _ = await answer(reads, request("/v1/insights"), status: 503)
        _ = await answer(reads, request("/v1/insights"), status: 503)
        #expect(gate.computed.withLock { $0 } == 11)

        // Answers expire.
        let brief = SharedReads(timeToLive: .milliseconds(1))
        _ = await answer(brief, request("/v1/groups"))
        try await Task.sleep(for: .milliseconds(20))
        _ = await answer(brief, request("/v1/groups"))
        #expect(gate.computed.withLock { $0 } == 13)

        // Memory: at most maxBodyBytes an answer and maxTotalBytes in all.
        let small = SharedReads(timeToLive: .seconds(600), maxEntries: 100, maxBodyBytes: 4000, maxTotalBytes: 10_000)
        _ = await answer(small, request("/big"), bytes: 5000)
        #expect(small.heldEntries == 0)
        for n in 0..<20 {
            _ = await answer(small, request("/v1/groups", ["cursor": ["\(n)"]]), bytes: 3000)
            #expect(small.heldBytes <= 10_000)
        }
        #expect(small.heldEntries == 3)
    }
}

/// Counts the computations of shared answers and holds them until released.
final class ComputeGate: Sendable {
    let computed = Mutex(0)
    let released = Atomic(false)

    func answer(_ reads: SharedReads, _ request: APIRequest, prefix: String?, status: Int, bytes: Int, gated: Bool) async -> APIResponse {
        await reads.answer(SharedReads.Key(request, servicePrefix: prefix)) { [self] in
            let n = computed.withLock { $0 += 1; return $0 }
            while gated && !released.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(1)) }
            return APIResponse(status: status, body: Array(repeating: UInt8(n % 256), count: bytes))
        }
    }
}
