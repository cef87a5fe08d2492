import Analysis
import Foundation

/// Settings of the periodic analysis job.
public struct AnalysisConfiguration: Sendable {
    /// How often the job runs. Shorter than a bucket, so a spike is reported within one bucket.
    public var interval: Duration = .seconds(15)
    /// Width of a count bucket in seconds (the series are per-minute counts).
    public var bucketSeconds = 60
    /// A bucket is scored once event time is complete (the watermark ingest publishes) this
    /// far past its end: room for events a producer sends out of order. Counts that arrive
    /// later still are late data: their series are scored again.
    public var grace: Duration = .seconds(10)
    /// Buckets of history a detector is rebuilt from when this replica becomes the analysis
    /// leader (a day and two hours: the daily season needs a day).
    public var historyBuckets = 26 * 60
    /// Only buckets this recent raise insights; older ones (a first start, a takeover) only
    /// teach the detectors.
    public var alertLookbackBuckets = 5
    /// A bucket scored late (ingest lagged, or its counts came late) raises insights only when
    /// it is at most this old; older ones only teach the detectors.
    public var alertMaxAgeBuckets = 60
    /// The detector for a service's total error count.
    public var serviceDetector = SpikeDetector.Configuration.default
    /// The detector for one group's count.
    public var groupDetector = SpikeDetector.Configuration.default
    /// Errors per bucket a forecast warns about, for a service or a group.
    public var forecastThreshold: Double = 60
    /// How far ahead a forecast looks, in buckets.
    public var forecastHorizonBuckets = 60
    /// Buckets of recent history a forecast is fitted on.
    public var forecastWindowBuckets = 180
    /// How often the forecasts are refreshed.
    public var forecastEvery: Duration = .seconds(60)
    /// At most this many of the busiest series are forecast.
    public var forecastSeriesLimit = 200
    /// How often k-means is retrained (sooner when several new groups arrive).
    public var clusterEvery: Duration = .seconds(600)
    /// New groups that bring a retraining forward (at most once a minute).
    public var clusterNewGroups = 3
    /// Groups clustered: the busiest seen in the last `clusterActiveDays`.
    public var clusterMaxGroups = 5000
    public var clusterActiveDays = 7
    /// Bounds of the number of clusters k-means chooses from.
    public var clusterK: ClosedRange<Int> = 2...30
    /// A group first seen this soon after a rollout is "new in" that version.
    public var newInVersionWindow: Duration = .seconds(1800)
    /// How far an event's clock and a deployment record's may disagree: a group first seen
    /// this long before a rollout's recorded start still counts as new in it.
    public var clockSkew: Duration = .seconds(60)
    /// A spike this soon after a rollout suggests rolling it back.
    public var rollbackWindow: Duration = .seconds(7200)
    /// New groups (and new cross-service patterns) raise insights only this long after the
    /// first error stored: before that every group is "new". A group new in a release is
    /// reported whenever it appears.
    public var newGroupWarmup: Duration = Self.defaultNewGroupWarmup
    public static let defaultNewGroupWarmup: Duration = .seconds(3600)
    /// Days of counts kept: per-minute counts past ``CountRetention/minuteDays`` are summed into
    /// hours, ten minutes of them per run, and hourly counts older than this are deleted.
    public var retentionDays = 30
    /// The recommendation rules (shipped, plus the user's file).
    public var rules: RuleSet
    /// Seed of k-means: the same data gives the same clusters.
    public var seed: UInt64 = 0x6661_756C_746C_696E

    public init(rules: RuleSet) {
        self.rules = rules
    }
}
