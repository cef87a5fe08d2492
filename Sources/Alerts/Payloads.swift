import Domain
import Foundation

/// The body of one delivery in a subscription's format: generic JSON, a Slack incoming-webhook
/// message with blocks, or a Microsoft Teams message carrying an Adaptive Card 1.4.
///
/// Every format says what happened, where (service, environment, version), the counts, what
/// was expected against what was observed, the group or cluster, a link to the insight in the
/// API, and the recommended actions with their evidence. Several insights make a digest.
public enum AlertPayload {
    public enum Format: String, Sendable {
        case generic, slack, teams
    }

    /// Renders `insights` (oldest first) as one message.
    /// - Parameter publicURL: the API's external base URL (`https://faultline.example.com`).
    public static func render(_ insights: [Insight], format: Format, deliveryID: String, publicURL: String) -> String {
        let object: [String: Any]
        switch format {
        case .generic: object = generic(insights, deliveryID: deliveryID, publicURL: publicURL)
        case .slack: object = slack(insights, publicURL: publicURL)
        case .teams: object = teams(insights, publicURL: publicURL)
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func link(_ insight: Insight, _ publicURL: String) -> String {
        var base = publicURL
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/v1/insights/\(insight.id.map(String.init) ?? "")"
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.1f", value)
    }

    static func time(_ date: Date) -> String { RFC3339.format(date) }

    // MARK: Generic

    static func generic(_ insights: [Insight], deliveryID: String, publicURL: String) -> [String: Any] {
        [
            "delivery_id": deliveryID,
            "type": insights.count == 1 ? "alert" : "digest",
            "count": insights.count,
            "alerts": insights.map { insight -> [String: Any] in
                var item: [String: Any] = [
                    "insight_id": insight.id.map { NSNumber(value: $0) } ?? NSNull(),
                    "kind": insight.kind.rawValue,
                    "severity": insight.severity.rawValue,
                    "title": insight.title,
                    "summary": insight.summary,
                    "started_at": time(insight.startedAt),
                    "last_seen_at": time(insight.lastSeenAt),
                    "url": link(insight, publicURL),
                    "details": insight.details,
                    "recommendations": insight.recommendations.map { recommendation -> [String: Any] in
                        ["rule_id": recommendation.ruleID, "action": recommendation.action, "title": recommendation.title,
                         "confidence": recommendation.confidence, "evidence": recommendation.evidence]
                    },
                ]
                let optional: [String: Any?] = [
                    "service": insight.service, "environment": insight.environment, "version": insight.version,
                    "previous_version": insight.previousVersion, "fingerprint": insight.fingerprint,
                    "cluster_id": insight.clusterID, "event_count": insight.eventCount, "observed": insight.observed,
                    "expected": insight.expected,
                ]
                for (key, value) in optional { item[key] = value ?? NSNull() }
                return item
            },
        ]
    }

    /// The facts each format lists, in order.
    static func facts(_ insight: Insight) -> [(String, String)] {
        var facts: [(String, String)] = [("Kind", insight.kind.rawValue), ("Severity", insight.severity.rawValue)]
        if let service = insight.service { facts.append(("Service", service)) }
        if let services = insight.details["services"], insight.service == nil { facts.append(("Services", services)) }
        if let environment = insight.environment { facts.append(("Environment", environment)) }
        if let version = insight.version {
            facts.append(("Version", version + (insight.previousVersion.map { " (previously \($0))" } ?? "")))
        }
        if let count = insight.eventCount { facts.append(("Events", String(count))) }
        if let observed = insight.observed {
            facts.append(("Observed vs expected", "\(number(observed)) vs \(insight.expected.map(number) ?? "—")"))
        }
        if let fingerprint = insight.fingerprint { facts.append(("Group", fingerprint)) }
        if let cluster = insight.clusterID { facts.append(("Cluster", String(cluster))) }
        facts.append(("Started", time(insight.startedAt)))
        return facts
    }

    // MARK: Slack

    /// Slack's limits: a section's text and a field at most 3000 and 2000 characters, a header
    /// 150, ten fields a section, fifty blocks a message.
    static func clip(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    static func slackEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Text for a Teams TextBlock or fact, which render Markdown: titles and evidence may quote
    /// raw error text, so every character Markdown gives a meaning is escaped with a backslash
    /// (a `[link](…)`, `**bold**` or a list marker in an error message shows as written).
    public static func teamsEscape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        var lineStart = true
        for character in text {
            switch character {
            case "\\", "`", "*", "_", "[", "]", "(", ")", "<", ">", "~", "#", "|", "!":
                out.append("\\")
                out.append(character)
            case "-", "+", ".", "=":
                // List markers and underlines count only at the start of a line ("1." too).
                if lineStart { out.append("\\") }
                out.append(character)
            default:
                out.append(character)
            }
            if character == "\n" {
                lineStart = true
            } else if character != " " && !character.isNumber {
                lineStart = false
            }
        }
        return out
    }

    static func slack(_ insights: [Insight], publicURL: String) -> [String: Any] {
        let shown = insights.prefix(8)
        var blocks: [[String: Any]] = []
        let heading = insights.count == 1 ? insights[0].title : "\(insights.count) Faultline alerts"
        blocks.append(["type": "header", "text": ["type": "plain_text", "text": clip(heading, 150), "emoji": false]])
        for (index, insight) in shown.enumerated() {
            if index > 0 { blocks.append(["type": "divider"]) }
            let title = insights.count == 1 ? "" : "*\(slackEscape(insight.title))*\n"
            blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": clip(title + slackEscape(insight.summary), 3000)]])
            blocks.append(["type": "section", "fields": facts(insight).prefix(10).map { name, value -> [String: Any] in
                ["type": "mrkdwn", "text": clip("*\(name)*\n\(slackEscape(value))", 2000)]
            }])
            if !insight.recommendations.isEmpty {
                let lines = insight.recommendations.prefix(5).map { recommendation in
                    "• *\(slackEscape(recommendation.title))* (confidence \(Int((recommendation.confidence * 100).rounded())) %)"
                        + recommendation.evidence.prefix(4).map { "\n    ◦ \(slackEscape($0))" }.joined()
                }
                blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": clip("*Recommended actions*\n" + lines.joined(separator: "\n"), 3000)]])
            }
            let url = link(insight, publicURL)
            blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": clip("<\(url)|Insight \(insight.id.map(String.init) ?? "")> in the Faultline API", 3000)]]])
        }
        if insights.count > shown.count {
            blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": "and \(insights.count - shown.count) more"]]])
        }
        return ["text": clip(slackEscape(heading), 3000), "blocks": blocks]
    }

    // MARK: Teams

    static func teams(_ insights: [Insight], publicURL: String) -> [String: Any] {
        var body: [[String: Any]] = []
        let heading = insights.count == 1 ? insights[0].title : "\(insights.count) Faultline alerts"
        body.append(["type": "TextBlock", "text": teamsEscape(heading), "size": "Large", "weight": "Bolder", "wrap": true])
        var actions: [[String: Any]] = []
        for insight in insights.prefix(10) {
            if insights.count > 1 {
                body.append(["type": "TextBlock", "text": teamsEscape(insight.title), "weight": "Bolder", "wrap": true, "separator": true, "spacing": "Large"])
            }
            body.append(["type": "TextBlock", "text": teamsEscape(insight.summary), "wrap": true])
            body.append(["type": "FactSet", "facts": facts(insight).map { ["title": $0.0, "value": teamsEscape($0.1)] }])
            if !insight.recommendations.isEmpty {
                body.append(["type": "TextBlock", "text": "Recommended actions", "weight": "Bolder", "wrap": true])
                for recommendation in insight.recommendations.prefix(5) {
                    body.append(["type": "TextBlock", "wrap": true,
                                 "text": "- **\(teamsEscape(recommendation.title))** (confidence \(Int((recommendation.confidence * 100).rounded())) %)"])
                    if !recommendation.evidence.isEmpty {
                        body.append(["type": "TextBlock", "wrap": true, "isSubtle": true, "spacing": "None",
                                     "text": recommendation.evidence.prefix(4).map { "  - \(teamsEscape($0))" }.joined(separator: "\n")])
                    }
                }
            }
            if actions.count < 5 {
                actions.append(["type": "Action.OpenUrl", "title": insights.count == 1 ? "Open in Faultline" : "Insight \(insight.id.map(String.init) ?? "")",
                                "url": link(insight, publicURL)])
            }
        }
        let card: [String: Any] = [
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
            "actions": actions,
        ]
        return [
            "type": "message",
            "attachments": [["contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": NSNull(), "content": card]],
        ]
    }
}
