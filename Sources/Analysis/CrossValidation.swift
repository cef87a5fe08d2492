import Dispatch

/// Leave-one-group-out cross-validation: how well a way of choosing settings does on data it
/// did not choose them on.
///
/// Each group (a log system, a NAB category) is held out in turn; the settings are chosen on the
/// other groups alone and then scored on the held-out one. The mean of those held-out scores is
/// what the choice is worth on data like none of the given (the in-sample score, chosen and
/// scored on the same data, is always at least as high).
public enum CrossValidation {
    /// One held-out group: the candidate chosen without it, and that candidate's score on it.
    public struct Fold: Sendable, Equatable {
        public var heldOut: Int
        public var candidate: Int
        public var score: Double
    }

    /// `scores[candidate][group]`, higher is better. For every group, the candidate with the
    /// best mean over the other groups (ties go to the lower index, so list the shipped setting
    /// first), and its score on the held-out group.
    public static func leaveOneGroupOut(_ scores: [[Double]]) -> [Fold] {
        guard let groups = scores.first?.count, groups > 1 else { return [] }
        return (0..<groups).map { heldOut in
            var best = 0
            var bestMean = -Double.infinity
            for (candidate, row) in scores.enumerated() {
                var sum = 0.0
                for (group, score) in row.enumerated() where group != heldOut { sum += score }
                let mean = sum / Double(groups - 1)
                if mean > bestMean {
                    best = candidate
                    bestMean = mean
                }
            }
            return Fold(heldOut: heldOut, candidate: best, score: scores[best][heldOut])
        }
    }
}

/// `body(0..<count)` on every core, results in index order. `body` must not share mutable state.
public func parallelMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    let slots = Slots<T>(count)
    DispatchQueue.concurrentPerform(iterations: count) { index in slots.set(index, body(index)) }
    return slots.values()
}

/// One slot per iteration; each is written by exactly one iteration, read after all have ended.
/// (A raw buffer, not an array property: concurrent writes to distinct elements of a class's
/// array would be overlapping accesses to the property.)
private final class Slots<T>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<T?>
    init(_ count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil)
    }
    deinit {
        storage.deinitialize()
        storage.deallocate()
    }
    func set(_ index: Int, _ value: T) { storage[index] = value }
    /// Taken out of the slots, not copied: each result stays uniquely referenced.
    func values() -> [T] { storage.indices.map { storage[$0].take()! } }
}
