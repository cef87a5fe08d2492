import Domain
import Foundation

/// One error group as seen by pattern clustering.
public struct ErrorGroupDocument: Sendable, Equatable {
    /// The group's identity (e.g. its fingerprint).
    public var id: String
    public var service: String
    public var errorType: String?
    /// The masked message (variables as `<*>`).
    public var template: String
    /// Top stack-frame function names, outermost last.
    public var frames: [String]

    public init(id: String, service: String, errorType: String?, template: String, frames: [String]) {
        self.id = id
        self.service = service
        self.errorType = errorType
        self.template = template
        self.frames = frames
    }
}

/// A token with its TF-IDF weight in one document.
public struct WeightedTerm: Sendable, Equatable {
    public var term: String
    public var weight: Double
}

/// Hashed TF-IDF vectors of error groups.
///
/// Tokens come from the template (wildcards dropped, lower-cased, split on non-alphanumerics,
/// one-character tokens dropped), the error type (its words, CamelCase split, plus the whole
/// type name) and the frames (`f:` + the function name, so they never collide with words).
/// The service is deliberately not a feature: patterns are wanted across services.
///
/// Each token's weight is `field weight × count × idf`, with the smoothed IDF
/// `ln((1 + N) / (1 + df)) + 1` over the documents the hasher was built from (kept, so later
/// documents are vectorised the same way; unseen tokens get the maximum IDF). Tokens are hashed
/// into `dimensions` buckets with 64-bit FNV-1a (stable across processes, unlike `Hasher`) and
/// a sign bit from the same hash, then the vector is L2-normalised.
public struct FeatureHasher: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var dimensions: Int
        public var templateWeight: Double
        public var errorTypeWeight: Double
        /// Frames identify code, which differs between services even for one pattern, so they
        /// count for less than the words.
        public var frameWeight: Double

        public init(dimensions: Int = 256, templateWeight: Double = 1, errorTypeWeight: Double = 1, frameWeight: Double = 0.5) {
            precondition(dimensions > 0, "dimensions must be positive")
            self.dimensions = dimensions
            self.templateWeight = templateWeight
            self.errorTypeWeight = errorTypeWeight
            self.frameWeight = frameWeight
        }

        public static let `default` = Configuration()
    }

    public static let framePrefix = "f:"

    public let configuration: Configuration
    /// Documents the IDF was computed over.
    public let documentCount: Int
    /// Number of those documents containing each token.
    public let documentFrequency: [String: Int]

    /// Builds the IDF table from `documents`.
    public init(fittingOn documents: [ErrorGroupDocument], configuration: Configuration = .default) {
        var frequency: [String: Int] = [:]
        for document in documents {
            for term in Set(Self.termCounts(document, configuration: configuration).map(\.term)) {
                frequency[term, default: 0] += 1
            }
        }
        self.configuration = configuration
        self.documentCount = documents.count
        self.documentFrequency = frequency
    }

    public func inverseDocumentFrequency(_ term: String) -> Double {
        log(Double(1 + documentCount) / Double(1 + (documentFrequency[term] ?? 0))) + 1
    }

    /// The document's tokens with their TF-IDF weights (before hashing), sorted by term.
    public func weightedTerms(_ document: ErrorGroupDocument) -> [WeightedTerm] {
        Self.termCounts(document, configuration: configuration).map {
            WeightedTerm(term: $0.term, weight: $0.weight * inverseDocumentFrequency($0.term))
        }
    }

    /// The L2-normalised hashed vector of a document (all zeros when it has no tokens).
    public func vector(_ document: ErrorGroupDocument) -> [Float] {
        var accumulator = [Double](repeating: 0, count: configuration.dimensions)
        for term in weightedTerms(document) {
            let hash = Self.hash(term.term)
            let bucket = Int(hash % UInt64(configuration.dimensions))
            accumulator[bucket] += (hash >> 63) == 0 ? term.weight : -term.weight
        }
        let norm = accumulator.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return accumulator.map { norm > 0 ? Float($0 / norm) : 0 }
    }

    /// One row per document.
    public func matrix(_ documents: [ErrorGroupDocument]) -> Matrix {
        var values: [Float] = []
        values.reserveCapacity(documents.count * configuration.dimensions)
        for document in documents { values.append(contentsOf: vector(document)) }
        return Matrix(rows: documents.count, columns: configuration.dimensions, values: values)
    }

    // MARK: Tokens

    /// Words of a masked template: `<*>` dropped, lower-cased, split on non-alphanumerics,
    /// one-character tokens dropped.
    public static func templateTokens(_ template: String) -> [String] {
        words(template.replacingOccurrences(of: "<*>", with: " "), splitCamelCase: false)
    }

    /// Words of an error type (`java.lang.NullPointerException` → java, lang, null, pointer,
    /// exception) followed by the whole lower-cased type name (`nullpointerexception`).
    public static func errorTypeTokens(_ errorType: String) -> [String] {
        var tokens = words(errorType, splitCamelCase: true)
        let lastComponent = errorType.split(whereSeparator: { !isWordCharacter($0) }).last.map(String.init) ?? ""
        let whole = lastComponent.lowercased()
        if whole.count > 1 && !tokens.contains(whole) { tokens.append(whole) }
        return tokens
    }

    /// `f:` + the lower-cased function name of each frame.
    public static func frameTokens(_ frames: [String]) -> [String] {
        frames.compactMap { frame in
            let name = frame.trimmingCharacters(in: .whitespaces).lowercased()
            return name.isEmpty ? nil : framePrefix + name
        }
    }

    /// Field-weighted counts per token of one document, sorted by term.
    static func termCounts(_ document: ErrorGroupDocument, configuration: Configuration) -> [WeightedTerm] {
        var counts: [String: Double] = [:]
        for token in templateTokens(document.template) { counts[token, default: 0] += configuration.templateWeight }
        if let errorType = document.errorType {
            for token in errorTypeTokens(errorType) { counts[token, default: 0] += configuration.errorTypeWeight }
        }
        for token in frameTokens(document.frames) { counts[token, default: 0] += configuration.frameWeight }
        return counts.map { WeightedTerm(term: $0.key, weight: $0.value) }.sorted { $0.term < $1.term }
    }

    private static func isWordCharacter(_ character: Character) -> Bool {
        character.isLetter || character.isNumber
    }

    private static func words(_ text: String, splitCamelCase: Bool) -> [String] {
        var out: [String] = []
        for piece in text.split(whereSeparator: { !isWordCharacter($0) }) {
            let parts = splitCamelCase ? camelCaseParts(Array(piece)) : [String(piece)]
            for part in parts {
                let token = part.lowercased()
                if token.count > 1 { out.append(token) }
            }
        }
        return out
    }

    /// `HTTPTimeoutError` → HTTP, Timeout, Error; `NullPointerException` → Null, Pointer, Exception.
    private static func camelCaseParts(_ characters: [Character]) -> [String] {
        var parts: [String] = []
        var current = ""
        for (index, character) in characters.enumerated() {
            if !current.isEmpty, character.isUppercase {
                let previous = characters[index - 1]
                let nextIsLower = index + 1 < characters.count && characters[index + 1].isLowercase
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && nextIsLower) {
                    parts.append(current)
                    current = ""
                }
            }
            current.append(character)
        }
        if !current.isEmpty { parts.append(current) }
        return parts
    }

    /// 64-bit FNV-1a with splitmix64's finaliser (FNV's low bits, used for the bucket, are
    /// weak): ``StableHash``, so buckets are stable across processes and releases.
    static func hash(_ text: String) -> UInt64 {
        StableHash.mix(StableHash.fnv1a64(text.utf8))
    }
}
