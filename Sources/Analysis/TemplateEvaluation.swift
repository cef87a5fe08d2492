/// Accuracy of a template miner against labelled messages, as defined by the Loghub-2.0 benchmark.
///
/// - GA (grouping accuracy): a message counts as correct when the predicted group that holds it
///   holds exactly the messages of its true group; GA = correct messages / all messages.
/// - FGA: F1 over groups; a predicted group is correct when it equals a true group as a set of
///   messages. Precision = correct groups / predicted groups, recall = correct groups / true groups.
/// - PA (parsing accuracy): share of messages whose predicted template string equals the true one.
/// - FTA: F1 over templates; a predicted template (groups keyed by template string) is correct when
///   all of its messages carry exactly that true template.
///
/// Loghub-2.0 keys groups by template string on both sides and rewrites every template with
/// `canonicalTemplate` first; `evaluate` does the same, so its figures compare with published ones.
public enum TemplateEvaluation {
    /// The four metrics for one data set.
    public struct Scores: Sendable, Equatable {
        public var ga: Double
        public var fga: Double
        public var pa: Double
        public var fta: Double
        public var messages: Int
        public var predictedGroups: Int
        public var trueGroups: Int
    }

    /// Grouping accuracy: share of messages whose predicted group equals their true group as a set.
    public static func groupingAccuracy<P: Hashable, T: Hashable>(predicted: [P], truth: [T]) -> Double {
        let result = groupMatch(predicted: predicted, truth: truth)
        return truth.isEmpty ? 0 : Double(result.correctMessages) / Double(truth.count)
    }

    /// F1 over groups (FGA).
    public static func groupF1<P: Hashable, T: Hashable>(predicted: [P], truth: [T]) -> Double {
        let result = groupMatch(predicted: predicted, truth: truth)
        return f1(correct: result.correctGroups, predicted: result.predictedGroups, truth: result.trueGroups)
    }

    /// Parsing accuracy: share of messages whose predicted template equals the true template.
    public static func parsingAccuracy(predicted: [String], truth: [String]) -> Double {
        precondition(predicted.count == truth.count, "one prediction per message")
        guard !truth.isEmpty else { return 0 }
        var correct = 0
        for index in truth.indices where predicted[index] == truth[index] { correct += 1 }
        return Double(correct) / Double(truth.count)
    }

    /// F1 over templates (FTA): a predicted template is correct when every message it covers has
    /// exactly that true template (then it also covers all of them, since true templates are keys).
    public static func templateF1(predicted: [String], truth: [String]) -> Double {
        precondition(predicted.count == truth.count, "one prediction per message")
        // For each predicted template: the single true template of its messages, or nil if mixed.
        var trueOf: [String: String?] = [:]
        for index in truth.indices {
            let key = predicted[index]
            if let existing = trueOf[key] {
                if let value = existing, value != truth[index] { trueOf[key] = .some(nil) }
            } else {
                trueOf[key] = .some(truth[index])
            }
        }
        var correct = 0
        for (template, trueTemplate) in trueOf where trueTemplate == template { correct += 1 }
        return f1(correct: correct, predicted: trueOf.count, truth: Set(truth).count)
    }

    /// All four metrics, Loghub-2.0 style: both template lists are canonicalised first and groups
    /// are keyed by the canonical template strings (two predicted groups with the same template
    /// count as one, as they would in the benchmark's output file).
    public static func evaluate(predictedTemplates: [String], trueTemplates: [String]) -> Scores {
        let predicted = predictedTemplates.map(canonicalTemplate)
        let truth = trueTemplates.map(canonicalTemplate)
        let groups = groupMatch(predicted: predicted, truth: truth)
        return Scores(
            ga: truth.isEmpty ? 0 : Double(groups.correctMessages) / Double(truth.count),
            fga: f1(correct: groups.correctGroups, predicted: groups.predictedGroups, truth: groups.trueGroups),
            pa: parsingAccuracy(predicted: predicted, truth: truth),
            fta: templateF1(predicted: predicted, truth: truth),
            messages: truth.count,
            predictedGroups: groups.predictedGroups,
            trueGroups: groups.trueGroups)
    }

    /// All four metrics with groups given by ids (GA and FGA use the ids; PA and FTA the
    /// canonicalised template strings).
    public static func evaluate<P: Hashable, T: Hashable>(
        predictedGroups: [P], predictedTemplates: [String], trueGroups: [T], trueTemplates: [String]
    ) -> Scores {
        let groups = groupMatch(predicted: predictedGroups, truth: trueGroups)
        let predicted = predictedTemplates.map(canonicalTemplate)
        let truth = trueTemplates.map(canonicalTemplate)
        return Scores(
            ga: trueGroups.isEmpty ? 0 : Double(groups.correctMessages) / Double(trueGroups.count),
            fga: f1(correct: groups.correctGroups, predicted: groups.predictedGroups, truth: groups.trueGroups),
            pa: parsingAccuracy(predicted: predicted, truth: truth),
            fta: templateF1(predicted: predicted, truth: truth),
            messages: trueGroups.count,
            predictedGroups: groups.predictedGroups,
            trueGroups: groups.trueGroups)
    }

    private struct GroupMatch {
        var correctMessages = 0
        var correctGroups = 0
        var predictedGroups = 0
        var trueGroups = 0
    }

    /// A true group is matched when all its messages share one predicted group and that predicted
    /// group has no other messages.
    private static func groupMatch<P: Hashable, T: Hashable>(predicted: [P], truth: [T]) -> GroupMatch {
        precondition(predicted.count == truth.count, "one prediction per message")
        var predictedSize: [P: Int] = [:]
        for key in predicted { predictedSize[key, default: 0] += 1 }
        // Per true group: its size and its single predicted group (nil once it spans two).
        var trueGroup: [T: (size: Int, predicted: P?)] = [:]
        for index in truth.indices {
            let key = truth[index]
            if var entry = trueGroup[key] {
                entry.size += 1
                if let p = entry.predicted, p != predicted[index] { entry.predicted = nil }
                trueGroup[key] = entry
            } else {
                trueGroup[key] = (1, predicted[index])
            }
        }
        var result = GroupMatch(predictedGroups: predictedSize.count, trueGroups: trueGroup.count)
        for (_, entry) in trueGroup {
            if let p = entry.predicted, predictedSize[p] == entry.size {
                result.correctMessages += entry.size
                result.correctGroups += 1
            }
        }
        return result
    }

    private static func f1(correct: Int, predicted: Int, truth: Int) -> Double {
        guard predicted > 0, truth > 0 else { return 0 }
        let precision = Double(correct) / Double(predicted)
        let recall = Double(correct) / Double(truth)
        return precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
    }

    // MARK: - Canonical templates

    /// Rewrites a template the way Loghub-2.0 corrects both oracle and parser templates, so that
    /// equivalent spellings compare equal: whitespace runs become one space; path-like tokens
    /// (`/a/b`) become `<*>`; `true`, `false`, `null`, `root`, `admin` and bare digit runs become
    /// `<*>`; a token glued to a variable (`blk_<*>`) becomes `<*>`; `<*>.<*>` and `<*><*>` fold.
    public static func canonicalTemplate(_ template: String) -> String {
        // Double spaces.
        let words = template.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        var text = Array(words.joined(separator: " ").utf8)

        // Path-like tokens, split on the reduced delimiter set.
        text = rewriteTokens(text, delimiters: pathDelimiters) { token in
            isPathLike(token) ? wildcard : token
        }
        // Booleans, default user strings, digits, words glued to a variable.
        text = rewriteTokens(text, delimiters: tokenDelimiters) { token in
            if token.isEmpty { return token }
            let lower = token.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
            for word in defaultStrings where lower.elementsEqual(word) { return wildcard }
            if token.allSatisfy({ $0 >= 48 && $0 <= 57 }) { return wildcard }
            if contains(token, wildcard), !token.contains(UInt8(ascii: "/")) { return wildcard }
            return token
        }
        text = foldAll(text, Array("<*>.<*>".utf8))
        text = foldAll(text, Array("<*><*>".utf8))
        return String(decoding: text, as: UTF8.self)
    }

    private static let wildcard: [UInt8] = Array("<*>".utf8)
    private static let defaultStrings: [[UInt8]] = ["true", "false", "null", "root", "admin"].map { Array($0.utf8) }
    private static let pathDelimiters: Set<UInt8> = Set(" ,!;:=|\"'[](){}".utf8)
    private static let tokenDelimiters: Set<UInt8> = pathDelimiters.union(".-+@#$%&".utf8)

    /// `(/[^/]+)+` over the whole token.
    private static func isPathLike(_ token: [UInt8]) -> Bool {
        guard token.count >= 2, token[0] == UInt8(ascii: "/") else { return false }
        var previousSlash = true
        for byte in token.dropFirst() {
            if byte == UInt8(ascii: "/") {
                if previousSlash { return false }
                previousSlash = true
            } else {
                previousSlash = false
            }
        }
        return !previousSlash
    }

    private static func rewriteTokens(_ text: [UInt8], delimiters: Set<UInt8>, _ rewrite: ([UInt8]) -> [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var token: [UInt8] = []
        for byte in text {
            if delimiters.contains(byte) {
                out.append(contentsOf: rewrite(token))
                token.removeAll(keepingCapacity: true)
                out.append(byte)
            } else {
                token.append(byte)
            }
        }
        out.append(contentsOf: rewrite(token))
        return out
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return true
        }
        return false
    }

    /// Replaces `pattern` by `<*>` until none is left.
    private static func foldAll(_ text: [UInt8], _ pattern: [UInt8]) -> [UInt8] {
        var current = text
        while true {
            var out: [UInt8] = []
            out.reserveCapacity(current.count)
            var index = 0
            var changed = false
            while index < current.count {
                if index + pattern.count <= current.count, current[index..<index + pattern.count].elementsEqual(pattern) {
                    out.append(contentsOf: wildcard)
                    index += pattern.count
                    changed = true
                } else {
                    out.append(current[index])
                    index += 1
                }
            }
            if !changed { return out }
            current = out
        }
    }
}
