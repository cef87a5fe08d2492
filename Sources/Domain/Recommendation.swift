/// A corrective action suggested for an insight, with the evidence behind it.
public struct Recommendation: Sendable, Codable, Equatable, Hashable {
    /// The rule that made it (`rollback-after-deploy`).
    public var ruleID: String
    /// A machine name for the action (`rollback`, `circuit_breaker`, `raise_memory_limit`).
    public var action: String
    /// What to do, for a person: "Roll back checkout from 1.8.3 to 1.8.2".
    public var title: String
    /// 0…1: how strongly the evidence supports the action.
    public var confidence: Double
    /// Why, one fact a line: "the spike began 4 min after checkout 1.8.3 was deployed".
    public var evidence: [String]

    public init(ruleID: String, action: String, title: String, confidence: Double, evidence: [String]) {
        self.ruleID = ruleID
        self.action = action
        self.title = title
        self.confidence = confidence
        self.evidence = evidence
    }

    enum CodingKeys: String, CodingKey {
        case ruleID = "rule_id", action, title, confidence, evidence
    }
}
