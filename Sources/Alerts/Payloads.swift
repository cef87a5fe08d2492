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
        switch format {
        case .generic: generic(insights, deliveryID: deliveryID, publicURL: publicURL).text
        case .slack: slack(insights, publicURL: publicURL).text
        case .teams: teams(insights, publicURL: publicURL).text
        }
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

    static func generic(_ insights: [Insight], deliveryID: String, publicURL: String) -> JSONValue {
        [
            "delivery_id": .string(deliveryID),
            "type": insights.count == 1 ? "alert" : "digest",
            "count": .numeric(insights.count),
            "alerts": .array(insights.map { insight -> JSONValue in
                [
                    "insight_id": insight.id.map { .numeric($0) } ?? nil,
                    "kind": .string(insight.kind.rawValue),
                    "severity": .string(insight.severity.rawValue),
                    "title": .string(insight.title),
                    "summary": .string(insight.summary),
                    "started_at": .string(time(insight.startedAt)),
                    "last_seen_at": .string(time(insight.lastSeenAt)),
                    "url": .string(link(insight, publicURL)),
                    "details": .object(insight.details.sorted { $0.key < $1.key }.map { (key: $0.key, value: .string($0.value)) }),
                    "recommendations": .array(insight.recommendations.map { recommendation -> JSONValue in
                        ["rule_id": .string(recommendation.ruleID), "action": .string(recommendation.action),
                         "title": .string(recommendation.title), "confidence": .numeric(recommendation.confidence),
                         "evidence": .array(recommendation.evidence.map { .string($0) })]
                    }),
                    "service": .optional(insight.service),
                    "environment": .optional(insight.environment),
                    "version": .optional(insight.version),
                    "previous_version": .optional(insight.previousVersion),
                    "fingerprint": .optional(insight.fingerprint),
                    "cluster_id": insight.clusterID.map { .numeric($0) } ?? nil,
                    "event_count": insight.eventCount.map { .numeric($0) } ?? nil,
                    "observed": insight.observed.map { .numeric($0) } ?? nil,
                    "expected": insight.expected.map { .numeric($0) } ?? nil,
                ]
            }),
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

    static func slack(_ insights: [Insight], publicURL: String) -> JSONValue {
        func mrkdwn(_ text: String) -> JSONValue { ["type": "mrkdwn", "text": .string(text)] }
        let shown = insights.prefix(8)
        var blocks: [JSONValue] = []
        let heading = insights.count == 1 ? insights[0].title : "\(insights.count) Faultline alerts"
        blocks.append(["type": "header", "text": ["type": "plain_text", "text": .string(clip(heading, 150)), "emoji": false]])
        for (index, insight) in shown.enumerated() {
            if index > 0 { blocks.append(["type": "divider"]) }
            let title = insights.count == 1 ? "" : "*\(slackEscape(insight.title))*\n"
            blocks.append(["type": "section", "text": mrkdwn(clip(title + slackEscape(insight.summary), 3000))])
            blocks.append(["type": "section", "fields": .array(facts(insight).prefix(10).map { name, value in
                mrkdwn(clip("*\(name)*\n\(slackEscape(value))", 2000))
            })])
            if !insight.recommendations.isEmpty {
                let lines = insight.recommendations.prefix(5).map { recommendation in
                    "• *\(slackEscape(recommendation.title))* (confidence \(Int((recommendation.confidence * 100).rounded())) %)"
                        + recommendation.evidence.prefix(4).map { "\n    ◦ \(slackEscape($0))" }.joined()
                }
                blocks.append(["type": "section", "text": mrkdwn(clip("*Recommended actions*\n" + lines.joined(separator: "\n"), 3000))])
            }
            let url = link(insight, publicURL)
            blocks.append(["type": "context", "elements": [mrkdwn(clip("<\(url)|Insight \(insight.id.map(String.init) ?? "")> in the Faultline API", 3000))]])
        }
        if insights.count > shown.count {
            blocks.append(["type": "context", "elements": [mrkdwn("and \(insights.count - shown.count) more")]])
        }
        return ["text": .string(clip(slackEscape(heading), 3000)), "blocks": .array(blocks)]
    }

    // MARK: Teams

    static func teams(_ insights: [Insight], publicURL: String) -> JSONValue {
        var body: [JSONValue] = []
        let heading = insights.count == 1 ? insights[0].title : "\(insights.count) Faultline alerts"
        body.append(["type": "TextBlock", "text": .string(teamsEscape(heading)), "size": "Large", "weight": "Bolder", "wrap": true])
        var actions: [JSONValue] = []
        for insight in insights.prefix(10) {
            if insights.count > 1 {
                body.append(["type": "TextBlock", "text": .string(teamsEscape(insight.title)), "weight": "Bolder", "wrap": true,
                             "separator": true, "spacing": "Large"])
            }
            body.append(["type": "TextBlock", "text": .string(teamsEscape(insight.summary)), "wrap": true])
            body.append(["type": "FactSet", "facts": .array(facts(insight).map { ["title": .string($0.0), "value": .string(teamsEscape($0.1))] })])
            if !insight.recommendations.isEmpty {
                body.append(["type": "TextBlock", "text": "Recommended actions", "weight": "Bolder", "wrap": true])
                for recommendation in insight.recommendations.prefix(5) {
                    body.append(["type": "TextBlock", "wrap": true,
                                 "text": .string("- **\(teamsEscape(recommendation.title))** (confidence \(Int((recommendation.confidence * 100).rounded())) %)")])
                    if !recommendation.evidence.isEmpty {
                        body.append(["type": "TextBlock", "wrap": true, "isSubtle": true, "spacing": "None",
                                     "text": .string(recommendation.evidence.prefix(4).map { "  - \(teamsEscape($0))" }.joined(separator: "\n"))])
                    }
                }
            }
            if actions.count < 5 {
                actions.append(["type": "Action.OpenUrl",
                                "title": .string(insights.count == 1 ? "Open in Faultline" : "Insight \(insight.id.map(String.init) ?? "")"),
                                "url": .string(link(insight, publicURL))])
            }
        }
        let card: JSONValue = [
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": .array(body),
            "actions": .array(actions),
        ]
        return [
            "type": "message",
            "attachments": [["contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card]],
        ]
    }
}
