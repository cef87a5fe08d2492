import Testing
@testable import Analysis

/// Planted clusters: `k` well separated centres in `d` dimensions, `perCluster` points each.
private func planted(k: Int, d: Int, perCluster: Int, spread: Float = 0.3, seed: UInt64 = 7) -> (Matrix, [Int]) {
    var generator = SeededGenerator(seed: seed)
    var centres: [[Float]] = []
    for c in 0..<k {
        var centre = [Float](repeating: 0, count: d)
        centre[c % d] = 10
        centre[(c / d + 1) % d] += Float(c / d) * 10
        centres.append(centre)
    }
    var rows: [[Float]] = []
    var labels: [Int] = []
    for c in 0..<k {
        for _ in 0..<perCluster {
            rows.append(centres[c].map { $0 + Float(generator.nextGaussian()) * spread })
            labels.append(c)
        }
    }
    return (Matrix(rows: rows), labels)
}

@Suite struct AdjustedRandIndexTests {
    @Test func identicalPartitionsUpToRenamingScoreOne() {
        #expect(ClusteringMetrics.adjustedRandIndex([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 9, 9]) == 1)
    }

    @Test func knownValueMatchesReference() {
        // scikit-learn: adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2]) == 0.5714285714285715
        let value = ClusteringMetrics.adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2])
        #expect(abs(value - 0.5714285714285715) < 1e-12)
        // adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1]) == -0.5 (worse than chance)
        #expect(abs(ClusteringMetrics.adjustedRandIndex([0, 0, 1, 1], [0, 1, 0, 1]) - (-0.5)) < 1e-12)
    }

    @Test func trivialPartitions() {
        #expect(ClusteringMetrics.adjustedRandIndex([1, 1, 1], [0, 0, 0]) == 1)
        #expect(ClusteringMetrics.adjustedRandIndex([], []) == 1)
        #expect(ClusteringMetrics.adjustedRandIndex([0, 1, 2, 3], [0, 0, 0, 0]) == 0)
    }
}

@Suite struct SilhouetteTests {
    @Test func separatedClustersScoreHighAndMixedLow() {
        let data = Matrix(rows: [[0, 0], [0, 1], [10, 0], [10, 1]])
        #expect(ClusteringMetrics.silhouette(data, labels: [0, 0, 1, 1]) > 0.85)
        #expect(ClusteringMetrics.silhouette(data, labels: [0, 1, 0, 1]) < 0)
        #expect(ClusteringMetrics.silhouette(data, labels: [0, 0, 0, 0]) == -1)
    }
}

@Suite struct SeededGeneratorTests {
    @Test func sameSeedSameSequenceDifferentSeedDifferent() {
        var a = SeededGenerator(seed: 1)
        var b = SeededGenerator(seed: 1)
        var c = SeededGenerator(seed: 2)
        let sa = (0..<8).map { _ in a.next() }
        #expect(sa == (0..<8).map { _ in b.next() })
        #expect(sa != (0..<8).map { _ in c.next() })
    }

    @Test func boundedValuesStayInRange() {
        var g = SeededGenerator(seed: 3)
        for _ in 0..<1000 {
            let v = g.nextInt(below: 7)
            #expect((0..<7).contains(v))
            let u = g.nextDouble()
            #expect(u >= 0 && u < 1)
        }
    }
}

@Suite struct KMeansTests {
    @Test func recoversPlantedClusters() {
        let (data, truth) = planted(k: 6, d: 8, perCluster: 50)
        let result = KMeans.fit(data, k: 6, configuration: .init(seed: 1))
        #expect(result.k == 6)
        #expect(ClusteringMetrics.adjustedRandIndex(result.assignments, truth) >= 0.95)
        #expect(result.converged)
    }

    @Test func recoversOverlappingMixture() {
        // Overlapping Gaussians (as in the benchmark, smaller): ARI against the generating
        // components is high but not 1, and inertia does not increase with k.
        let (data, truth) = SyntheticData.gaussianMixture(count: 3000, dimensions: 16, components: 5, centreSpread: 3, clusterStd: 1, seed: 11)
        let result = KMeans.fit(data, k: 5, configuration: .init(seed: 2))
        #expect(ClusteringMetrics.adjustedRandIndex(result.assignments, truth) >= 0.95)
        let more = KMeans.fit(data, k: 8, configuration: .init(seed: 2))
        #expect(more.inertia < result.inertia)
    }

    @Test func chooseKFindsPlantedK() {
        for k in [3, 5, 8] {
            let (data, truth) = planted(k: k, d: 10, perCluster: 40, seed: UInt64(k))
            let result = KMeans.fitChoosingK(data, kRange: 2...12, configuration: .init(seed: 4))
            #expect(result.k == k, "planted \(k), scores \(result.kScores)")
            #expect(ClusteringMetrics.adjustedRandIndex(result.assignments, truth) >= 0.95)
            #expect(result.kScores.map(\.k) == Array(2...12))
        }
    }

    @Test func chooseKUsesASampleOnLargeInputs() {
        let (data, truth) = planted(k: 4, d: 6, perCluster: 700, seed: 9)
        let result = KMeans.fitChoosingK(data, kRange: 2...6, configuration: .init(seed: 4, silhouetteSampleSize: 300))
        #expect(result.k == 4)
        #expect(ClusteringMetrics.adjustedRandIndex(result.assignments, truth) >= 0.95)
    }

    @Test func deterministicForASeed() {
        let (data, _) = SyntheticData.gaussianMixture(count: 2000, dimensions: 12, components: 10, centreSpread: 1, clusterStd: 1, seed: 5)
        let first = KMeans.fit(data, k: 10, configuration: .init(seed: 42))
        let second = KMeans.fit(data, k: 10, configuration: .init(seed: 42))
        #expect(first == second)
        let seeds = (1...5).map { KMeans.kMeansPlusPlus(data, k: 10, seed: $0) }
        #expect(Set(seeds.map(\.values)).count > 1, "different seeds should be able to pick different starts")
    }

    /// (points, dimensions, clusters): fewer centres than the kernel's tile of 32 and fewer
    /// dimensions than its vector; then two tiles, the second partly padding, and dimensions
    /// that are not a multiple of the vector or of the kernel's four partial sums.
    static let lloydShapes = [(1500, 10, 8), (2000, 37, 40)]

    @Test(arguments: lloydShapes)
    func matchesPlainLloydFromTheSameStart(shape: (Int, Int, Int)) {
        // The bounds must not change the answer: compare with a textbook Lloyd iteration.
        let (n, dimensions, k) = shape
        let (data, _) = SyntheticData.gaussianMixture(count: n, dimensions: dimensions, components: k, centreSpread: 0.8, clusterStd: 1, seed: 8)
        let start = KMeans.kMeansPlusPlus(data, k: k, seed: 3)
        let fitted = KMeans.fit(data, k: k, configuration: .init(maxIterations: 20, tolerance: 0), initialCentroids: start)
        #expect(fitted.iterations > 5)
        var centres = start.values
        var labels = [Int](repeating: 0, count: data.rows)
        let d = data.columns
        func assignAll() {
            for i in 0..<data.rows {
                var best = 0
                var bestDistance = Double.infinity
                for j in 0..<k {
                    var s = 0.0
                    for t in 0..<d { let delta = Double(data[i, t]) - Double(centres[j * d + t]); s += delta * delta }
                    if s < bestDistance { bestDistance = s; best = j }
                }
                labels[i] = best
            }
        }
        for _ in 0..<fitted.iterations {
            assignAll()
            var sums = [Double](repeating: 0, count: k * d)
            var counts = [Int](repeating: 0, count: k)
            for i in 0..<data.rows {
                counts[labels[i]] += 1
                for t in 0..<d { sums[labels[i] * d + t] += Double(data[i, t]) }
            }
            for j in 0..<k where counts[j] > 0 {
                for t in 0..<d { centres[j * d + t] = Float(sums[j * d + t] / Double(counts[j])) }
            }
        }
        assignAll()
        #expect(ClusteringMetrics.adjustedRandIndex(fitted.assignments, labels) > 0.99)
        var reference = 0.0
        for i in 0..<data.rows {
            for t in 0..<d { let delta = Double(data[i, t]) - Double(centres[labels[i] * d + t]); reference += delta * delta }
        }
        #expect(abs(fitted.inertia - reference) / reference < 1e-5)
    }

    @Test func hamerlyAndElkanBoundsAgree() {
        // Large inputs switch to Hamerly's bounds; both must give the same clustering.
        let (data, _) = SyntheticData.gaussianMixture(count: 3000, dimensions: 20, components: 12, centreSpread: 0.6, clusterStd: 1, seed: 21)
        let start = KMeans.kMeansPlusPlus(data, k: 12, seed: 1)
        let elkan = KMeans.fit(data, k: 12, configuration: .default, initialCentroids: start, elkan: true)
        let hamerly = KMeans.fit(data, k: 12, configuration: .default, initialCentroids: start, elkan: false)
        #expect(elkan.iterations > 3)
        #expect(ClusteringMetrics.adjustedRandIndex(elkan.assignments, hamerly.assignments) > 0.999)
        #expect(abs(elkan.inertia - hamerly.inertia) / elkan.inertia < 1e-5)
        // Empty-cluster handling on the Hamerly path too.
        let tiny = Matrix(rows: [[0, 0], [0, 1], [1, 0], [20, 20], [20, 21]])
        let split = KMeans.fit(tiny, k: 2, configuration: .default, initialCentroids: Matrix(rows: [[0, 0], [0, 0]]), elkan: false)
        #expect(split.assignments[0] != split.assignments[3] && split.assignments[3] == split.assignments[4])
    }

    @Test(arguments: [true, false])
    func assigningOnManyThreadsGivesTheOneThreadResultBitForBit(elkan: Bool) {
        // Seven blocks, the last one short (500 points each of 3,001), an empty cluster to
        // relocate (two equal starts), and enough iterations that points move between blocks'
        // centres many times.
        let (data, _) = SyntheticData.gaussianMixture(count: 3001, dimensions: 24, components: 10, centreSpread: 0.4, clusterStd: 1, seed: 8)
        var start = KMeans.kMeansPlusPlus(data, k: 10, seed: 3)
        start.setRow(9, to: start.row(0))
        let configuration = KMeans.Configuration(tolerance: 0)
        let one = KMeans.fit(data, k: 10, configuration: configuration, initialCentroids: start, elkan: elkan, parallel: false, blockSize: 500)
        let many = KMeans.fit(data, k: 10, configuration: configuration, initialCentroids: start, elkan: elkan, parallel: true, blockSize: 500)
        #expect(one.iterations > 5)
        #expect(one == many)
    }

    @Test func kLargerThanNIsClampedToDistinctPoints() {
        let data = Matrix(rows: [[0, 0], [1, 1], [1, 1], [5, 5]])
        let result = KMeans.fit(data, k: 10)
        #expect(result.k == 3)
        #expect(result.inertia == 0)
        #expect(result.assignments[1] == result.assignments[2])
        #expect(Set(result.assignments).count == 3)
    }

    @Test func allDuplicatePointsGiveOneCluster() {
        let data = Matrix(rows: Array(repeating: [3, 4, 5], count: 20))
        let result = KMeans.fit(data, k: 4)
        #expect(result.k == 1)
        #expect(result.assignments == Array(repeating: 0, count: 20))
        #expect(result.inertia == 0)
        #expect(Array(result.model.centroids.row(0)) == [3, 4, 5])
        let chosen = KMeans.fitChoosingK(data, kRange: 2...5)
        #expect(chosen.k == 1)
    }

    @Test func zeroVectorsFormTheirOwnCluster() {
        var rows: [[Float]] = Array(repeating: [0, 0, 0], count: 10)
        rows += (0..<10).map { [1, Float($0) * 0.01, 0] }
        let result = KMeans.fit(Matrix(rows: rows), k: 2, configuration: .init(seed: 5))
        #expect(Set(result.assignments[0..<10]).count == 1)
        #expect(Set(result.assignments[10..<20]).count == 1)
        #expect(result.assignments[0] != result.assignments[10])
        #expect(!result.inertia.isNaN)
    }

    @Test func emptyAndSingleInputs() {
        let empty = KMeans.fit(Matrix(rows: 0, columns: 3), k: 3)
        #expect(empty.k == 0 && empty.assignments.isEmpty && empty.inertia == 0)
        #expect(empty.model.predict([1, 2, 3]) == nil)
        let emptyChoice = KMeans.fitChoosingK(Matrix(rows: 0, columns: 3), kRange: 2...4)
        #expect(emptyChoice.assignments.isEmpty)

        let one = KMeans.fit(Matrix(rows: [[1, 2]]), k: 3)
        #expect(one.k == 1 && one.assignments == [0] && one.inertia == 0)
        let oneChoice = KMeans.fitChoosingK(Matrix(rows: [[1, 2]]), kRange: 2...4)
        #expect(oneChoice.k == 1 && oneChoice.assignments == [0])
    }

    @Test func kOneIsTheMean() {
        let data = Matrix(rows: [[0, 0], [2, 0], [0, 2], [2, 2]])
        let result = KMeans.fit(data, k: 1)
        #expect(result.k == 1)
        #expect(Array(result.model.centroids.row(0)) == [1, 1])
        #expect(abs(result.inertia - 8) < 1e-9)
    }

    @Test func emptyClusterIsReseededFromTheFarthestPoint() {
        // Two starting centres on the same spot: one cluster starts empty.
        let data = Matrix(rows: [[0, 0], [0, 1], [1, 0], [20, 20], [20, 21]])
        let start = Matrix(rows: [[0, 0], [0, 0]])
        let result = KMeans.fit(data, k: 2, initialCentroids: start)
        #expect(result.assignments[0] == result.assignments[1] && result.assignments[1] == result.assignments[2])
        #expect(result.assignments[3] == result.assignments[4])
        #expect(result.assignments[0] != result.assignments[3])
    }

    @Test func predictPicksTheNearestCentroid() {
        let (data, truth) = planted(k: 4, d: 5, perCluster: 30)
        let result = KMeans.fit(data, k: 4, configuration: .init(seed: 9))
        // A fresh point near planted centre 2 lands with the training points of centre 2.
        var probe = [Float](repeating: 0, count: 5)
        probe[2] = 10.1
        let cluster = result.model.predict(probe)
        let members = truth.indices.filter { truth[$0] == 2 }.map { result.assignments[$0] }
        #expect(cluster == members.first)
        #expect(Set(members).count == 1)
        #expect(result.model.predict(data.row(0)) == result.assignments[0])
    }
}
