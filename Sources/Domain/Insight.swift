import Foundation

/// Something the analysis found that a person should know: a spike, a level shift, a new
/// group, a regression, a forecast breach, or a pattern that crosses services, with the
/// corrective actions it suggests.
public struct Insight: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case spike
        case levelShift = "level_shift"
        case newGroup = "new_group"
        case regression
        case predictedBreach = "predicted_breach"
        case cluster
    }

    public enum Severity: String, Sendable, CaseIterable, Codable, Comparable {
        case info, warning, critical

        public static func < (a: Severity, b: Severity) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// Stored id; `nil` before the insight is written.
    public var id: Int64?
    /// The same occurrence found twice (a rerun, a later bucket of the same spike) has the
    /// same key, so it updates one insight instead of adding another.
    public var dedupeKey: String
    public var kind: Kind
    public var severity: Severity
    public var service: String?
    public var environment: String?
    public var fingerprint: String?
    public var clusterID: Int64?
    public var version: String?
    public var previousVersion: String?
    public var title: String
    public var summary: String
    public var observed: Double?
    public var expected: Double?
    public var eventCount: Int?
    public var startedAt: Date
    public var lastSeenAt: Date
    /// Further facts for people and webhooks (`"services": "a, b"`, `"breach_at": …`).
    public var details: [String: String]
    public var recommendations: [Recommendation]

    public init(
        dedupeKey: String, kind: Kind, severity: Severity, service: String? = nil, environment: String? = nil,
        fingerprint: String? = nil, clusterID: Int64? = nil, version: String? = nil, previousVersion: String? = nil,
        title: String, summary: String, observed: Double? = nil, expected: Double? = nil, eventCount: Int? = nil,
        startedAt: Date, lastSeenAt: Date? = nil, details: [String: String] = [:], recommendations: [Recommendation] = []
    ) {
        self.dedupeKey = dedupeKey
        self.kind = kind
        self.severity = severity
        self.service = service
        self.environment = environment
        self.fingerprint = fingerprint
        self.clusterID = clusterID
        self.version = version
        self.previousVersion = previousVersion
        self.title = title
        self.summary = summary
        self.observed = observed
        self.expected = expected
        self.eventCount = eventCount
        self.startedAt = startedAt
        self.lastSeenAt = lastSeenAt ?? startedAt
        self.details = details
        self.recommendations = recommendations
    }
}
