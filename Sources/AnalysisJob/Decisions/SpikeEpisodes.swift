import Analysis
import Domain
import Foundation

/// How a spike's insight grows after it was sent (no I/O): an episode is followed while its
/// series stays well above what was expected, and a burst that comes back in the detector's
/// quiet period grows the last alert instead of making a new one. Updates are written but
/// never sent, so webhooks stay as quiet as the detector.
enum SpikeEpisodes {
    /// An alert in progress: its insight, the bucket it began in, its events and its peak.
    struct Episode: Equatable {
        var insight: Insight
        var startBucket: Int
        var total: Double
        var peak: Double
    }

    /// Whether `value` is still as far above `expected` as an alert is followed.
    static func stillAbove(_ value: Double, expected: Double) -> Bool {
        value > max(expected * 1.5, expected + 3)
    }

    /// The episode grown by bucket `bucket` (whose end is `end`), or `nil` when the series came
    /// back down and the episode is over. A bucket at or before its start changes nothing.
    static func follow(_ episode: Episode, value: Double, bucket: Int, end: Date) -> Episode? {
        guard bucket > episode.startBucket else { return episode }
        guard stillAbove(value, expected: episode.insight.expected ?? 0) else { return nil }
        var episode = episode
        episode.total += value
        episode.peak = max(episode.peak, value)
        episode.insight.observed = episode.peak
        episode.insight.eventCount = Int(episode.total)
        episode.insight.lastSeenAt = end
        return episode
    }

    /// A burst in the quiet period after the series' last alert, at `bucket` (whose end is
    /// `end`): the last alert's insight grown by it — one more burst, its events, its peak —
    /// or `nil` when the bucket is no such burst.
    /// - Parameters:
    ///   - loudAt: the least count that can alert in this series.
    ///   - quietBuckets: the detector's refractory period.
    static func recur(lastAlert: Insight?, lastAlertBucket: Int, value: Double, loudAt: Double, quietBuckets: Int,
                      bucket: Int, end: Date) -> Insight? {
        guard value >= loudAt, bucket - lastAlertBucket <= quietBuckets, var insight = lastAlert,
            stillAbove(value, expected: insight.expected ?? 0)
        else { return nil }
        insight.details["bursts"] = String((Int(insight.details["bursts"] ?? "") ?? 1) + 1)
        insight.eventCount = (insight.eventCount ?? 0) + Int(value)
        insight.observed = max(insight.observed ?? 0, value)
        insight.lastSeenAt = end
        return insight
    }
}
