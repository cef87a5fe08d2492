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

    /// A stored rule is read field by field: a malformed field takes its default, the others
    /// still count, and text that is no object is the default rule.
    @Test func aMalformedFieldFallsBackAloneToItsDefault() {
        let rule = AlertRule(filtersJSON: #"{"kinds":"spike","services":["checkout",7],"min_count":"10","cooldown":1e999,"throttle":-5,"digest_window":2.5,"min_severity":"loud"}"#)
        #expect(rule.kinds.isEmpty && rule.services == ["checkout"] && rule.minSeverity == .info)
        #expect(rule.minCount == AlertRule.defaultMinCount)
        #expect(rule.cooldown == .seconds(AlertRule.defaultCooldownSeconds), "a number beyond a double is no number")
        #expect(rule.throttle == .zero && rule.digestWindow == .milliseconds(2_500))
        #expect(AlertRule(filtersJSON: "[1,2]") == AlertRule() && AlertRule(filtersJSON: "{") == AlertRule())
        #expect(AlertRule(filtersJSON: #"{"min_count":1e300,"cooldown":1e300}"#).cooldown == .seconds(31_536_000))
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

    /// Raw error text in a title or evidence shows as written in Teams, not as a link, bold or a
    /// list; in Slack it cannot open a link or a mention.
    @Test func rawTextIsEscapedInEveryMarkdownFormat() throws {
        var raw = insight(.newGroup)
        raw.id = 9
        raw.title = "New: **boom** [click](https://evil.example) <!channel>"
        raw.recommendations = [Recommendation(ruleID: "r", action: "a", title: "_x_", confidence: 0.5, evidence: ["- item", "1. one", "a-b"])]
        let teams = AlertPayload.render([raw], format: .teams, deliveryID: "d", publicURL: "https://f.example")
        #expect(teams.contains(#"New: \\*\\*boom\\*\\* \\[click\\]\\(https://evil.example\\) \\<\\!channel\\>"#), "\(teams)")
        #expect(teams.contains(#"- **\\_x\\_**"#))
        #expect(teams.contains(#"  - \\- item\n  - 1\\. one\n  - a-b"#), "\(teams)")
        #expect(AlertPayload.teamsEscape("a-b 2.5 - c") == "a-b 2.5 - c")
        let slack = try JSONSerialization.jsonObject(with: Data(AlertPayload.render([raw], format: .slack, deliveryID: "d", publicURL: "https://f.example").utf8)) as! [String: Any]
        // The notification text is mrkdwn: escaped. (The header block is plain text.)
        #expect((slack["text"] as? String)?.contains("&lt;!channel&gt;") == true, "\(slack)")
        let mrkdwn = (slack["blocks"] as? [[String: Any]] ?? []).compactMap { ($0["text"] as? [String: Any]).flatMap { $0["type"] as? String == "mrkdwn" ? $0["text"] as? String : nil } }
        #expect(!mrkdwn.isEmpty && mrkdwn.allSatisfy { !$0.contains("<!channel>") }, "\(mrkdwn)")
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
