/// The values of a sliding window kept in order, beside the ring that holds them in time
/// order: a median or a quantile of the window is read, not selected anew at every step.
/// Inserting and removing move at most the window's length of values (a memmove).
struct SortedWindow: Sendable, Codable, Equatable {
    private(set) var sorted: [Double] = []

    var count: Int { sorted.count }

    subscript(_ index: Int) -> Double { sorted[index] }

    mutating func insert(_ value: Double) {
        sorted.insert(value, at: Self.lowerBound(sorted, value))
    }

    /// Removes one element equal to `value`, which must be there.
    mutating func remove(_ value: Double) {
        let index = Self.lowerBound(sorted, value)
        precondition(index < sorted.count && sorted[index] == value, "SortedWindow.remove: \(value) is not in the window")
        sorted.remove(at: index)
    }

    /// The median, as `OrderStatistics.median` gives it over the same values.
    var median: Double {
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// The median of `|x - m|` over the window, as `OrderStatistics.median` gives it: the
    /// distances are met in increasing order walking outward from `m`.
    func medianDistance(from m: Double) -> Double {
        let n = sorted.count
        guard n > 0 else { return 0 }
        let mid = n / 2
        var left = Self.lowerBound(sorted, m) - 1
        var right = left + 1
        var previous = 0.0
        var current = 0.0
        for _ in 0...mid {
            previous = current
            if right < n && (left < 0 || abs(sorted[right] - m) <= abs(sorted[left] - m)) {
                current = abs(sorted[right] - m)
                right += 1
            } else {
                current = abs(sorted[left] - m)
                left -= 1
            }
        }
        return n % 2 == 1 ? current : (previous + current) / 2
    }

    static func lowerBound(_ xs: [Double], _ value: Double) -> Int {
        var low = 0
        var high = xs.count
        while low < high {
            let mid = (low + high) / 2
            if xs[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
