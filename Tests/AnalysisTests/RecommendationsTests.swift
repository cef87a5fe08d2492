import Analysis
import Domain
import Foundation
import Testing

@Suite struct ShippedRulesTests {
    static let rules: RuleSet = {
        do { return try RuleSet(json: shippedRulesJSON()) } catch { fatalError("shipped rules: \(error)") }
    }()

    func evidence(_ kind: Evidence.Kind = .spike, errorType: String? = nil, template: String, message: String? = nil,
                  statuses: [Int] = [], version: String? = nil, previous: String? = nil, sinceDeploy: Int? = nil,
                  dependency: String? = nil, services: [String] = [], observed: Double = 1240, expected: Double = 3) -> Evidence {
        Evidence(kind: kind, service: "checkout", environment: "production", errorType: errorType, template: template,
                 message: message, httpStatuses: statuses, version: version, previousVersion: previous,
                 secondsSinceDeploy: sinceDeploy, dependency: dependency, services: services, observed: observed,
                 expected: expected, count: Int(observed), windowSeconds: 600)
    }

    func actions(_ e: Evidence) -> [String] { Self.rules.recommend(for: e).map(\.action) }

    @Test func shippedFileParses() {
        #expect(Self.rules.rules.count >= 10)
        #expect(Set(Self.rules.rules.map(\.id)).count == Self.rules.rules.count)
    }

    @Test func rollbackAfterDeployNamesBothVersions() throws {
        let e = evidence(errorType: "NullPointerException", template: "Cannot invoke <*> because order is null",
                         version: "1.8.3", previous: "1.8.2", sinceDeploy: 240)
        let top = try #require(Self.rules.recommend(for: e).first)
        #expect(top.action == "rollback")
        #expect(top.ruleID == "rollback-after-deploy")
        #expect(top.title == "Roll back checkout from 1.8.3 to 1.8.2")
        #expect(top.evidence.contains("spike began 4 min after checkout 1.8.3 was deployed"))
        #expect(top.evidence.contains("1,240 errors in 10 min vs 3 expected"))
        #expect(top.confidence > 0.8 && top.confidence <= 1)
    }

    @Test(arguments: [Evidence.Kind.newGroup, .regression, .levelShift])
    func rollbackFiresForOtherDeployRelatedKinds(kind: Evidence.Kind) {
        let e = evidence(kind, template: "Cannot invoke <*> because order is null", version: "1.8.3", previous: "1.8.2", sinceDeploy: 600)
        #expect(actions(e).contains("rollback"))
    }

    @Test func noRollbackWithoutARecentDeployOrPreviousVersion() {
        let template = "Cannot invoke <*> because order is null"
        #expect(!actions(evidence(template: template, version: "1.8.3", previous: "1.8.2", sinceDeploy: 3 * 3600)).contains("rollback"))
        #expect(!actions(evidence(template: template, version: "1.8.3", previous: nil, sinceDeploy: 240)).contains("rollback"))
        #expect(!actions(evidence(template: template)).contains("rollback"))
        #expect(!actions(evidence(.predictedBreach, template: template, version: "1.8.3", previous: "1.8.2", sinceDeploy: 240)).contains("rollback"))
    }

    @Test func rollbackConfidenceFallsWithTimeSinceDeploy() throws {
        let template = "Cannot invoke <*> because order is null"
        let soon = try #require(Self.rules.recommend(for: evidence(template: template, version: "1.8.3", previous: "1.8.2", sinceDeploy: 120)).first)
        let late = try #require(Self.rules.recommend(for: evidence(template: template, version: "1.8.3", previous: "1.8.2", sinceDeploy: 3000)).first)
        #expect(soon.confidence > late.confidence)
        let weak = try #require(Self.rules.recommend(for: evidence(template: template, version: "1.8.3", previous: "1.8.2", sinceDeploy: 120,
                                                                    observed: 12, expected: 6)).first)
        #expect(soon.confidence > weak.confidence)
    }

    @Test func dependencyTimeoutChecksThatDependency() throws {
        let e = evidence(errorType: "TimeoutError", template: "timeout calling <*>", message: "timeout calling payments-db:5432")
        let top = try #require(Self.rules.recommend(for: e).first)
        #expect(top.action == "check_dependency")
        #expect(top.title == "Check payments-db and open a circuit breaker towards it")
        for (template, statuses) in [("connection refused to payments.internal", [Int]()), ("upstream payments timed out", []),
                                     ("read: connection reset by peer", []), ("POST /charge failed", [503])] {
            #expect(actions(evidence(template: template, statuses: statuses)).first == "check_dependency", "\(template)")
        }
        // Without a named peer the rule still fires, with a generic title and lower confidence.
        let generic = try #require(Self.rules.recommend(for: evidence(template: "POST /charge failed", statuses: [503])).first)
        #expect(generic.title == "Check the dependencies of checkout and open a circuit breaker towards the failing one")
        #expect(generic.confidence < top.confidence)
    }

    @Test func outOfMemoryRaisesTheLimit() {
        for (type, template) in [("java.lang.OutOfMemoryError", "Java heap space"), (nil, "container checkout was OOMKilled"),
                                 ("MemoryError", "cannot allocate memory"), ("Error", "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory")] {
            #expect(actions(evidence(errorType: type, template: template)).first == "raise_memory_limit", "\(template)")
        }
    }

    @Test func risingMemoryWarningsSuggestALeak() throws {
        var e = evidence(.predictedBreach, errorType: "MemoryWarning", template: "heap usage at <*> of limit", observed: 14, expected: 2)
        e.secondsUntilBreach = 7260
        let found = Self.rules.recommend(for: e)
        let leak = try #require(found.first)
        #expect(leak.ruleID == "memory-leak-rising" && leak.action == "raise_memory_limit")
        #expect(leak.title == "Raise the memory limit of checkout to buy time and check it for a memory leak")
        #expect(leak.evidence.first == "MemoryWarning warnings in checkout are rising and are forecast to cross the threshold in 2 h 1 min")
        e.version = "1.8.3"
        #expect(Self.rules.recommend(for: e).first?.title == "Raise the memory limit of checkout to buy time and check 1.8.3 for a memory leak")
        // GC warnings rising (the shape of a leak) get the same advice.
        let gc = evidence(.predictedBreach, errorType: "GCOverheadWarning", template: "GC overhead: heap <*> used after full GC")
        #expect(Self.rules.recommend(for: gc).first?.ruleID == "memory-leak-rising")
        // A rising count of something else is not a leak.
        #expect(!actions(evidence(.predictedBreach, template: "order <*> rejected: card declined")).contains("raise_memory_limit"))
    }

    @Test func rateLimitScalesOut() throws {
        for (template, statuses) in [("429 Too Many Requests", [Int]()), ("rate limit exceeded for tenant <*>", []),
                                     ("Quota exceeded for quota metric 'Read requests'", []), ("request throttled", []),
                                     ("GET /search failed", [429])] {
            #expect(actions(evidence(template: template, statuses: statuses)).first == "scale_out", "\(template)")
        }
        let top = try #require(Self.rules.recommend(for: evidence(template: "GET /search failed", statuses: [429])).first)
        #expect(top.title == "Scale out checkout or raise its quota")
    }

    @Test func tlsRotatesTheCertificate() {
        for template in ["x509: certificate has expired or is not yet valid", "javax.net.ssl.SSLHandshakeException: PKIX path building failed",
                         "SSL: CERTIFICATE_VERIFY_FAILED", "tls: handshake failure", "remote error: tls: bad certificate"] {
            #expect(actions(evidence(template: template)).first == "rotate_certificate", "\(template)")
        }
        #expect(!actions(evidence(template: "OAuth2 token expired")).contains("rotate_certificate"))
    }

    @Test func poolExhaustionRaisesPoolSize() {
        for template in ["HikariPool-1 - Connection is not available, request timed out after 30000ms.", "connection pool exhausted",
                         "FATAL: sorry, too many clients already", "Timeout waiting for connection from pool",
                         "Data source rejected establishment of connection, message from server: \"Too many connections\""] {
            let found = actions(evidence(template: template))
            #expect(found.first == "raise_pool_size", "\(template)")
            // A pool timeout is not a failing dependency.
            #expect(!found.contains("check_dependency"), "\(template)")
        }
    }

    @Test func diskFullGrowsTheVolume() {
        for template in ["write /var/lib/data/segment: No space left on device", "ENOSPC: no space left on device, write",
                         "could not extend file \"base/16384/2619\": wrote only 4096 of 8192 bytes"] {
            #expect(actions(evidence(template: template)).first == "grow_volume", "\(template)")
        }
    }

    @Test func dnsFailureChecksDiscovery() throws {
        for template in ["dial tcp: lookup payments on 10.0.0.2:53: no such host", "payments.internal: Name or service not known",
                         "Temporary failure in name resolution", "query for payments.svc returned NXDOMAIN",
                         "getaddrinfo EAI_AGAIN payments.internal"] {
            let found = actions(evidence(template: template))
            #expect(found.first == "check_dns", "\(template)")
            #expect(!found.contains("check_dependency"), "\(template)")
        }
        let top = try #require(Self.rules.recommend(for: evidence(template: "dial tcp: lookup payments on 10.0.0.2:53: no such host")).first)
        #expect(top.title == "Check DNS and service discovery for payments")
    }

    @Test func crossServiceClusterLooksForTheSharedDependency() throws {
        let e = evidence(.cluster, template: "connection refused to <*>", message: "connection refused to payments.internal",
                         services: ["checkout", "orders", "refunds"])
        let found = Self.rules.recommend(for: e)
        let shared = try #require(found.first { $0.action == "check_shared_dependency" })
        #expect(shared.title == "Check payments.internal: checkout, orders, refunds fail together")
        #expect(!actions(evidence(.cluster, template: "boom", services: ["checkout"])).contains("check_shared_dependency"))
    }

    @Test func unrelatedErrorsGetNothing() {
        for template in ["Cannot invoke <*> because order is null", "order <*> rejected: card declined", "invalid JSON in request body",
                         "OAuth2 token expired", "KeyError: 'customer_id'"] {
            #expect(Self.rules.recommend(for: evidence(template: template)).isEmpty, "\(template)")
        }
    }

    @Test func resultsAreSortedAndOnePerAction() {
        // Matches the named and the generic dependency titles, plus rollback.
        let e = evidence(template: "timeout calling <*>", message: "timeout calling payments-db:5432", statuses: [504],
                         version: "1.8.3", previous: "1.8.2", sinceDeploy: 240)
        let found = Self.rules.recommend(for: e)
        #expect(Set(found.map(\.action)).count == found.count)
        #expect(found.map(\.confidence) == found.map(\.confidence).sorted(by: >))
        #expect(Set(found.map(\.action)) == ["rollback", "check_dependency"])
        #expect(Self.rules.recommend(for: e) == found)
    }
}

@Suite struct RuleFileTests {
    static let base = """
        {"version": 1, "rules": [
          {"id": "a", "action": "rollback", "title": "Roll back {service}", "confidence": 0.5, "when": {"kinds": ["spike"]}},
          {"id": "b", "action": "page", "title": "Page the owner of {service}", "confidence": 0.4}
        ]}
        """

    func spike() -> Evidence { Evidence(kind: .spike, service: "checkout", template: "boom", observed: 10, expected: 1, count: 10) }

    @Test func userFileReplacesAddsAndDisables() throws {
        let merged = try RuleSet(json: Self.base).merging(json: """
            [
              {"id": "a", "action": "rollback", "title": "Revert {service} now", "confidence": 0.9},
              {"id": "b", "enabled": false},
              {"id": "c", "action": "notify", "title": "Tell #{service}-oncall", "confidence": 0.3}
            ]
            """)
        #expect(merged.rules.map(\.id) == ["a", "c"])
        let found = merged.recommend(for: spike())
        #expect(found.map(\.title) == ["Revert checkout now", "Tell #checkout-oncall"])
        #expect(found.first?.confidence == 0.9)
    }

    @Test func disabledRuleInTheShippedFileIsLeftOut() throws {
        let rules = try RuleSet(json: #"{"rules": [{"id": "x", "enabled": false, "action": "a"}]}"#)
        #expect(rules.rules.isEmpty)
    }

    @Test func userFileCanDisableAShippedRule() throws {
        let shipped = try RuleSet(json: shippedRulesJSON())
        let merged = try shipped.merging(json: #"{"rules": [{"id": "rollback-after-deploy", "enabled": false}]}"#)
        #expect(merged.rules.count == shipped.rules.count - 1)
        let e = Evidence(kind: .spike, service: "checkout", template: "boom", version: "1.8.3", previousVersion: "1.8.2",
                         secondsSinceDeploy: 60, observed: 100, expected: 1, count: 100)
        #expect(shipped.recommend(for: e).first?.action == "rollback")
        #expect(merged.recommend(for: e).isEmpty)
    }

    @Test(arguments: [
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 2}]}"#, "rule 'r1'", "confidence"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 0.5, "when": {"patterns": ["(unclosed"]}}]}"#, "rule 'r1'", "when.patterns[0]"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 0.5, "when": {"min_cont": 3}}]}"#, "rule 'r1'", "when.min_cont"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 0.5, "when": {"kinds": ["spike", "burst"]}}]}"#, "rule 'r1'", "when.kinds[1]"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "Roll back {servce}", "confidence": 0.5}]}"#, "rule 'r1'", "title"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": "high"}]}"#, "rule 'r1'", "confidence"),
        (#"{"rules": [{"id": "r1", "title": "t", "confidence": 0.5}]}"#, "rule 'r1'", "action"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 0.5, "when": {"min_count": 2.5}}]}"#, "rule 'r1'", "when.min_count"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 0.5, "evidence": ["ok", "{nope}"]}]}"#, "rule 'r1'", "evidence[1]"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 0.5, "boost": {"ratio": 3}}]}"#, "rule 'r1'", "boost.ratio"),
        (#"{"rules": [{"id": "ok", "action": "x", "title": "t", "confidence": 0.5}, {"action": "x", "title": "t", "confidence": 0.5}]}"#, "rule #2", "id"),
        (#"{"rules": [{"id": "r1", "action": "x", "title": "t", "confidence": 0.5}, {"id": "r1", "enabled": false}]}"#, "rule 'r1'", "id"),
        (#"{"rules": [42]}"#, "rule #1", nil),
    ] as [(String, String, String?)])
    func badRuleNamesTheRuleAndField(json: String, rule: String, field: String?) {
        do {
            _ = try RuleSet(json: json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.description.hasPrefix(rule), "\(error)")
            #expect(error.field == field, "\(error)")
        }
    }

    @Test func invalidJSONSaysSo() {
        #expect(throws: RuleError.self) { try RuleSet(json: "{\"rules\": [") }
        do {
            _ = try RuleSet(json: "{\"rules\": [")
        } catch {
            #expect(error.description.contains("not valid JSON"), "\(error)")
        }
        do {
            _ = try RuleSet(json: #"{"rulez": []}"#)
        } catch {
            #expect(error.field == "rulez", "\(error)")
        }
    }

    @Test func missingValueSkipsTitleAlternativeAndEvidenceLine() throws {
        let rules = try RuleSet(json: """
            {"rules": [{"id": "r", "action": "x", "confidence": 0.5,
              "title": ["Check {dependency}", "Check what {service} calls"],
              "evidence": ["since deploy: {time_since_deploy}", "{observed} vs {expected}"]}]}
            """)
        let found = try #require(rules.recommend(for: spike()).first)
        #expect(found.title == "Check what checkout calls")
        #expect(found.evidence == ["10 vs 1"])
        let none = try RuleSet(json: #"{"rules": [{"id": "r", "action": "x", "confidence": 0.5, "title": "Roll back to {previous_version}"}]}"#)
        #expect(none.recommend(for: spike()).isEmpty)
    }

    @Test func confidenceIsClampedAndDeterministic() throws {
        let rules = try RuleSet(json: """
            {"rules": [{"id": "r", "action": "x", "title": "t", "confidence": 0.9, "boost": {"ratio": 1, "count": 1}}]}
            """)
        let e = Evidence(kind: .spike, service: "s", template: "t", observed: 10_000, expected: 1, count: 10_000)
        #expect(rules.recommend(for: e).first?.confidence == 1)
        #expect(rules.recommend(for: e) == rules.recommend(for: e))
    }
}
