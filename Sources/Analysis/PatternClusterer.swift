import Foundation

/// Finds patterns across error groups: hashed TF-IDF vectors of the groups, clustered with
/// k-means (k chosen by silhouette unless fixed), each cluster labelled with its top terms and
/// the services it spans (e.g. "timeout payments db" in three services).
public struct PatternClusterer: Sendable {
    public enum ClusterCount: Sendable, Equatable {
        case fixed(Int)
        /// Best mean silhouette in the range (clamped to 2...n-1).
        case automatic(ClosedRange<Int>)
    }

    public struct Configuration: Sendable, Equatable {
        public var features: FeatureHasher.Configuration
        public var kMeans: KMeans.Configuration
        public var clusterCount: ClusterCount
        /// Terms kept per cluster label.
        public var labelTermCount: Int
        /// Frame tokens name code rather than the problem; leave them out of labels by default.
        public var framesInLabels: Bool

        public init(
            features: FeatureHasher.Configuration = .default, kMeans: KMeans.Configuration = .default,
            clusterCount: ClusterCount = .automatic(2...30), labelTermCount: Int = 5, framesInLabels: Bool = false
        ) {
            self.features = features
            self.kMeans = kMeans
            self.clusterCount = clusterCount
            self.labelTermCount = labelTermCount
            self.framesInLabels = framesInLabels
        }

        public static let `default` = Configuration()
    }

    public struct Cluster: Sendable, Equatable {
        /// Index of the cluster: clusters are ordered by size (largest first), then by their
        /// first member's position in the input.
        public var index: Int
        /// Member document ids, in input order.
        public var memberIDs: [String]
        /// Distinct services of the members, sorted.
        public var services: [String]
        /// Distinct error types of the members, sorted.
        public var errorTypes: [String]
        /// Top terms: the members' TF-IDF weights of each term (per-document L2-normalised), summed.
        public var terms: [WeightedTerm]

        public var spansServices: Bool { services.count > 1 }
        public var label: String { terms.map(\.term).joined(separator: " ") }
    }

    public struct Result: Sendable {
        public var clusters: [Cluster]
        /// Cluster index per input document.
        public var assignments: [Int]
        /// Vectorises new documents exactly as the clustered ones.
        public var hasher: FeatureHasher
        /// Centroids in cluster-index order.
        public var model: KMeans.Model
        /// Silhouette per k tried (automatic cluster count only).
        public var kScores: [KMeans.KScore]

        /// The cluster a new document belongs to (nearest centroid); `nil` without clusters.
        public func classify(_ document: ErrorGroupDocument) -> Int? {
            model.predict(hasher.vector(document))
        }
    }

    /// Words too common to say two messages are about the same thing.
    static let commonWords: Set<String> = [
        "a", "an", "the", "at", "to", "of", "in", "on", "for", "by", "with", "from", "and", "or", "is", "was", "are",
        "be", "been", "has", "have", "had", "not", "no", "after", "before", "as", "it", "its", "this", "that",
    ]

    /// The template's words as the features see them (`FeatureHasher.templateTokens`), without
    /// `commonWords`.
    static func templateWords(_ template: String) -> Set<String> {
        Set(FeatureHasher.templateTokens(template).filter { !commonWords.contains($0) })
    }

    /// `group` split into sets whose members are linked, directly or through others, by a shared
    /// word; members without words stay with the first set (they have nothing to split on).
    static func linkedByWords(_ group: [Int], _ words: [Set<String>]) -> [[Int]] {
        var parent = Array(group.indices)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i {
                parent[i] = parent[parent[i]]
                i = parent[i]
            }
            return i
        }
        var holder: [String: Int] = [:]
        var wordless: [Int] = []
        for (position, document) in group.enumerated() {
            if words[document].isEmpty { wordless.append(position) }
            for word in words[document] {
                if let other = holder[word] {
                    let (a, b) = (root(position), root(other))
                    if a != b { parent[max(a, b)] = min(a, b) }
                } else {
                    holder[word] = position
                }
            }
        }
        var sets: [[Int]] = []
        var setOfRoot: [Int: Int] = [:]
        for position in group.indices where !words[group[position]].isEmpty {
            let r = root(position)
            if let index = setOfRoot[r] {
                sets[index].append(group[position])
            } else {
                setOfRoot[r] = sets.count
                sets.append([group[position]])
            }
        }
        if sets.isEmpty { return [group] }
        sets[0] = (sets[0] + wordless.map { group[$0] }).sorted()
        return sets
    }

    public static func cluster(_ documents: [ErrorGroupDocument], configuration: Configuration = .default) -> Result {
        let hasher = FeatureHasher(fittingOn: documents, configuration: configuration.features)
        let data = hasher.matrix(documents)
        let fitted: KMeans.Result
        switch configuration.clusterCount {
        case .fixed(let k):
            fitted = KMeans.fit(data, k: k, configuration: configuration.kMeans)
        case .automatic(let range):
            fitted = KMeans.fitChoosingK(data, kRange: range, configuration: configuration.kMeans)
        }

        // k-means may put two patterns with no word in common together (it weighs error types
        // and frames too, and k is a compromise): each of its clusters is split into the sets of
        // members linked by a shared template word.
        var members: [[Int]] = []
        var byKMeans = [[Int]](repeating: [], count: fitted.k)
        for (document, cluster) in fitted.assignments.enumerated() { byKMeans[cluster].append(document) }
        let words = documents.map { Self.templateWords($0.template) }
        for group in byKMeans where !group.isEmpty { members += Self.linkedByWords(group, words) }

        // Order clusters by size, then first appearance, so indices read naturally and are stable.
        let k = members.count
        let order = (0..<k).sorted { lhs, rhs in
            if members[lhs].count != members[rhs].count { return members[lhs].count > members[rhs].count }
            return (members[lhs].first ?? Int.max) < (members[rhs].first ?? Int.max)
        }
        var assignments = [Int](repeating: 0, count: documents.count)
        for (position, old) in order.enumerated() { for document in members[old] { assignments[document] = position } }

        var clusters: [Cluster] = []
        for (position, old) in order.enumerated() {
            var weights: [String: Double] = [:]
            for document in members[old] {
                let terms = hasher.weightedTerms(documents[document])
                let norm = terms.reduce(0) { $0 + $1.weight * $1.weight }.squareRoot()
                guard norm > 0 else { continue }
                for term in terms where configuration.framesInLabels || !term.term.hasPrefix(FeatureHasher.framePrefix) {
                    weights[term.term, default: 0] += term.weight / norm
                }
            }
            let top = weights.map { WeightedTerm(term: $0.key, weight: $0.value) }
                .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.term < $1.term }
                .prefix(configuration.labelTermCount)
            clusters.append(Cluster(
                index: position,
                memberIDs: members[old].map { documents[$0].id },
                services: Set(members[old].map { documents[$0].service }).sorted(),
                errorTypes: Set(members[old].compactMap { documents[$0].errorType }).sorted(),
                terms: Array(top)))
        }
        // Each cluster's centroid is its members' mean (a split cluster's halves have their own).
        var centroids = Matrix(rows: k, columns: data.columns)
        for (position, old) in order.enumerated() {
            var sum = [Double](repeating: 0, count: data.columns)
            for document in members[old] { for (column, value) in data.row(document).enumerated() { sum[column] += Double(value) } }
            centroids.setRow(position, to: sum.map { Float($0 / Double(members[old].count)) })
        }
        return Result(
            clusters: clusters,
            assignments: documents.isEmpty ? [] : assignments,
            hasher: hasher, model: KMeans.Model(centroids: centroids), kScores: fitted.kScores)
    }
}
