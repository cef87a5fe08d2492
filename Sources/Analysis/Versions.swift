import Foundation

/// A version string as SemVer 2.0 defines it: `1.8.3`, `v1.8.3`, `1.8.3-rc.1+build.7`.
///
/// Ordering follows SemVer precedence: numeric major, minor, patch; a pre-release sorts before
/// its release; pre-release identifiers compare left to right, numeric ones numerically and below
/// alphanumeric ones, and a shorter list sorts first when all else is equal. Build metadata does
/// not take part in precedence, so `==` ignores it too (Comparable needs `==` to agree with `<`).
public struct SemanticVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Identifier: Sendable, Hashable, Comparable, CustomStringConvertible {
        case numeric(UInt64)
        case alphanumeric(String)

        public static func < (a: Identifier, b: Identifier) -> Bool {
            switch (a, b) {
            case let (.numeric(x), .numeric(y)): return x < y
            case (.numeric, .alphanumeric): return true
            case (.alphanumeric, .numeric): return false
            // ASCII order, as the specification says: compare bytes, not Unicode collation.
            case let (.alphanumeric(x), .alphanumeric(y)): return x.utf8.lexicographicallyPrecedes(y.utf8)
            }
        }

        public var description: String {
            switch self {
            case .numeric(let value): return String(value)
            case .alphanumeric(let text): return text
            }
        }
    }

    public var major: UInt64
    public var minor: UInt64
    public var patch: UInt64
    public var preRelease: [Identifier]
    public var build: [String]

    public init(major: UInt64, minor: UInt64, patch: UInt64, preRelease: [Identifier] = [], build: [String] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.preRelease = preRelease
        self.build = build
    }

    /// Parses a SemVer string with an optional leading `v`; nil for anything else (a commit sha,
    /// a date-stamped build like `2024-06-01-abc`, `1.8`, leading zeros like `01.2.3`).
    public init?(_ text: String) {
        var body = Substring(text)
        if body.first == "v" || body.first == "V" { body = body.dropFirst() }
        var build: [String] = []
        if let plus = body.firstIndex(of: "+") {
            let parts = body[body.index(after: plus)...].split(separator: ".", omittingEmptySubsequences: false)
            guard parts.allSatisfy({ !$0.isEmpty && Self.isIdentifierText($0) }) else { return nil }
            build = parts.map(String.init)
            body = body[..<plus]
        }
        var preRelease: [Identifier] = []
        if let dash = body.firstIndex(of: "-") {
            let parts = body[body.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false)
            for part in parts {
                guard !part.isEmpty, Self.isIdentifierText(part) else { return nil }
                if part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
                    guard part.count == 1 || part.first != "0", let value = UInt64(part) else { return nil }
                    preRelease.append(.numeric(value))
                } else {
                    preRelease.append(.alphanumeric(String(part)))
                }
            }
            body = body[..<dash]
        }
        let core = body.split(separator: ".", omittingEmptySubsequences: false)
        guard core.count == 3 else { return nil }
        var numbers: [UInt64] = []
        for part in core {
            guard !part.isEmpty, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                part.count == 1 || part.first != "0", let value = UInt64(part)
            else { return nil }
            numbers.append(value)
        }
        self.init(major: numbers[0], minor: numbers[1], patch: numbers[2], preRelease: preRelease, build: build)
    }

    private static func isIdentifierText(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 }
    }

    public static func == (a: SemanticVersion, b: SemanticVersion) -> Bool {
        a.major == b.major && a.minor == b.minor && a.patch == b.patch && a.preRelease == b.preRelease
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(patch)
        hasher.combine(preRelease)
    }

    public static func < (a: SemanticVersion, b: SemanticVersion) -> Bool {
        if a.major != b.major { return a.major < b.major }
        if a.minor != b.minor { return a.minor < b.minor }
        if a.patch != b.patch { return a.patch < b.patch }
        switch (a.preRelease.isEmpty, b.preRelease.isEmpty) {
        case (true, true), (true, false): return false
        case (false, true): return true
        case (false, false): return a.preRelease.lexicographicallyPrecedes(b.preRelease)
        }
    }

    public var description: String {
        var text = "\(major).\(minor).\(patch)"
        if !preRelease.isEmpty { text += "-" + preRelease.map(\.description).joined(separator: ".") }
        if !build.isEmpty { text += "+" + build.joined(separator: ".") }
        return text
    }
}

/// Orders the version strings services report, which are not always SemVer.
public enum VersionOrder {
    /// Semantic precedence when both parse as SemVer; else the order in which they were deployed
    /// when both deployment times are known; else nil (no order can be claimed). Identical strings
    /// are always the same version.
    public static func compare(_ a: String, _ b: String, deployedAt: (String) -> Date?) -> ComparisonResult? {
        if a == b { return .orderedSame }
        if let x = SemanticVersion(a), let y = SemanticVersion(b) {
            return x < y ? .orderedAscending : y < x ? .orderedDescending : .orderedSame
        }
        if let x = deployedAt(a), let y = deployedAt(b) {
            return x < y ? .orderedAscending : y < x ? .orderedDescending : .orderedSame
        }
        return nil
    }
}

/// Whether an event of a resolved group reopens it.
public enum Regression {
    /// Events up to this long after the resolution are taken as stragglers (in flight, retried,
    /// delayed in the pipeline), not as a return of the error.
    public static let defaultGrace: TimeInterval = 300

    /// A group resolved in version R regresses when an event arrives from a version later than R;
    /// events from R itself or older versions (still running during a rollout, replayed) do not
    /// reopen it. Without versions that can be ordered, an event later than `resolvedAt + grace`
    /// counts.
    public static func isRegression(resolvedInVersion: String?, resolvedAt: Date, eventVersion: String?, eventTime: Date,
                                    grace: TimeInterval = defaultGrace, deployedAt: (String) -> Date?) -> Bool {
        if let resolved = resolvedInVersion, let version = eventVersion,
            let order = VersionOrder.compare(version, resolved, deployedAt: deployedAt)
        {
            return order == .orderedDescending
        }
        return eventTime > resolvedAt.addingTimeInterval(grace)
    }
}

/// Whether a group appeared with a deployment.
public enum NewInVersion {
    public static let defaultWindow: TimeInterval = 30 * 60
    /// Event clocks and the deployment record's clock may disagree by this much, by default.
    public static let defaultClockSkew: TimeInterval = 60

    /// A group first seen within `window` after the rollout of version X, where X is the version
    /// it was first seen in, is new in X. Returns X and the version the service ran before X
    /// (nil when X is the first known deployment). With `firstVersion` unknown, the rollout running
    /// when the group appeared stands in for it.
    ///
    /// - Parameters:
    ///   - deployments: the rollouts of the group's service and environment, any order.
    ///   - clockSkew: a group first seen up to this long before a rollout's recorded start
    ///     still counts as after it (the event's clock and the deployment's may differ).
    public static func check(groupFirstSeen: Date, firstVersion: String?, deployments: [(version: String, startedAt: Date)],
                             window: TimeInterval = defaultWindow,
                             clockSkew: TimeInterval = defaultClockSkew) -> (version: String, previousVersion: String?)? {
        let sorted = deployments.enumerated().sorted {
            $0.element.startedAt != $1.element.startedAt ? $0.element.startedAt < $1.element.startedAt : $0.offset < $1.offset
        }.map(\.element)
        let latest = groupFirstSeen.addingTimeInterval(clockSkew)
        guard var index = sorted.lastIndex(where: { $0.startedAt <= latest && (firstVersion == nil || $0.version == firstVersion) })
        else { return nil }
        // A redeploy (restart) of the running version is not a new version: the version arrived
        // with the first rollout of the uninterrupted run.
        while index > 0 && sorted[index - 1].version == sorted[index].version { index -= 1 }
        let rollout = sorted[index]
        guard groupFirstSeen.timeIntervalSince(rollout.startedAt) <= window else { return nil }
        let previous = sorted[..<index].last { $0.version != rollout.version }?.version
        return (rollout.version, previous)
    }
}
