/// A series' non-zero counts, oldest first: what a dormant series keeps of its history.
struct SparseCounts {
    private var buckets: [Int] = []
    private var values: [Float] = []
    /// The index of the first entry still kept; entries before it are dropped in bulk.
    private var first = 0

    init() {}

    /// The counts of `buckets[i]` (increasing, none repeated) are `values[i]`; zeros are dropped.
    init(buckets: [Int], values: [Double]) {
        precondition(buckets.count == values.count)
        self.buckets.reserveCapacity(buckets.count)
        self.values.reserveCapacity(values.count)
        for (bucket, value) in zip(buckets, values) where value != 0 {
            self.buckets.append(bucket)
            self.values.append(Float(value))
        }
    }

    /// The counts kept, oldest first.
    var entries: (buckets: ArraySlice<Int>, values: ArraySlice<Float>) { (buckets[first...], values[first...]) }

    /// The first and the last bucket with a count.
    var span: (first: Int, last: Int)? { first < buckets.count ? (buckets[first], buckets[buckets.count - 1]) : nil }

    /// The counts of both, summed where both have one.
    func adding(_ other: SparseCounts) -> SparseCounts {
        var sums: [Int: Double] = [:]
        for (bucket, value) in zip(entries.buckets, entries.values) { sums[bucket, default: 0] += Double(value) }
        for (bucket, value) in zip(other.entries.buckets, other.entries.values) { sums[bucket, default: 0] += Double(value) }
        let sorted = sums.sorted { $0.key < $1.key }
        return SparseCounts(buckets: sorted.map(\.key), values: sorted.map(\.value))
    }

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
