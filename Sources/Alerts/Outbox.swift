import Domain
import Foundation
import Logging
import Postgres
import Storage

/// Writing insights together with the alerts they cause (the transactional outbox).
public enum AlertOutbox {
    /// Writes an insight and, when it is new, queues one delivery (or a fold into a waiting
    /// digest) for every enabled subscription whose rule matches — all in one transaction, so
    /// an insight is never stored without its alerts, nor an alert sent for an insight that
    /// was rolled back.
    ///
    /// - Returns: the insight's id and whether it is new.
    @discardableResult
    ///
    /// - Parameter alerting: `false` for an insight that is only shown (the API, the dashboard),
    ///   never sent: what the analysis says while it learns.
    public static func record(_ insight: Insight, alerting: Bool = true, on connection: PostgresConnection,
                              logger: Logger? = nil) throws -> (id: Int64, created: Bool) {
        try connection.transaction { connection in
            let (id, created) = try AnalysisStore.upsertInsight(insight, on: connection)
            guard created, alerting else { return (id, created) }
            for subscription in try AlertStore.enabledSubscriptions(on: connection) {
                let rule = AlertRule(filtersJSON: subscription.filtersJSON)
                guard rule.matches(insight) else { continue }
                let outcome = try AlertStore.enqueue(
                    insightID: id, webhookID: subscription.id, throttleKey: AlertRule.throttleKey(insight), throttle: rule.throttle,
                    cooldown: rule.cooldown, digestWindow: rule.digestWindow, on: connection)
                logger?.debug("alert queued", metadata: ["insight": "\(id)", "webhook": "\(subscription.id)", "outcome": "\(outcome)"])
            }
            return (id, true)
        }
    }
}
