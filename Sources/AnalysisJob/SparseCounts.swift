/// A series' non-zero counts, oldest first: what a dormant series keeps of its history.
struct SparseCounts {
    private var buckets: [Int] = []
    private var values: [Float] = []
    /// The index of the first entry still kept; entries before it are dropped in bulk.
    private var first = 0

    init() {}

    /// The counts of `pairs`, in any order: a bucket that repeats is summed, zeros are dropped.
    init(summing pairs: [(bucket: Int, value: Double)]) {
        var pairs = pairs
        if !zip(pairs, pairs.dropFirst()).allSatisfy({ $0.bucket < $1.bucket }) { pairs.sort { $0.bucket < $1.bucket } }
        var index = 0
        while index < pairs.count {
            let bucket = pairs[index].bucket
        var sum = pairs[index].value
            index += 1
            while index < pairs.count && pairs[index].bucket == bucket {
                sum += pairs[index].value
                index += 1
            }
            guard sum != 0 else { continue }
            buckets.append(bucket)
            values.append(Float(sum))
        }
    }

    /// The counts kept, oldest first.
    var pairs: [(bucket: Int, value: Double)] { zip(buckets[first...], values[first...]).map { ($0, Double($1)) } }

    /// The first and the last bucket with a count.
    var span: (first: Int, last: Int)? { first < buckets.count ? (buckets[first], buckets[buckets.count - 1]) : nil }

    /// The counts of both, summed where both have one.
    func adding(_ other: SparseCounts) -> SparseCounts { SparseCounts(summing: pairs + other.pairs) }

    /// Adds a bucket's count (buckets come in increasing order; a zero is not stored) and drops
    /// the entries before `keepingFrom`.
    mutating func append(_ bucket: Int, _ value: Double, keepingFrom oldest: Int) {
        while first < buckets.count && buckets[first] < oldest { first += 1 }
        if first > 32 && first * 2 > buckets.count {
            buckets.removeFirst(first)
            values.removeFirst(first)
            first = 0
        }
        guard value != 0 else { return }
        if let last = buckets.last, last == bucket, buckets.count > first {
            values[values.count - 1] = Float(value)
        } else {
            buckets.append(bucket)
            values.append(Float(value))
        }
    }

    /// Calls `body` with the value of every bucket in `[from, to)`, zero where none is stored.
    func forEachBucket(from: Int, to: Int, _ body: (Double) -> Void) {
        guard from < to else { return }
        var index = lowerBound(from)
        for bucket in from..<to {
            if index < buckets.count && buckets[index] == bucket {
                body(Double(values[index]))
                index += 1
            } else {
                body(0)
            }
        }
    }

    /// The sum of the counts in `[from, to)`.
    func sum(from: Int, to: Int) -> Double {
        var total = 0.0
        var index = buckets.count - 1
        while index >= first && buckets[index] >= from {
            if buckets[index] < to { total += Double(values[index]) }
            index -= 1
        }
        return total
    }

    /// The index of the first kept entry at or after `bucket`.
    private func lowerBound(_ bucket: Int) -> Int {
        var low = first
        var high = buckets.count
        while low < high {
            let mid = (low + high) / 2
            if buckets[mid] < bucket { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
