import Analysis
import Foundation

/// Which series are forecast to breach the threshold, decided from their recent counts (no
/// I/O): the busiest series, groups before services, each fitted with ``Forecaster``; a series
/// already over the threshold is left to the spike detector, and a service with a rising group
/// gets no warning of its own (the group's names the error).
enum Forecasts {
    /// A series and its errors in the last hour.
    struct Volume: Equatable {
        var key: String
        var service: String
        /// `nil` for a service's series.
        var fingerprint: String?
        var volume: Double
    }

    /// A chosen series with its counts per bucket over the forecast window (or since it began),
    /// oldest first.
    struct Candidate {
        var series: Volume
        var recent: [Double]
    }

    struct Finding: Equatable {
        var key: String
        var service: String
        var fingerprint: String?
        /// The mean of the last five buckets.
        var current: Double
        var breach: Forecaster.Breach
        /// Errors in the last hour, for the evidence.
        var lastHour: Int
    }

    /// The series worth a forecast, in the order they are judged: at most `limit` of those with
    /// errors in the last hour, groups before services (a rising group names its error), then
    /// the busiest.
    static func choose(_ series: [Volume], limit: Int) -> [Volume] {
        Array(series.filter { $0.volume > 0 }.sorted {
            ($0.fingerprint == nil) != ($1.fingerprint == nil) ? $0.fingerprint != nil
                : $0.volume != $1.volume ? $0.volume > $1.volume : $0.key < $1.key
        }.prefix(limit))
    }

    /// The chosen series (in ``choose(_:limit:)``'s order) forecast to reach `threshold` within
    /// `horizon` buckets; a service whose group was warned of is skipped.
    static func decide(_ candidates: [Candidate], threshold: Double, horizon: Int) -> [Finding] {
        var warned: Set<String> = []
        var findings: [Finding] = []
        for candidate in candidates where !candidate.recent.isEmpty {
            let series = candidate.series
            if series.fingerprint == nil && warned.contains(series.service) { continue }
            let recent = candidate.recent
            let current = recent.suffix(5).reduce(0, +) / Double(min(5, recent.count))
            guard current < threshold else { continue }  // already over: the spike detector speaks
            guard let breach = Forecaster(series: recent).breach(threshold: threshold, horizon: horizon) else { continue }
            warned.insert(series.service)
            findings.append(Finding(key: series.key, service: series.service, fingerprint: series.fingerprint,
                                    current: current, breach: breach, lastHour: Int(recent.suffix(60).reduce(0, +))))
        }
        return findings
    }
}
