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

        // Order clusters by size, then first appearance, so indices read naturally and are stable.
        let k = fitted.k
        var members = [[Int]](repeating: [], count: k)
        for (document, cluster) in fitted.assignments.enumerated() {
            members[cluster].append(document)
        }
        let order = (0..<k).sorted { lhs, rhs in
            if members[lhs].count != members[rhs].count { return members[lhs].count > members[rhs].count }
            return (members[lhs].first ?? Int.max) < (members[rhs].first ?? Int.max)
        }
        var newIndex = [Int](repeating: 0, count: k)
        for (position, old) in order.enumerated() { newIndex[old] = position }

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
        let centroids = fitted.model.centroids.rows(at: order)
        return Result(
            clusters: clusters,
            assignments: documents.isEmpty ? [] : fitted.assignments.map { newIndex[$0] },
            hasher: hasher, model: KMeans.Model(centroids: centroids), kScores: fitted.kScores)
    }
}
