import Alerts
import Domain
import Foundation
import Testing

@Suite struct RuleTests {
    func insight(_ kind: Insight.Kind, service: String? = "checkout", environment: String? = "production",
                 severity: Insight.Severity = .warning, count: Int? = 50) -> Insight {
        Insight(dedupeKey: "k", kind: kind, severity: severity, service: service, environment: environment, fingerprint: "fp",
                title: "t", summary: "s", eventCount: count, startedAt: Date())
    }

    @Test func rulesFilterByKindServiceEnvironmentSeverityAndCount() {
        #expect(AlertRule(filtersJSON: "{}").matches(insight(.cluster, service: nil, environment: nil)))
        let rule = AlertRule(filtersJSON: #"{"kinds":["spike","new_group"],"services":["checkout"],"environments":["production"],"min_severity":"warning","min_count":10}"#)
        #expect(rule.matches(insight(.spike)))
        #expect(rule.matches(insight(.levelShift)), "a level shift counts with spikes")
        #expect(rule.matches(insight(.newGroup)))
        #expect(!rule.matches(insight(.regression)))
        #expect(!rule.matches(insight(.spike, service: "orders")))
        #expect(!rule.matches(insight(.spike, environment: "staging")))
        #expect(!rule.matches(insight(.spike, environment: nil)))
        #expect(!rule.matches(insight(.spike, severity: .info)))
        #expect(!rule.matches(insight(.spike, count: 9)))
        var cluster = insight(.cluster, service: nil)
        cluster.details["services"] = "orders, checkout"
        #expect(AlertRule(filtersJSON: #"{"services":["checkout"]}"#).matches(cluster))
    }

    @Test func noiseSettingsHaveDefaults() {
        let rule = AlertRule(filtersJSON: #"{"cooldown": 120, "digest_window": 0}"#)
        #expect(rule.cooldown == .seconds(120) && rule.digestWindow == .zero)
        #expect(rule.throttle == .seconds(AlertRule.defaultThrottleSeconds) && rule.minCount == 1)
        #expect(AlertRule.throttleKey(insight(.levelShift)) == AlertRule.throttleKey(insight(.spike)))
    }

    @Test func retryAfterTakesSecondsOrAnHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(RetryAfter.parse("120", now: now) == .seconds(120))
        let later = RetryAfter.parse("Tue, 14 Nov 2023 22:14:20 GMT", now: now)
        #expect(later == .seconds(60), "\(String(describing: later))")
        #expect(RetryAfter.parse("soon", now: now) == nil)
    }

    @Test func backoffDoublesWithJitterUpToTheCap() {
        for attempt in 1...12 {
            let delay = Backoff.delay(attempt: attempt, base: .seconds(2), maximum: .seconds(600))
            let full = min(600.0, 2 * pow(2, Double(attempt - 1)))
            let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
            #expect(seconds >= full / 2 - 0.001 && seconds <= full + 0.001)
        }
    }

    @Test func slackAndTeamsBodiesStayWithinTheirLimits() throws {
        var long = insight(.spike)
        long.id = 7
        long.summary = String(repeating: "very long summary <&> ", count: 400)
        long.recommendations = (0..<8).map { Recommendation(ruleID: "r\($0)", action: "a", title: String(repeating: "x", count: 900), confidence: 0.5, evidence: [String(repeating: "e", count: 900)]) }
        for insights in [[long], Array(repeating: long, count: 12)] {
            let slack = try JSONSerialization.jsonObject(with: Data(AlertPayload.render(insights, format: .slack, deliveryID: "d", publicURL: "https://f.example").utf8)) as! [String: Any]
            expectValidSlack(slack)
            let teams = try JSONSerialization.jsonObject(with: Data(AlertPayload.render(insights, format: .teams, deliveryID: "d", publicURL: "https://f.example").utf8)) as! [String: Any]
            expectValidTeams(teams)
        }
    }
}
