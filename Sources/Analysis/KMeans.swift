import CVectorKernels
import Foundation

/// A dense row-major matrix of `Float` (`rows` × `columns`).
///
/// `Float` rather than `Double`: the assignment step is bound by memory traffic and SIMD width,
/// and single precision halves the first and doubles the second; sums that feed centroids and
/// the inertia are accumulated in `Double`, so the result's inertia matches a `Double` run.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    /// `rows * columns` values, row after row.
    public private(set) var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(rows >= 0 && columns >= 0 && values.count == rows * columns, "values.count must be rows * columns")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// A zero matrix.
    public init(rows: Int, columns: Int) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: 0, count: rows * columns))
    }

    /// A matrix from equally long rows (`columns` is needed only when `rows` is empty).
    public init(rows rowArrays: [[Float]], columns: Int? = nil) {
        let width = rowArrays.first?.count ?? columns ?? 0
        precondition(rowArrays.allSatisfy { $0.count == width }, "rows must have equal length")
        self.init(rows: rowArrays.count, columns: width, values: rowArrays.flatMap { $0 })
    }

    public func row(_ index: Int) -> ArraySlice<Float> {
        values[index * columns..<(index + 1) * columns]
    }

    public subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    public mutating func setRow(_ index: Int, to row: some Collection<Float>) {
        precondition(row.count == columns, "row length must equal columns")
        values.replaceSubrange(index * columns..<(index + 1) * columns, with: row)
    }

    /// The rows at `indices`, in that order.
    public func rows(at indices: [Int]) -> Matrix {
        var out: [Float] = []
        out.reserveCapacity(indices.count * columns)
        for index in indices { out.append(contentsOf: row(index)) }
        return Matrix(rows: indices.count, columns: columns, values: out)
    }
}

/// k-means clustering (Euclidean), deterministic for a given seed.
///
/// - Seeding: greedy k-means++ (as scikit-learn: `2 + ⌊ln k⌋` candidates per step, the one that
///   lowers the potential most wins). Seeding stops when every point coincides with a chosen
///   centre, so `k` is clamped to the number of distinct points.
/// - Iteration: Lloyd's algorithm with Elkan's bounds (an upper bound per point and a lower bound
///   per point and centre; Hamerly's single lower bound when n × k bounds would not fit), which
///   skip most distance computations once clusters settle and give the same assignments as plain
///   Lloyd (up to ties and float rounding). Centroid sums are maintained incrementally. On large
///   inputs blocks of points are assigned on every core; the result is the same bit for bit.
/// - Convergence as scikit-learn: stop when no label changes, or when the sum over centres of the
///   squared centre shift is ≤ `tolerance × mean per-feature variance of the data`, or after
///   `maxIterations`; then labels are recomputed for the final centres.
/// - Empty clusters take the point farthest from its centre (lowest index on ties) among clusters
///   with more than one member.
public struct KMeans: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Upper bound on Lloyd iterations.
        public var maxIterations: Int
        /// Relative tolerance (scikit-learn's `tol`): multiplied by the mean per-feature variance.
        public var tolerance: Double
        /// Seed for k-means++ and for the silhouette sample.
        public var seed: UInt64
        /// Points used for the silhouette when choosing k (a deterministic random sample).
        public var silhouetteSampleSize: Int

        public init(maxIterations: Int = 300, tolerance: Double = 1e-4, seed: UInt64 = 0, silhouetteSampleSize: Int = 2000) {
            self.maxIterations = maxIterations
            self.tolerance = tolerance
            self.seed = seed
            self.silhouetteSampleSize = silhouetteSampleSize
        }

        public static let `default` = Configuration()
    }

    /// Fitted centroids; assigns new vectors to the nearest one.
    public struct Model: Sendable, Equatable {
        public var centroids: Matrix

        public init(centroids: Matrix) { self.centroids = centroids }

        /// Index of the nearest centroid (lowest index on ties); `nil` when there are no centroids.
        public func predict(_ vector: [Float]) -> Int? {
            predict(vector[...])
        }

        public func predict(_ vector: ArraySlice<Float>) -> Int? {
            precondition(vector.count == centroids.columns, "vector length must equal the centroid dimension")
            guard centroids.rows > 0 else { return nil }
            let d = centroids.columns
            guard d > 0 else { return 0 }
            return vector.withUnsafeBufferPointer { v in
                centroids.values.withUnsafeBufferPointer { c in
                    var best = 0
                    var bestDistance = Float.infinity
                    for j in 0..<centroids.rows {
                        let distance = VectorKernels.squaredDistance(v.baseAddress!, c.baseAddress! + j * d, d)
                        if distance < bestDistance {
                            bestDistance = distance
                            best = j
                        }
                    }
                    return best
                }
            }
        }
    }

    /// Mean silhouette obtained for one k by `fitChoosingK`.
    public struct KScore: Sendable, Equatable {
        public var k: Int
        public var silhouette: Double
    }

    public struct Result: Sendable, Equatable {
        public var model: Model
        /// Cluster index per data row.
        public var assignments: [Int]
        /// Sum of squared distances of the rows to their centroid.
        public var inertia: Double
        /// Lloyd iterations run (scikit-learn's `n_iter_`).
        public var iterations: Int
        /// False when `maxIterations` stopped the iteration.
        public var converged: Bool
        /// Silhouette per k tried (only from `fitChoosingK`), ascending k.
        public var kScores: [KScore] = []

        /// Number of clusters (after clamping to the number of distinct points).
        public var k: Int { model.centroids.rows }
    }

    /// Clusters the rows of `data` into `k` clusters (seeded by k-means++ unless
    /// `initialCentroids` is given, in which case its row count is k).
    public static func fit(
        _ data: Matrix, k: Int, configuration: Configuration = .default, initialCentroids: Matrix? = nil
    ) -> Result {
        fit(data, k: k, configuration: configuration, initialCentroids: initialCentroids, elkan: nil)
    }

    /// `elkan`: force Elkan's (true) or Hamerly's (false) bounds; nil chooses by memory.
    /// `parallel`: assign the blocks of points on every core; nil chooses by size.
    /// `blockSize`: points per block; nil chooses by the number of points.
    static func fit(
        _ data: Matrix, k: Int, configuration: Configuration, initialCentroids: Matrix?, elkan: Bool?, parallel: Bool? = nil,
        blockSize: Int? = nil
    ) -> Result {
        let start = initialCentroids ?? kMeansPlusPlus(data, k: k, seed: configuration.seed)
        precondition(start.columns == data.columns, "centroid dimension must equal the data dimension")
        guard data.rows > 0, data.columns > 0, start.rows > 0 else {
            return Result(model: Model(centroids: start), assignments: [Int](repeating: 0, count: data.rows),
                          inertia: 0, iterations: 0, converged: true)
        }
        let tolerance = configuration.tolerance * meanVariance(data)
        let outcome = data.values.withUnsafeBufferPointer { x in
            Lloyd.run(x: x.baseAddress!, n: data.rows, d: data.columns, centers: start.values,
                      maxIterations: max(1, configuration.maxIterations), tolerance: tolerance,
                      elkan: elkan ?? (data.rows * start.rows <= Lloyd.elkanLimit), parallel: parallel, blockSize: blockSize)
        }
        return Result(
            model: Model(centroids: Matrix(rows: start.rows, columns: data.columns, values: outcome.centers)),
            assignments: outcome.labels, inertia: outcome.inertia, iterations: outcome.iterations,
            converged: outcome.converged)
    }

    /// Fits every k in `kRange` (k ≥ 2 and k < n are evaluated) and keeps the one with the best
    /// mean silhouette (Euclidean, on a deterministic sample of at most
    /// `silhouetteSampleSize` rows; the smaller k wins ties). k = 1 is returned only when no
    /// k ≥ 2 can be evaluated.
    public static func fitChoosingK(_ data: Matrix, kRange: ClosedRange<Int>, configuration: Configuration = .default) -> Result {
        let n = data.rows
        let lower = max(2, kRange.lowerBound)
        let upper = min(kRange.upperBound, n - 1)
        guard lower <= upper else {
            return fit(data, k: max(1, min(kRange.lowerBound, n)), configuration: configuration)
        }
        var generator = SeededGenerator(seed: configuration.seed ^ 0x5111_0E77_E5A3_91E5)
        let sample = ClusteringMetrics.sampleIndices(count: n, size: configuration.silhouetteSampleSize, using: &generator)
        let distances = ClusteringMetrics.pairwiseDistances(data.rows(at: sample))
        var best: Result?
        var bestScore = -Double.infinity
        var scores: [KScore] = []
        for k in lower...upper {
            let result = fit(data, k: k, configuration: configuration)
            if result.k < k && scores.contains(where: { $0.k == result.k }) { break }
            let labels = sample.map { result.assignments[$0] }
            let score = ClusteringMetrics.silhouette(distances: distances, count: sample.count, labels: labels)
            scores.append(KScore(k: result.k, silhouette: score))
            if score > bestScore {
                bestScore = score
                best = result
            }
            if result.k < k { break }  // no more distinct points to open clusters on
        }
        var chosen = best!
        chosen.kScores = scores
        return chosen
    }

    /// Greedy k-means++ seeding: returns min(k, number of distinct rows) rows of `data`.
    public static func kMeansPlusPlus(_ data: Matrix, k: Int, seed: UInt64) -> Matrix {
        let n = data.rows
        let d = data.columns
        guard n > 0, k > 0 else { return Matrix(rows: 0, columns: d) }
        var generator = SeededGenerator(seed: seed)
        let trials = 2 + Int(log(Double(k)))
        var chosen = [generator.nextInt(below: n)]
        data.values.withUnsafeBufferPointer { buffer in
            let x = buffer.baseAddress!
            var closest = [Float](repeating: 0, count: n)
            var potential = 0.0
            for i in 0..<n {
                closest[i] = VectorKernels.squaredDistance(x + i * d, x + chosen[0] * d, d)
                potential += Double(closest[i])
            }
            var cumulative = [Double](repeating: 0, count: n)
            var candidateDistances = [[Float]](repeating: [Float](repeating: 0, count: n), count: trials)
            while chosen.count < k && potential > 0 {
                var running = 0.0
                var lastPositive = 0
                for i in 0..<n {
                    running += Double(closest[i])
                    cumulative[i] = running
                    if closest[i] > 0 { lastPositive = i }
                }
                var bestTrial = 0
                var bestPotential = Double.infinity
                var candidates: [Int] = []
                for t in 0..<trials {
                    let target = generator.nextDouble() * running
                    // First index whose cumulative weight exceeds the target: never a zero-weight point.
                    var lo = 0
                    var hi = n
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if cumulative[mid] > target { hi = mid } else { lo = mid + 1 }
                    }
                    let candidate = lo < n ? lo : lastPositive
                    candidates.append(candidate)
                    var trialPotential = 0.0
                    candidateDistances[t].withUnsafeMutableBufferPointer { out in
                        for i in 0..<n {
                            let distance = min(closest[i], VectorKernels.squaredDistance(x + i * d, x + candidate * d, d))
                            out[i] = distance
                            trialPotential += Double(distance)
                        }
                    }
                    if trialPotential < bestPotential {
                        bestPotential = trialPotential
                        bestTrial = t
                    }
                }
                chosen.append(candidates[bestTrial])
                swap(&closest, &candidateDistances[bestTrial])
                potential = bestPotential
            }
        }
        return data.rows(at: chosen)
    }

    /// Mean over features of the population variance (the scale of scikit-learn's tolerance).
    static func meanVariance(_ data: Matrix) -> Double {
        let n = data.rows
        let d = data.columns
        guard n > 0, d > 0 else { return 0 }
        return data.values.withUnsafeBufferPointer { values in
            var mean = [Double](repeating: 0, count: d)
            var total = 0.0
            mean.withUnsafeMutableBufferPointer { mean in
                for i in 0..<n {
                    for j in 0..<d { mean[j] += Double(values[i &* d &+ j]) }
                }
                for j in 0..<d { mean[j] /= Double(n) }
                for i in 0..<n {
                    for j in 0..<d {
                        let delta = Double(values[i &* d &+ j]) - mean[j]
                        total += delta * delta
                    }
                }
            }
            return total / Double(n) / Double(d)
        }
    }
}

/// SIMD kernels on raw row pointers (the hot loops of k-means and the silhouette).
enum VectorKernels {
    /// Squared Euclidean distance of two `count`-long rows. Two 8-lane accumulators: a fixed
    /// summation order (deterministic) that still keeps the vector unit busy.
    @inline(__always)
    static func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        var s0 = SIMD8<Float>()
        var s1 = SIMD8<Float>()
        var j = 0
        while j &+ 16 <= count {
            let offset = j &* 4
            let d0 = ra.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                - rb.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            let d1 = ra.loadUnaligned(fromByteOffset: offset &+ 32, as: SIMD8<Float>.self)
                - rb.loadUnaligned(fromByteOffset: offset &+ 32, as: SIMD8<Float>.self)
            s0 += d0 * d0
            s1 += d1 * d1
            j &+= 16
        }
        if j &+ 8 <= count {
            let offset = j &* 4
            let d0 = ra.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                - rb.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            s0 += d0 * d0
            j &+= 8
        }
        var total = (s0 + s1).sum()
        while j < count {
            let delta = a[j] - b[j]
            total += delta * delta
            j &+= 1
        }
        return total
    }
}

/// Lloyd iteration accelerated with triangle-inequality bounds, on raw buffers.
///
/// Elkan's bounds (one lower bound per point and centre) skip far more distance computations
/// than Hamerly's single lower bound once the dimension is more than a handful, at n × k floats
/// of memory; beyond `elkanLimit` bounds Hamerly's variant is used instead. Both give the
/// assignments of plain Lloyd (up to ties and float rounding).
enum Lloyd {
    static let elkanLimit = 1 << 25

    struct Outcome: Sendable {
        var centers: [Float]
        var labels: [Int]
        var inertia: Double
        var iterations: Int
        var converged: Bool
    }

    /// Below this many multiply-adds per full assignment (n × k × d) one thread does the work:
    /// handing out blocks costs more than it saves.
    static let parallelThreshold = 1 << 20

    /// Points per block: blocks are handed to threads as they come free, so a block with more
    /// boundary points than the others does not hold the step up; at most 64 blocks, each with
    /// k × d sums of its own. Depends on n alone, never on the number of cores.
    static func defaultBlockSize(n: Int) -> Int {
        max(4096, (n + 63) / 64)
    }

    /// `parallel`: the blocks of points on every core (false: one after another on the calling
    /// thread). The result is the same bit for bit either way: a block computes labels, bounds
    /// and its own changes to the centroid sums, and the changes are added in block order.
    static func run(
        x: UnsafePointer<Float>, n: Int, d: Int, centers initial: [Float], maxIterations: Int, tolerance: Double, elkan: Bool,
        parallel: Bool? = nil, blockSize: Int? = nil
    ) -> Outcome {
        let k = initial.count / d
        let w = Workspace(x: x, n: n, d: d, k: k, initial: initial, elkan: elkan,
                          parallel: parallel ?? (n * k * d >= parallelThreshold),
                          blockSize: max(1, blockSize ?? defaultBlockSize(n: n)))
        defer { w.deallocate() }
        w.initialAssign()

        var iterations = 0
        var changed = n
        var strict = false
        var converged = false
        while true {
            iterations += 1
            changed += w.relocateEmpty()
            let shiftTotal = w.updateCenters()
            if iterations > 1 && changed == 0 {
                strict = true
                converged = true
                break
            }
            if shiftTotal <= tolerance {
                converged = true
                break
            }
            if iterations >= maxIterations { break }
            changed = w.assign(updateSums: true)
        }
        // As scikit-learn: unless labels were already stable, label against the final centres.
        if !strict { _ = w.assign(updateSums: false) }

        let distances = w.finalDistances()
        var inertia = 0.0
        var labels = [Int](repeating: 0, count: n)
        for i in 0..<n {
            labels[i] = Int(w.label[i])
            inertia += Double(distances[i])
        }
        return Outcome(centers: Array(UnsafeBufferPointer(start: w.c, count: k * d)), labels: labels, inertia: inertia,
                       iterations: iterations, converged: converged)
    }

    /// Buffers of one run (manually allocated: the hot loops must not pay for copy-on-write,
    /// bounds or exclusivity checks).
    struct Workspace: @unchecked Sendable {  // blocks of points write disjoint rows; see `forEachBlock`
        let x: UnsafePointer<Float>
        let n: Int
        let d: Int
        let k: Int
        let elkan: Bool
        let c: UnsafeMutablePointer<Float>
        let newC: UnsafeMutablePointer<Float>
        let label: UnsafeMutablePointer<Int32>
        let upper: UnsafeMutablePointer<Float>
        /// Elkan: n × k lower bounds, stored plus the centre's `drift` at the time they were
        /// set (so the per-iteration decay costs no pass over n × k); Hamerly: n lower bounds on
        /// the second-nearest distance.
        let lower: UnsafeMutablePointer<Float>
        /// Elkan: total distance each centre has moved so far.
        let drift: UnsafeMutablePointer<Float>
        /// Elkan: a lower bound on the distance to the second-nearest centre (Hamerly's bound),
        /// stored plus `maxDrift` when set. Lets settled points skip without reading their row
        /// of bounds or their coordinates: the iteration is bound by memory traffic.
        let second: UnsafeMutablePointer<Float>
        /// Elkan: running sum over iterations of the largest centre shift (slot 0).
        let maxDrift: UnsafeMutablePointer<Float>
        let sums: UnsafeMutablePointer<Double>
        let counts: UnsafeMutablePointer<Int>
        /// Half the distance from each centre to its nearest other centre.
        let half: UnsafeMutablePointer<Float>
        /// Elkan: half the distance between every two centres (k × k; ∞ on the diagonal).
        let halfPair: UnsafeMutablePointer<Float>
        let shift: UnsafeMutablePointer<Float>
        /// The centres transposed for the distance kernel: coordinate t of centre j at
        /// `t * tileStride + j` (`tileStride`: k rounded up to the kernel's tile, the padding zero).
        let centresT: UnsafeMutablePointer<Float>
        let tileStride: Int
        /// Blocks of points, handed to threads in each step.
        let blocks: [Range<Int>]
        let parallel: Bool
        /// Per block, the change its points made to each centre's sum (k × d) in the last step,
        /// and to each centre's count (k).
        let blockSums: UnsafeMutablePointer<Double>
        let blockCounts: UnsafeMutablePointer<Int>

        init(x: UnsafePointer<Float>, n: Int, d: Int, k: Int, initial: [Float], elkan: Bool, parallel: Bool, blockSize: Int) {
            blocks = stride(from: 0, to: n, by: blockSize).map { $0..<min(n, $0 + blockSize) }
            self.parallel = parallel && blocks.count > 1
            blockSums = .allocate(capacity: blocks.count * k * d)
            blockCounts = .allocate(capacity: blocks.count * k)
            self.x = x
            self.n = n
            self.d = d
            self.k = k
            self.elkan = elkan
            c = .allocate(capacity: k * d)
            c.initialize(from: initial, count: k * d)
            newC = .allocate(capacity: k * d)
            label = .allocate(capacity: n)
            upper = .allocate(capacity: n)
            lower = .allocate(capacity: elkan ? n * k : n)
            sums = .allocate(capacity: k * d)
            sums.initialize(repeating: 0, count: k * d)
            counts = .allocate(capacity: k)
            counts.initialize(repeating: 0, count: k)
            half = .allocate(capacity: k)
            halfPair = .allocate(capacity: k * k)
            shift = .allocate(capacity: k)
            shift.initialize(repeating: 0, count: k)
            drift = .allocate(capacity: k)
            drift.initialize(repeating: 0, count: k)
            second = .allocate(capacity: elkan ? n : 0)
            maxDrift = .allocate(capacity: 1)
            maxDrift.initialize(to: 0)
            let tile = Int(CVectorKernels_tile)
            tileStride = (k + tile - 1) / tile * tile
            centresT = .allocate(capacity: d * tileStride)
            centresT.initialize(repeating: 0, count: d * tileStride)
            transposeCentres()
        }

        func deallocate() {
            c.deallocate(); newC.deallocate(); label.deallocate(); upper.deallocate(); lower.deallocate()
            sums.deallocate(); counts.deallocate(); half.deallocate(); halfPair.deallocate(); shift.deallocate()
            drift.deallocate(); second.deallocate(); maxDrift.deallocate(); centresT.deallocate()
            blockSums.deallocate(); blockCounts.deallocate()
        }

        private func transposeCentres() {
            for j in 0..<k {
                for t in 0..<d { centresT[t * tileStride + j] = c[j * d + t] }
            }
        }

        /// Squared distances from point `i` to every centre, into `out` (k floats): one pass of
        /// the vector kernel, several times cheaper per distance than one distance at a time
        /// once more than a few centres are wanted.
        @inline(__always) func distancesToAll(_ i: Int, _ out: UnsafeMutablePointer<Float>) {
            CVectorKernels_distancesToCentres(x + i * d, centresT, d, k, tileStride, out)
        }

        /// The nearest centre in a row of k squared distances (the lowest index on ties), its
        /// squared distance, and the smallest squared distance of the others.
        @inline(__always) func nearestTwo(_ row: UnsafeMutablePointer<Float>) -> (Int, Float, Float) {
            var best = 0
            var bestDistance = Float.infinity
            var second = Float.infinity
            for j in 0..<k {
                let distance = row[j]
                if distance < bestDistance {
                    second = bestDistance
                    bestDistance = distance
                    best = j
                } else if distance < second {
                    second = distance
                }
            }
            return (best, bestDistance, second)
        }

        /// `body` with a scratch row of k floats (one per range of points).
        @inline(__always) func withScratch<T>(_ body: (UnsafeMutablePointer<Float>) -> T) -> T {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: k) { body($0.baseAddress!) }
        }

        /// Moves row `xi` from centre `old` to centre `new` in `sums` and `counts` (the run's own,
        /// or a block's changes).
        @inline(__always) func move(
            _ xi: UnsafePointer<Float>, from old: Int, to new: Int, sums: UnsafeMutablePointer<Double>,
            counts: UnsafeMutablePointer<Int>
        ) {
            let s = sums + old * d
            let t = sums + new * d
            for column in 0..<d {
                s[column] -= Double(xi[column])
                t[column] += Double(xi[column])
            }
            counts[old] -= 1
            counts[new] += 1
        }

        /// `body` on every block of points (its index), in parallel unless `parallel` is false;
        /// the results in block order.
        func forEachBlock<T: Sendable>(_ body: @Sendable (Int) -> T) -> [T] {
            parallel ? parallelMap(blocks.count, body) : blocks.indices.map(body)
        }

        /// Adds each block's changes to the centroid sums and counts, in block order (the blocks
        /// whose `changed` is 0 changed nothing).
        func addBlockChanges(_ changed: [Int]) {
            for (block, count) in changed.enumerated() where count > 0 {
                let delta = blockSums + block * k * d
                for t in 0..<(k * d) { sums[t] += delta[t] }
                let deltaCounts = blockCounts + block * k
                for j in 0..<k { counts[j] += deltaCounts[j] }
            }
        }

        /// Block `block`'s changes, zeroed.
        @inline(__always) func clearedChanges(_ block: Int) -> (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Int>) {
            let delta = blockSums + block * k * d
            delta.update(repeating: 0, count: k * d)
            let deltaCounts = blockCounts + block * k
            deltaCounts.update(repeating: 0, count: k)
            return (delta, deltaCounts)
        }

        func initialAssign() {
            let members = forEachBlock { block in withScratch { row in
                let (delta, deltaCounts) = clearedChanges(block)
                for i in blocks[block] {
                    distancesToAll(i, row)
                    if elkan {
                        for j in 0..<k { lower[i * k + j] = row[j].squareRoot() }
                    }
                    let (best, bestDistance, secondDistance) = nearestTwo(row)
                    label[i] = Int32(best)
                    upper[i] = bestDistance.squareRoot()
                    if elkan {
                        second[i] = secondDistance.squareRoot()
                    } else {
                        lower[i] = secondDistance.squareRoot()
                    }
                    let xi = x + i * d
                    let s = delta + best * d
                    for t in 0..<d { s[t] += Double(xi[t]) }
                    deltaCounts[best] += 1
                }
                return blocks[block].count
            } }
            addBlockChanges(members)
        }

        /// Each point's squared distance to its centre, written over the upper bounds (the last
        /// step that needs them has run).
        func finalDistances() -> UnsafeMutablePointer<Float> {
            _ = forEachBlock { block in
                for i in blocks[block] { upper[i] = VectorKernels.squaredDistance(x + i * d, c + Int(label[i]) * d, d) }
            }
            return upper
        }

        /// New centres from the sums; records each centre's shift; returns Σ shift².
        func updateCenters() -> Double {
            var shiftTotal = 0.0
            for j in 0..<k {
                let target = newC + j * d
                if counts[j] > 0 {
                    let inverse = 1.0 / Double(counts[j])
                    let s = sums + j * d
                    for t in 0..<d { target[t] = Float(s[t] * inverse) }
                } else {
                    target.update(from: c + j * d, count: d)
                }
                let moved = VectorKernels.squaredDistance(target, c + j * d, d)
                shift[j] = moved.squareRoot()
                shiftTotal += Double(moved)
            }
            c.update(from: newC, count: k * d)
            transposeCentres()
            return shiftTotal
        }

        private func centreSeparations() {
            for j in 0..<k {
                halfPair[j * k + j] = .infinity  // a centre is never a candidate against itself
                half[j] = .infinity
            }
            for j in 0..<k {
                for other in (j + 1)..<max(k, j + 1) {
                    let h = 0.5 * VectorKernels.squaredDistance(c + j * d, c + other * d, d).squareRoot()
                    halfPair[j * k + other] = h
                    halfPair[other * k + j] = h
                    half[j] = min(half[j], h)
                    half[other] = min(half[other], h)
                }
            }
        }

        /// One assignment step against centres that moved by `shift`; returns labels changed.
        /// The blocks of points are assigned in parallel, each adding up the changes its
        /// relabelled points make to the sums; the changes are then added in block order.
        func assign(updateSums: Bool) -> Int {
            centreSeparations()
            let moves: [Int]
            if elkan {
                var largestShift: Float = 0
                for j in 0..<k {
                    drift[j] += shift[j]
                    largestShift = max(largestShift, shift[j])
                }
                maxDrift[0] += largestShift
                moves = forEachBlock { assignElkan($0) }
            } else {
                var maxShift: Float = 0
                var maxIndex = -1
                var secondShift: Float = 0
                for j in 0..<k {
                    if shift[j] > maxShift {
                        secondShift = maxShift
                        maxShift = shift[j]
                        maxIndex = j
                    } else if shift[j] > secondShift {
                        secondShift = shift[j]
                    }
                }
                let (largest, largestIndex, runnerUp) = (maxShift, maxIndex, secondShift)
                moves = forEachBlock { assignHamerly($0, maxShift: largest, maxIndex: largestIndex, secondShift: runnerUp) }
            }
            if updateSums { addBlockChanges(moves) }
            return moves.reduce(0, +)
        }

        /// Assigns the points of a block with Elkan's bounds (in C, compiled for each vector unit);
        /// returns how many changed label, and leaves the block's changes to the sums and counts.
        private func assignElkan(_ block: Int) -> Int {
            let range = blocks[block]
            var state = CVectorKernels_Elkan(
                x: x, d: d, k: k, c: UnsafePointer(c), centresT: UnsafePointer(centresT), stride: tileStride, label: label,
                upper: upper, lower: lower, second: second, drift: UnsafePointer(drift), secondDrift: maxDrift[0],
                shift: UnsafePointer(shift), half: UnsafePointer(half), halfPair: UnsafePointer(halfPair))
            return withScratch { row in
                CVectorKernels_elkanAssign(&state, range.lowerBound, range.upperBound, row, blockSums + block * k * d,
                                           blockCounts + block * k)
            }
        }

        /// Assigns the points of a block with Hamerly's bounds; returns as `assignElkan`.
        private func assignHamerly(_ block: Int, maxShift: Float, maxIndex: Int, secondShift: Float) -> Int {
            withScratch { row in assignHamerly(block, maxShift: maxShift, maxIndex: maxIndex, secondShift: secondShift, row: row) }
        }

        private func assignHamerly(
            _ block: Int, maxShift: Float, maxIndex: Int, secondShift: Float, row: UnsafeMutablePointer<Float>
        ) -> Int {
            let (delta, deltaCounts) = clearedChanges(block)
            var count = 0
            for i in blocks[block] {
                let a = Int(label[i])
                var u = upper[i] + shift[a]
                let l = lower[i] - (a == maxIndex ? secondShift : maxShift)
                let bound = max(half[a], l)
                if u <= bound {
                    upper[i] = u
                    lower[i] = l
                    continue
                }
                let xi = x + i * d
                u = VectorKernels.squaredDistance(xi, c + a * d, d).squareRoot()
                if u <= bound {
                    upper[i] = u
                    lower[i] = l
                    continue
                }
                distancesToAll(i, row)
                let (best, bestDistance, second) = nearestTwo(row)
                upper[i] = bestDistance.squareRoot()
                lower[i] = second.squareRoot()
                if best != a {
                    move(xi, from: a, to: best, sums: delta, counts: deltaCounts)
                    count += 1
                    label[i] = Int32(best)
                }
            }
            return count
        }

        /// Gives every empty cluster the point farthest from its centre (lowest index on ties)
        /// among clusters with more than one member; returns the points moved.
        func relocateEmpty() -> Int {
            guard (0..<k).contains(where: { counts[$0] == 0 }) else { return 0 }
            var far = [Float](repeating: 0, count: n)
            for i in 0..<n { far[i] = VectorKernels.squaredDistance(x + i * d, c + Int(label[i]) * d, d) }
            var moved = 0
            for j in 0..<k where counts[j] == 0 {
                var pick = -1
                var pickDistance: Float = 0
                for i in 0..<n where far[i] > pickDistance && counts[Int(label[i])] > 1 {
                    pick = i
                    pickDistance = far[i]
                }
                guard pick >= 0 else { break }  // every point sits on its centre: nothing to split
                move(x + pick * d, from: Int(label[pick]), to: j, sums: sums, counts: counts)
                label[pick] = Int32(j)
                far[pick] = 0
                // Zero bounds are valid (the centre will be this point) and force a recheck.
                upper[pick] = 0
                if elkan {
                    (lower + pick * k).update(from: drift, count: k)
                    second[pick] = maxDrift[0]
                } else {
                    lower[pick] = 0
                }
                moved += 1
            }
            return moved
        }
    }
}
