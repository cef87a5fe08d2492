import Foundation
import Storage

/// Which clusters are news (no I/O): a pattern that newly appeared in two or more services in
/// the last hour is reported, once; one that has always been there, the background noise, is not.
enum ClusterNews {
    struct Finding: Equatable {
        /// The cluster's position in the clustering result.
        var index: Int
        /// Its members first seen and last seen in the last hour (and after the baseline).
        var active: [GroupRecord]
        /// Their services, sorted.
        var services: [String]
        /// Their events.
        var count: Int
        /// The busiest of them.
        var main: GroupRecord?
    }

    /// - Parameters:
    ///   - clusters: each cluster's position and member fingerprints.
    ///   - groups: the clustered groups by fingerprint.
    ///   - newAfter: groups first seen before this were there before the baseline: not new.
    static func decide(_ clusters: [(index: Int, members: [String])], groups: [String: GroupRecord], now: Date,
                       newAfter: Date) -> [Finding] {
        let recent = now.addingTimeInterval(-3600)
        return clusters.compactMap { cluster in
            let active = cluster.members.compactMap { groups[$0] }
                .filter { $0.lastSeen >= recent && $0.firstSeen >= max(recent, newAfter) }
            let services = Set(active.map(\.service)).sorted()
            guard services.count >= 2 else { return nil }
            return Finding(index: cluster.index, active: active, services: services, count: active.reduce(0) { $0 + $1.eventCount },
                           main: active.max { $0.eventCount < $1.eventCount })
        }
    }
}
