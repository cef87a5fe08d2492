import Analysis
import Domain

/// Which of a minute's alerting series make an insight (no I/O): every one is recorded as a
/// spike, but a group's spike inside its service's spike in the same minute is the same news,
/// so only the service's is reported. A level shift without a spike is reported as such.
enum SpikeNews {
    struct Alert {
        var key: String
        var service: String
        /// `nil` for a service's series.
        var fingerprint: String?
        var point: SpikeDetector.Point
    }

    struct Verdict: Equatable {
        /// The alert's position in the input.
        var alert: Int
        var kind: Insight.Kind
        /// Whether it makes an insight; otherwise it is only recorded.
        var reported: Bool
    }

    static func kind(of point: SpikeDetector.Point) -> Insight.Kind {
        point.isLevelShift && !point.isSpike ? .levelShift : .spike
    }

    /// The verdicts in the order of the series' keys (the order insights are made in).
    static func judge(_ alerts: [Alert]) -> [Verdict] {
        let alertingServices = Set(alerts.filter { $0.fingerprint == nil }.map(\.service))
        return alerts.indices.sorted { alerts[$0].key < alerts[$1].key }.map { i in
            Verdict(alert: i, kind: kind(of: alerts[i].point),
                    reported: alerts[i].fingerprint == nil || !alertingServices.contains(alerts[i].service))
        }
    }
}
