import Domain
import Foundation

// Recommended actions as data: rules in JSON, matched against the evidence of an anomaly.
//
// A rule file is `{"version": 1, "rules": [rule, …]}` (a bare array of rules is accepted too).
// A rule:
//
//   {
//     "id": "rollback-after-deploy",        required, unique; a user file's rule replaces the
//                                            shipped one with the same id
//     "enabled": false,                      optional (default true); false removes the rule (in a
//                                            user file only "id" is needed then)
//     "action": "rollback",                  required machine name; results are deduplicated by it
//     "title": "Roll back {service} from {version} to {previous_version}",
//                                            required; a string or a list of strings tried in
//                                            order: the first whose placeholders all have values
//                                            is used, and the rule does not fire if none has
//     "evidence": ["…", ["…", "…"]],         optional lines, each a string or a list tried in
//                                            order; a line with a placeholder lacking a value is
//                                            left out
//     "confidence": 0.6,                     required base confidence in 0…1
//     "boost": {                             optional additions (each −1…1), scaled by strength:
//       "deploy_recency": 0.3,               × (1 − seconds since deploy / max_seconds_since_deploy
//                                              or 3600), when the time since deploy is known
//       "ratio": 0.1,                        × log10(observed / expected) / 2, capped at 1
//       "count": 0.1,                        × log10(count) / 4, capped at 1
//       "services": 0.1,                     × (number of services − 1) / 4, capped at 1
//       "dependency": 0.1                    × 1 when the dependency is known
//     },
//     "when": {                              all given conditions must hold (empty: always)
//       "kinds": ["spike", "level_shift", "new_group", "regression", "predicted_breach", "cluster"],
//       "services": ["checkout"],            exact service names
//       "patterns": ["time(d)? ?out"],       case-insensitive regular expressions searched in the
//                                            error type, message template, sample message and
//                                            error codes; "patterns" and "http_statuses" are
//                                            alternatives: when either is given, one must match
//       "http_statuses": [502, 503, 504],
//       "exclude_patterns": ["pool"],        no match allowed in the same texts
//       "max_seconds_since_deploy": 3600,    the time since deploy must be known and at most this
//       "min_count": 10,
//       "min_ratio": 3,                      observed / expected (expected 0 counts as infinite)
//       "requires_previous_version": true,
//       "requires_dependency": true,         the dependency is known or found in the message
//       "min_services": 2
//     }
//   }
//
// Placeholders: {service} {environment} {version} {previous_version} {dependency} {kind}
// {minutes_since_deploy} {time_since_deploy} {window} {time_to_breach} {observed} {expected}
// {ratio} {count} {error_type} {services}. Unknown fields, kinds and placeholders and invalid expressions are
// errors naming the rule and the field.

/// What an anomaly detector found, as the rules see it.
public struct Evidence: Sendable {
    /// The insight kinds: spike, level_shift, new_group, regression, predicted_breach, cluster.
    public typealias Kind = Insight.Kind

    public var kind: Kind
    public var service: String
    public var environment: String?
    public var errorType: String?
    /// The masked message template of the group.
    public var template: String
    /// One raw message of the group: hosts that masking hides in the template are still in it.
    public var message: String?
    public var errorCodes: [String]
    public var httpStatuses: [Int]
    public var version: String?
    public var previousVersion: String?
    public var secondsSinceDeploy: Int?
    /// The peer host or dependency name, when known; else it is looked for in the message.
    public var dependency: String?
    /// Services affected (for clusters).
    public var services: [String]
    /// The value measured in the window (e.g. errors in the window).
    public var observed: Double
    /// The value expected in the same window.
    public var expected: Double
    /// Events behind the evidence.
    public var count: Int
    /// The length of the window `observed` covers.
    public var windowSeconds: Int?
    /// For a predicted breach: how far ahead the forecast crosses the threshold.
    public var secondsUntilBreach: Int?

    public init(kind: Kind, service: String, environment: String? = nil, errorType: String? = nil, template: String,
                message: String? = nil, errorCodes: [String] = [], httpStatuses: [Int] = [], version: String? = nil,
                previousVersion: String? = nil, secondsSinceDeploy: Int? = nil, dependency: String? = nil,
                services: [String] = [], observed: Double = 0, expected: Double = 0, count: Int = 0, windowSeconds: Int? = nil,
                secondsUntilBreach: Int? = nil) {
        self.kind = kind
        self.service = service
        self.environment = environment
        self.errorType = errorType
        self.template = template
        self.message = message
        self.errorCodes = errorCodes
        self.httpStatuses = httpStatuses
        self.version = version
        self.previousVersion = previousVersion
        self.secondsSinceDeploy = secondsSinceDeploy
        self.dependency = dependency
        self.services = services
        self.observed = observed
        self.expected = expected
        self.count = count
        self.windowSeconds = windowSeconds
        self.secondsUntilBreach = secondsUntilBreach
    }
}

/// A rule file that cannot be used: which rule (id, or position when it has none), which field.
public struct RuleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var rule: String?
    public var field: String?
    public var message: String

    public init(rule: String?, field: String?, _ message: String) {
        self.rule = rule
        self.field = field
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let rule { parts.append("rule \(rule)") }
        if let field { parts.append("field '\(field)'") }
        return parts.isEmpty ? message : parts.joined(separator: ", ") + ": " + message
    }
}

/// The rules in force: the shipped file, with a user's file merged on top.
public struct RuleSet: Sendable {
    public let rules: [Rule]

    public init(rules: [Rule]) { self.rules = rules }

    /// Parses a rule file; disabled rules are left out.
    public init(json: String) throws(RuleError) {
        self.rules = try Self.parse(json).compactMap { entry in
            if case .rule(let rule) = entry { return rule } else { return nil }
        }
    }

    /// This set with a user's file on top: the same id replaces the rule in place, a new id is
    /// added at the end, `"enabled": false` removes the rule.
    public func merging(json user: String) throws(RuleError) -> RuleSet {
        var merged = rules
        for entry in try Self.parse(user) {
            switch entry {
            case .disabled(let id):
                merged.removeAll { $0.id == id }
            case .rule(let rule):
                if let index = merged.firstIndex(where: { $0.id == rule.id }) {
                    merged[index] = rule
                } else {
                    merged.append(rule)
                }
            }
        }
        return RuleSet(rules: merged)
    }

    /// The recommendations of every matching rule, by confidence (highest first, ties in rule
    /// order), one per action.
    public func recommend(for evidence: Evidence) -> [Recommendation] {
        let values = Placeholders(evidence)
        let texts = [evidence.errorType, evidence.template, evidence.message].compactMap { $0 } + evidence.errorCodes
        let found = rules.enumerated().compactMap { index, rule in
            rule.recommendation(for: evidence, values: values, texts: texts).map { (index, $0) }
        }
        let sorted = found.sorted { a, b in
            a.1.confidence != b.1.confidence ? a.1.confidence > b.1.confidence : a.0 < b.0
        }
        var seen: Set<String> = []
        return sorted.compactMap { seen.insert($0.1.action).inserted ? $0.1 : nil }
    }

    enum Entry {
        case rule(Rule)
        case disabled(String)
    }

    static func parse(_ json: String) throws(RuleError) -> [Entry] {
        let file: RuleFile
        do {
            file = try JSONDecoder().decode(RuleFile.self, from: Data(json.utf8))
        } catch let error as RuleError {
            throw error
        } catch let DecodingError.dataCorrupted(context) {
            throw RuleError(rule: nil, field: nil, "not valid JSON" + (context.underlyingError.map { ": \($0)" } ?? ""))
        } catch {
            throw RuleError(rule: nil, field: nil, "cannot read the rule file: \(error)")
        }
        var ids: Set<String> = []
        for entry in file.entries {
            let id: String
            switch entry {
            case .rule(let rule): id = rule.id
            case .disabled(let disabled): id = disabled
            }
            guard ids.insert(id).inserted else { throw RuleError(rule: "'\(id)'", field: "id", "appears more than once") }
        }
        return file.entries
    }
}

/// One rule, validated and compiled.
public struct Rule: Sendable {
    public let id: String
    public let action: String
    public let confidence: Double
    let titles: [Template]
    let evidence: [[Template]]
    let when: Conditions
    let boost: Boosts

    struct Conditions: Sendable {
        var kinds: Set<Evidence.Kind>?
        var services: Set<String>?
        var patterns: [Pattern] = []
        var httpStatuses: Set<Int> = []
        var excludePatterns: [Pattern] = []
        var maxSecondsSinceDeploy: Int?
        var minCount: Int?
        var minRatio: Double?
        var requiresPreviousVersion = false
        var requiresDependency = false
        var minServices: Int?
    }

    struct Boosts: Sendable {
        var deployRecency = 0.0
        var ratio = 0.0
        var count = 0.0
        var services = 0.0
        var dependency = 0.0
    }

    /// The default span over which closeness to a deploy raises confidence.
    static let recencySpan = 3600.0

    func recommendation(for e: Evidence, values: Placeholders, texts: [String]) -> Recommendation? {
        if let kinds = when.kinds, !kinds.contains(e.kind) { return nil }
        if let services = when.services, !services.contains(e.service) { return nil }
        if !when.patterns.isEmpty || !when.httpStatuses.isEmpty {
            let byStatus = e.httpStatuses.contains { when.httpStatuses.contains($0) }
            let byPattern = !byStatus && when.patterns.contains { pattern in texts.contains { pattern.matches($0) } }
            guard byStatus || byPattern else { return nil }
        }
        if when.excludePatterns.contains(where: { pattern in texts.contains { pattern.matches($0) } }) { return nil }
        if let max = when.maxSecondsSinceDeploy {
            guard let seconds = e.secondsSinceDeploy, seconds >= 0, seconds <= max else { return nil }
        }
        if let min = when.minCount, e.count < min { return nil }
        if let min = when.minRatio, values.ratio < min { return nil }
        if when.requiresPreviousVersion, values.text[.previousVersion] == nil { return nil }
        if when.requiresDependency, values.text[.dependency] == nil { return nil }
        if let min = when.minServices, e.services.count < min { return nil }
        guard let title = titles.lazy.compactMap({ $0.render(values) }).first else { return nil }
        let lines = evidence.compactMap { alternatives in alternatives.lazy.compactMap { $0.render(values) }.first }
        return Recommendation(ruleID: id, action: action, title: title, confidence: score(e, values), evidence: lines)
    }

    /// The base confidence raised by the strength of the evidence, clamped to 0…1 and rounded to
    /// three decimals so equal evidence always ranks equally.
    func score(_ e: Evidence, _ values: Placeholders) -> Double {
        var value = confidence
        if boost.deployRecency != 0, let seconds = e.secondsSinceDeploy {
            let span = Double(when.maxSecondsSinceDeploy ?? Int(Self.recencySpan))
            value += boost.deployRecency * Swift.max(0, 1 - Double(Swift.max(0, seconds)) / Swift.max(1, span))
        }
        if boost.ratio != 0 {
            let ratio = values.ratio
            value += boost.ratio * (ratio.isInfinite ? 1 : Swift.min(1, Swift.max(0, log10(Swift.max(ratio, 1)) / 2)))
        }
        if boost.count != 0 { value += boost.count * Swift.min(1, log10(Double(Swift.max(e.count, 1))) / 4) }
        if boost.services != 0 { value += boost.services * Swift.min(1, Double(Swift.max(0, e.services.count - 1)) / 4) }
        if boost.dependency != 0, values.text[.dependency] != nil { value += boost.dependency }
        return (Swift.min(1, Swift.max(0, value)) * 1000).rounded() / 1000
    }
}

// MARK: - Patterns and templates

/// A case-insensitive regular expression, compiled once.
struct Pattern: @unchecked Sendable {
    // NSRegularExpression is immutable after creation and documented as safe to share.
    let expression: NSRegularExpression

    init(_ source: String) throws {
        expression = try NSRegularExpression(pattern: source, options: [.caseInsensitive])
    }

    func matches(_ text: String) -> Bool {
        expression.firstMatch(in: text, options: [], range: NSRange(text.startIndex..., in: text)) != nil
    }
}

enum Placeholder: String, CaseIterable, Sendable {
    case service, environment, version, dependency, kind, window, observed, expected, ratio, count, services
    case previousVersion = "previous_version"
    case minutesSinceDeploy = "minutes_since_deploy"
    case timeSinceDeploy = "time_since_deploy"
    case timeToBreach = "time_to_breach"
    case errorType = "error_type"
}

/// Text with `{placeholder}`s, parsed once.
struct Template: Sendable {
    enum Part: Sendable {
        case text(String)
        case value(Placeholder)
    }

    let parts: [Part]

    init(_ source: String) throws(RuleError) {
        var parts: [Part] = []
        var rest = Substring(source)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw RuleError(rule: nil, field: nil, "unclosed '{' in \"\(source)\"")
            }
            let name = String(rest[rest.index(after: open)..<close])
            guard let placeholder = Placeholder(rawValue: name) else {
                let known = Placeholder.allCases.map { "{\($0.rawValue)}" }.sorted().joined(separator: " ")
                throw RuleError(rule: nil, field: nil, "unknown placeholder {\(name)} in \"\(source)\" (known: \(known))")
            }
            if open > rest.startIndex { parts.append(.text(String(rest[..<open]))) }
            parts.append(.value(placeholder))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
    }

    /// nil when a placeholder has no value.
    func render(_ values: Placeholders) -> String? {
        var output = ""
        for part in parts {
            switch part {
            case .text(let text): output += text
            case .value(let placeholder):
                guard let value = values.text[placeholder] else { return nil }
                output += value
            }
        }
        return output
    }
}

/// The placeholder values of one piece of evidence, computed once for all rules.
struct Placeholders {
    var text: [Placeholder: String] = [:]
    /// observed / expected; infinite when nothing was expected but something was observed.
    var ratio: Double

    init(_ e: Evidence) {
        ratio = e.expected > 0 ? e.observed / e.expected : (e.observed > 0 ? .infinity : 0)
        func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        text[.service] = e.service
        text[.environment] = nonEmpty(e.environment)
        text[.version] = nonEmpty(e.version)
        text[.previousVersion] = nonEmpty(e.previousVersion)
        text[.dependency] = nonEmpty(e.dependency) ?? e.message.flatMap(DependencyExtractor.extract(from:))
            ?? DependencyExtractor.extract(from: e.template)
        text[.kind] = Self.phrase(e.kind)
        text[.observed] = Self.number(e.observed)
        text[.expected] = Self.number(e.expected)
        text[.count] = Self.number(Double(e.count))
        if ratio.isFinite && e.expected > 0 { text[.ratio] = Self.number(ratio) }
        text[.errorType] = nonEmpty(e.errorType)
        if !e.services.isEmpty {
            let shown = e.services.prefix(5).joined(separator: ", ")
            text[.services] = e.services.count > 5 ? "\(shown) and \(e.services.count - 5) more" : shown
        }
        if let seconds = e.secondsSinceDeploy, seconds >= 0 {
            text[.minutesSinceDeploy] = String((seconds + 30) / 60)
            text[.timeSinceDeploy] = Self.duration(seconds)
        }
        if let window = e.windowSeconds, window > 0 { text[.window] = Self.duration(window) }
        if let seconds = e.secondsUntilBreach, seconds >= 0 { text[.timeToBreach] = Self.duration(seconds) }
    }

    /// How a kind reads in a sentence.
    static func phrase(_ kind: Evidence.Kind) -> String {
        switch kind {
        case .spike: return "spike"
        case .levelShift: return "level shift"
        case .newGroup: return "new error group"
        case .regression: return "regression"
        case .predictedBreach: return "predicted breach"
        case .cluster: return "cross-service cluster"
        }
    }

    /// 1,240 · 3 · 2.5 · 0.04: grouped thousands, at most one decimal (two below 1).
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "∞" }
        let negative = value < 0
        let magnitude = abs(value)
        // Beyond what UInt64 holds exactly (a runaway forecast): no grouping, no trap.
        guard magnitude < 1e15 else { return String(format: "%.3g", value) }
        let decimals = magnitude < 1 ? 2 : (magnitude < 100 ? 1 : 0)
        let scale = pow(10, Double(decimals))
        let rounded = (magnitude * scale).rounded() / scale
        var whole = UInt64(rounded)
        var fraction = Int(((rounded - Double(whole)) * scale).rounded())
        if fraction >= Int(scale) {
            whole += 1
            fraction = 0
        }
        var digits = String(whole)
        var grouped = ""
        while digits.count > 3 {
            grouped = "," + digits.suffix(3) + grouped
            digits = String(digits.dropLast(3))
        }
        grouped = digits + grouped
        if fraction > 0 {
            var fractionText = String(fraction)
            fractionText = String(repeating: "0", count: decimals - fractionText.count) + fractionText
            while fractionText.hasSuffix("0") { fractionText.removeLast() }
            grouped += "." + fractionText
        }
        return (negative ? "-" : "") + grouped
    }

    /// 45 s · 4 min · 2 h 5 min · 3 d 2 h
    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds) s" }
        let minutes = (seconds + 30) / 60
        if minutes < 60 { return "\(minutes) min" }
        let hours = minutes / 60
        if hours < 24 { return minutes % 60 == 0 ? "\(hours) h" : "\(hours) h \(minutes % 60) min" }
        return hours % 24 == 0 ? "\(hours / 24) d" : "\(hours / 24) d \(hours % 24) h"
    }
}

// MARK: - Decoding

/// Any JSON object key, so unknown fields can be reported instead of silently ignored.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

struct RuleFile: Decodable {
    var entries: [RuleSet.Entry]

    init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            for key in object.allKeys where key.stringValue != "version" && key.stringValue != "rules" {
                throw RuleError(rule: nil, field: key.stringValue, "unknown top-level field (expected \"version\" and \"rules\")")
            }
            guard object.contains(AnyKey(stringValue: "rules")) else {
                throw RuleError(rule: nil, field: "rules", "is missing")
            }
            entries = try Self.decodeList(try object.nestedUnkeyedContainer(forKey: AnyKey(stringValue: "rules")))
        } else if let list = try? decoder.unkeyedContainer() {
            entries = try Self.decodeList(list)
        } else {
            throw RuleError(rule: nil, field: nil, "a rule file is an object with \"rules\" or an array of rules")
        }
    }

    private static func decodeList(_ list: UnkeyedDecodingContainer) throws -> [RuleSet.Entry] {
        var list = list
        var entries: [RuleSet.Entry] = []
        while !list.isAtEnd {
            entries.append(try list.decode(RawRule.self).entry)
        }
        return entries
    }
}

/// A rule's JSON object, fields checked one by one so errors name them.
struct RawRule: Decodable {
    let entry: RuleSet.Entry

    init(from decoder: any Decoder) throws {
        let position = (decoder.codingPath.last?.intValue ?? 0) + 1
        guard let object = try? decoder.container(keyedBy: AnyKey.self) else {
            throw RuleError(rule: "#\(position)", field: nil, "is not a JSON object")
        }
        entry = try Self.compile(object, position: position)
    }

    static let ruleFields: Set<String> = ["id", "enabled", "action", "title", "evidence", "confidence", "boost", "when"]
    static let whenFields: Set<String> = [
        "kinds", "services", "patterns", "http_statuses", "exclude_patterns", "max_seconds_since_deploy", "min_count",
        "min_ratio", "requires_previous_version", "requires_dependency", "min_services",
    ]
    static let boostFields: Set<String> = ["deploy_recency", "ratio", "count", "services", "dependency"]

    static func compile(_ object: KeyedDecodingContainer<AnyKey>, position: Int) throws(RuleError) -> RuleSet.Entry {
        var name = "#\(position)"
        let fields = Fields(object, rule: { name }, prefix: "")
        guard let id = try fields.string("id"), !id.isEmpty else {
            throw RuleError(rule: name, field: "id", "is missing (every rule needs a unique \"id\")")
        }
        name = "'\(id)'"
        if try fields.bool("enabled") == false { return .disabled(id) }
        try fields.rejectUnknown(Self.ruleFields)
        guard let action = try fields.string("action"), !action.isEmpty else { throw fields.error("action", "is missing") }
        guard let confidence = try fields.double("confidence") else { throw fields.error("confidence", "is missing") }
        guard (0...1).contains(confidence) else { throw fields.error("confidence", "must be between 0 and 1, not \(confidence)") }
        guard let titleSources = try fields.stringOrList("title"), !titleSources.isEmpty else { throw fields.error("title", "is missing") }
        let titles = try titleSources.enumerated().map { (index, source) throws(RuleError) in
            try fields.template(source, field: titleSources.count == 1 ? "title" : "title[\(index)]")
        }
        var evidence: [[Template]] = []
        if let lines = try fields.nested(list: "evidence") {
            for (index, line) in lines.enumerated() {
                let sources = try line.stringOrList()
                evidence.append(try sources.enumerated().map { (alternative, source) throws(RuleError) in
                    try fields.template(source, field: sources.count == 1 ? "evidence[\(index)]" : "evidence[\(index)][\(alternative)]")
                })
            }
        }

        var boost = Rule.Boosts()
        if let b = try fields.object("boost") {
            try b.rejectUnknown(Self.boostFields)
            func weight(_ key: String) throws(RuleError) -> Double {
                guard let value = try b.double(key) else { return 0 }
                guard (-1...1).contains(value) else { throw b.error(key, "must be between -1 and 1, not \(value)") }
                return value
            }
            boost = Rule.Boosts(deployRecency: try weight("deploy_recency"), ratio: try weight("ratio"), count: try weight("count"),
                                services: try weight("services"), dependency: try weight("dependency"))
        }

        var when = Rule.Conditions()
        if let w = try fields.object("when") {
            try w.rejectUnknown(Self.whenFields)
            if let kinds = try w.strings("kinds") {
                var set: Set<Evidence.Kind> = []
                for (index, kind) in kinds.enumerated() {
                    guard let value = Evidence.Kind(rawValue: kind) else {
                        let known = Evidence.Kind.allCases.map(\.rawValue).joined(separator: ", ")
                        throw w.error("kinds[\(index)]", "unknown kind \"\(kind)\" (known: \(known))")
                    }
                    set.insert(value)
                }
                when.kinds = set
            }
            if let services = try w.strings("services") { when.services = Set(services) }
            when.patterns = try w.patterns("patterns")
            when.excludePatterns = try w.patterns("exclude_patterns")
            if let statuses = try w.ints("http_statuses") {
                for (index, status) in statuses.enumerated() where !(100...599).contains(status) {
                    throw w.error("http_statuses[\(index)]", "\(status) is not an HTTP status")
                }
                when.httpStatuses = Set(statuses)
            }
            when.maxSecondsSinceDeploy = try w.int("max_seconds_since_deploy", min: 0)
            when.minCount = try w.int("min_count", min: 0)
            if let ratio = try w.double("min_ratio") {
                guard ratio >= 0 else { throw w.error("min_ratio", "must not be negative") }
                when.minRatio = ratio
            }
            when.requiresPreviousVersion = try w.bool("requires_previous_version") ?? false
            when.requiresDependency = try w.bool("requires_dependency") ?? false
            when.minServices = try w.int("min_services", min: 0)
        }
        return .rule(Rule(id: id, action: action, confidence: confidence, titles: titles, evidence: evidence, when: when, boost: boost))
    }
}

/// Typed access to one JSON object of a rule, turning every failure into a RuleError that
/// names the rule and the field path.
struct Fields {
    let object: KeyedDecodingContainer<AnyKey>
    let rule: () -> String
    let prefix: String

    init(_ object: KeyedDecodingContainer<AnyKey>, rule: @escaping () -> String, prefix: String) {
        self.object = object
        self.rule = rule
        self.prefix = prefix
    }

    func error(_ key: String, _ message: String) -> RuleError {
        RuleError(rule: rule(), field: prefix + key, message)
    }

    func rejectUnknown(_ known: Set<String>) throws(RuleError) {
        for key in object.allKeys.map(\.stringValue).sorted() where !known.contains(key) {
            throw error(key, "unknown field (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    private func value<T: Decodable>(_ key: String, _ type: T.Type, _ expected: String) throws(RuleError) -> T? {
        let codingKey = AnyKey(stringValue: key)
        guard object.contains(codingKey) else { return nil }
        do {
            if try object.decodeNil(forKey: codingKey) { return nil }
            return try object.decode(T.self, forKey: codingKey)
        } catch {
            throw self.error(key, "must be \(expected)")
        }
    }

    func string(_ key: String) throws(RuleError) -> String? { try value(key, String.self, "a string") }
    func bool(_ key: String) throws(RuleError) -> Bool? { try value(key, Bool.self, "true or false") }
    func double(_ key: String) throws(RuleError) -> Double? { try value(key, Double.self, "a number") }
    func strings(_ key: String) throws(RuleError) -> [String]? { try value(key, [String].self, "a list of strings") }
    func ints(_ key: String) throws(RuleError) -> [Int]? { try value(key, [Int].self, "a list of integers") }

    func int(_ key: String, min: Int) throws(RuleError) -> Int? {
        guard let number = try value(key, Int.self, "an integer") else { return nil }
        guard number >= min else { throw error(key, "must be at least \(min)") }
        return number
    }

    func stringOrList(_ key: String) throws(RuleError) -> [String]? {
        if let text = try? value(key, String.self, "") { return [text] }
        return try value(key, [String].self, "a string or a list of strings")
    }

    func object(_ key: String) throws(RuleError) -> Fields? {
        let codingKey = AnyKey(stringValue: key)
        guard object.contains(codingKey) else { return nil }
        guard let nested = try? object.nestedContainer(keyedBy: AnyKey.self, forKey: codingKey) else {
            throw error(key, "must be an object")
        }
        return Fields(nested, rule: rule, prefix: prefix + key + ".")
    }

    /// The elements of a list, each still undecoded.
    func nested(list key: String) throws(RuleError) -> [Element]? {
        let codingKey = AnyKey(stringValue: key)
        guard object.contains(codingKey) else { return nil }
        guard var list = try? object.nestedUnkeyedContainer(forKey: codingKey) else { throw error(key, "must be a list") }
        var elements: [Element] = []
        while !list.isAtEnd {
            let index = list.currentIndex
            if let text = try? list.decode(String.self) {
                elements.append(Element(values: [text], fail: error("\(key)[\(index)]", "")))
            } else if let texts = try? list.decode([String].self) {
                elements.append(Element(values: texts, fail: error("\(key)[\(index)]", "")))
            } else {
                throw error("\(key)[\(index)]", "must be a string or a list of strings")
            }
        }
        return elements
    }

    struct Element {
        var values: [String]
        var fail: RuleError
        func stringOrList() throws(RuleError) -> [String] {
            guard !values.isEmpty else {
                var error = fail
                error.message = "must not be an empty list"
                throw error
            }
            return values
        }
    }

    func template(_ source: String, field: String) throws(RuleError) -> Template {
        do {
            return try Template(source)
        } catch {
            throw self.error(field, error.message)
        }
    }

    func patterns(_ key: String) throws(RuleError) -> [Pattern] {
        guard let sources = try strings(key) else { return [] }
        return try sources.enumerated().map { (index, source) throws(RuleError) in
            do {
                return try Pattern(source)
            } catch {
                throw self.error("\(key)[\(index)]", "invalid regular expression \"\(source)\"")
            }
        }
    }
}
