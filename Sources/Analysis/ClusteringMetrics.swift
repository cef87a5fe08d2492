import Foundation

/// Clustering quality measures: adjusted Rand index and mean silhouette.
public enum ClusteringMetrics {
    /// Adjusted Rand index of two labelings of the same items (Hubert & Arabie): 1 for identical
    /// partitions (label values need not match), about 0 for independent ones. Like
    /// scikit-learn, two labelings that are both a single cluster (or both all singletons) score 1.
    public static func adjustedRandIndex(_ a: [Int], _ b: [Int]) -> Double {
        precondition(a.count == b.count, "labelings must have the same length")
        let n = a.count
        guard n > 1 else { return 1 }
        var pairs: [PairKey: Int] = [:]
        var rows: [Int: Int] = [:]
        var columns: [Int: Int] = [:]
        for i in 0..<n {
            pairs[PairKey(a: a[i], b: b[i]), default: 0] += 1
            rows[a[i], default: 0] += 1
            columns[b[i], default: 0] += 1
        }
        func choose2(_ x: Int) -> Double { Double(x) * Double(x - 1) / 2 }
        let index = pairs.values.reduce(0.0) { $0 + choose2($1) }
        let sumRows = rows.values.reduce(0.0) { $0 + choose2($1) }
        let sumColumns = columns.values.reduce(0.0) { $0 + choose2($1) }
        let expected = sumRows * sumColumns / choose2(n)
        let maximum = (sumRows + sumColumns) / 2
        if maximum == expected { return 1 }  // both trivial partitions: nothing to adjust for
        return (index - expected) / (maximum - expected)
    }

    private struct PairKey: Hashable {
        var a: Int
        var b: Int
    }

    /// Mean silhouette of `labels` over the rows of `data` (Euclidean). Points alone in their
    /// cluster score 0; fewer than two clusters scores -1 (undefined, so never preferred).
    public static func silhouette(_ data: Matrix, labels: [Int]) -> Double {
        precondition(labels.count == data.rows, "one label per row")
        return silhouette(distances: pairwiseDistances(data), count: data.rows, labels: labels)
    }

    /// `size` distinct indices of `0..<count` (all of them when `size >= count`), ascending.
    static func sampleIndices(count: Int, size: Int, using generator: inout SeededGenerator) -> [Int] {
        guard size < count else { return Array(0..<count) }
        var pool = Array(0..<count)
        for i in 0..<size {
            let j = i + generator.nextInt(below: count - i)
            pool.swapAt(i, j)
        }
        return pool[0..<size].sorted()
    }

    /// Full symmetric matrix of Euclidean distances between rows (row-major, rows × rows).
    static func pairwiseDistances(_ data: Matrix) -> [Float] {
        let n = data.rows
        let d = data.columns
        var out = [Float](repeating: 0, count: n * n)
        data.values.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { o in
                guard let base = x.baseAddress else { return }  // no values: all distances are 0
                for i in 0..<n {
                    for j in (i + 1)..<n {
                        let distance = VectorKernels.squaredDistance(base + i * d, base + j * d, d).squareRoot()
                        o[i * n + j] = distance
                        o[j * n + i] = distance
                    }
                }
            }
        }
        return out
    }

    static func silhouette(distances: [Float], count n: Int, labels: [Int]) -> Double {
        guard n > 1 else { return -1 }
        var remap: [Int: Int] = [:]
        let compact = labels.map { label -> Int in
            if let index = remap[label] { return index }
            remap[label] = remap.count
            return remap.count - 1
        }
        let clusters = remap.count
        guard clusters > 1 else { return -1 }
        var sizes = [Int](repeating: 0, count: clusters)
        for label in compact { sizes[label] += 1 }
        var total = 0.0
        var perCluster = [Double](repeating: 0, count: clusters)
        for i in 0..<n {
            let own = compact[i]
            guard sizes[own] > 1 else { continue }
            for c in 0..<clusters { perCluster[c] = 0 }
            for j in 0..<n { perCluster[compact[j]] += Double(distances[i * n + j]) }
            let a = perCluster[own] / Double(sizes[own] - 1)
            var b = Double.infinity
            for c in 0..<clusters where c != own {
                b = min(b, perCluster[c] / Double(sizes[c]))
            }
            let scale = max(a, b)
            if scale > 0 { total += (b - a) / scale }
        }
        return total / Double(n)
    }
}

/// Synthetic data with known clusters (for tests and benchmarks).
public enum SyntheticData {
    /// A Gaussian mixture: `components` centres drawn from N(0, centreSpread²) per coordinate,
    /// unequal weights (uniform in [0.5, 1.5], normalised) and per-component standard deviations
    /// (uniform in [0.75, 1.25] × `clusterStd`), so clusters overlap unevenly as real data does.
    /// Returns the points and the component each was drawn from.
    public static func gaussianMixture(
        count n: Int, dimensions d: Int, components k: Int, centreSpread: Double, clusterStd: Double, seed: UInt64
    ) -> (data: Matrix, labels: [Int]) {
        var generator = SeededGenerator(seed: seed)
        var centres = [Double](repeating: 0, count: k * d)
        for index in centres.indices { centres[index] = generator.nextGaussian() * centreSpread }
        var weights = (0..<k).map { _ in 0.5 + generator.nextDouble() }
        let totalWeight = weights.reduce(0, +)
        var running = 0.0
        for c in 0..<k {
            running += weights[c] / totalWeight
            weights[c] = running
        }
        let stds = (0..<k).map { _ in clusterStd * (0.75 + 0.5 * generator.nextDouble()) }
        var values = [Float](repeating: 0, count: n * d)
        var labels = [Int](repeating: 0, count: n)
        for i in 0..<n {
            let u = generator.nextDouble()
            let component = weights.firstIndex { u < $0 } ?? (k - 1)
            labels[i] = component
            for j in 0..<d {
                values[i * d + j] = Float(centres[component * d + j] + generator.nextGaussian() * stds[component])
            }
        }
        return (Matrix(rows: n, columns: d, values: values), labels)
    }
}
