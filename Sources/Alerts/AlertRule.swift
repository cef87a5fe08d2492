import Domain
import Foundation

/// A webhook subscription's rule: which insights it wants and how much noise it tolerates.
/// Read from the subscription's `filters` JSON; every field is optional.
///
/// ```json
/// {"kinds": ["spike", "new_group"], "services": ["checkout"], "environments": ["production"],
///  "min_severity": "warning", "min_count": 10, "cooldown": 60, "throttle": 900, "digest_window": 5}
/// ```
public struct AlertRule: Sendable, Equatable {
    /// Insight kinds; `spike` also takes `level_shift`. Empty: every kind.
    public var kinds: Set<Insight.Kind> = []
    /// Empty: every service. A cross-service cluster matches when one of its services does.
    public var services: Set<String> = []
    /// Empty: every environment. An insight without an environment (a forecast, a cluster)
    /// matches only a rule without environments.
    public var environments: Set<String> = []
    public var minSeverity: Insight.Severity = .info
    /// Insights counting fewer events are not sent.
    public var minCount = Self.defaultMinCount
    /// The least time between two messages to the subscription; alerts in between wait and
    /// go out together as one digest.
    public var cooldown: Duration = .seconds(Self.defaultCooldownSeconds)
    /// After an alert for a group, further alerts of the same kind for that group are dropped
    /// for this long.
    public var throttle: Duration = .seconds(Self.defaultThrottleSeconds)
    /// How long a first alert waits for others to fold into the same message.
    public var digestWindow: Duration = .seconds(Self.defaultDigestWindowSeconds)

    public static let defaultMinCount = 1
    public static let defaultCooldownSeconds = 60
    public static let defaultThrottleSeconds = 900
    public static let defaultDigestWindowSeconds = 5

    public init() {}

    /// Reads a stored `filters` object; unknown or malformed fields fall back to their defaults
    /// (the API validates what it stores).
    public init(filtersJSON: String) {
        self.init()
        guard let object = try? JSONParser.parse(Array(filtersJSON.utf8), maxDepth: 4), object.objectValue != nil else { return }
        func strings(_ key: String) -> [String] { object[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        func number(_ key: String) -> Double? {
            guard case .number(let text)? = object[key], let value = Double(text), value.isFinite else { return nil }
            return value
        }
        // Seconds as a duration; the API stores at most a day, a row written by hand is held to a year.
        func duration(_ key: String) -> Duration? { number(key).map { .milliseconds(Int64(min(max(0, $0), 31_536_000) * 1000)) } }
        kinds = Set(strings("kinds").compactMap(Insight.Kind.init(rawValue:)))
        services = Set(strings("services"))
        environments = Set(strings("environments"))
        if let text = object["min_severity"]?.stringValue, let severity = Insight.Severity(rawValue: text) { minSeverity = severity }
        if let count = number("min_count") { minCount = Int(min(max(1, count), Double(Int32.max))) }
        if let value = duration("cooldown") { cooldown = value }
        if let value = duration("throttle") { throttle = value }
        if let value = duration("digest_window") { digestWindow = value }
    }

    /// Whether the rule wants this insight.
    public func matches(_ insight: Insight) -> Bool {
        if !kinds.isEmpty {
            let kind = insight.kind == .levelShift && kinds.contains(.spike) ? .spike : insight.kind
            guard kinds.contains(kind) else { return false }
        }
        if !services.isEmpty {
            let named = Set((insight.service.map { [$0] } ?? [])
                + (insight.details["services"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            guard !named.isDisjoint(with: services) else { return false }
        }
        if !environments.isEmpty {
            guard let environment = insight.environment, environments.contains(environment) else { return false }
        }
        guard insight.severity >= minSeverity else { return false }
        return (insight.eventCount ?? 1) >= minCount
    }

    /// What the throttle counts as "the same alert": the kind (level shifts with spikes) and
    /// the group, else the cluster, else the service.
    public static func throttleKey(_ insight: Insight) -> String {
        let kind = insight.kind == .levelShift ? Insight.Kind.spike : insight.kind
        let subject = insight.fingerprint.map { "group:\($0)" } ?? insight.clusterID.map { "cluster:\($0)" }
            ?? insight.details["series"] ?? insight.service.map { "service:\($0)" } ?? insight.dedupeKey
        return "\(kind.rawValue):\(subject)"
    }
}
