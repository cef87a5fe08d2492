import Foundation

/// A rollout of one version of a service to an environment.
public struct Deployment: Sendable, Equatable {
    public var id: Int64?
    public var service: String
    public var environment: String
    public var version: String
    public var commit: String?
    public var region: String?
    public var startedAt: Date

    public init(id: Int64? = nil, service: String, environment: String, version: String, commit: String? = nil,
                region: String? = nil, startedAt: Date) {
        self.id = id
        self.service = service
        self.environment = environment
        self.version = version
        self.commit = commit
        self.region = region
        self.startedAt = startedAt
    }

    /// The earliest rollout time a deployment record may give: 2000-01-01T00:00:00Z.
    public static let earliestStart = Date(timeIntervalSince1970: 946_684_800)

    /// Decodes a deployment record: `{"service","environment","version","commit","region","started_at"}`.
    /// - Parameter maxFieldBytes: the longest a field may be, in UTF-8 bytes (the REST API, which
    ///   limits fields in characters, allows more).
    public static func decode(
        _ bytes: [UInt8], defaultEnvironment: String = "production", maxFieldBytes: Int = DecodeLimits().maxFieldLength
    ) throws(DecodeError) -> Deployment {
        guard bytes.count <= 64 * 1024 else { throw DecodeError("deployment record larger than 64 KiB") }
        guard let object = try? JSONParser.parse(bytes, maxDepth: 8) else { throw DecodeError("not JSON") }
        do {
            let f = try Fields(object, prefix: "", what: "deployment")
            var limits = DecodeLimits()
            limits.maxFieldLength = maxFieldBytes
            let context = Context(origin: MessageOrigin(topic: "", partition: 0, offset: 0), now: Date(), limits: limits, index: 0)
            guard let service = try context.field(try f.required("service"), "service", 0),
                let version = try context.field(try f.required("version"), "version", 0)
            else { throw DecodeError("missing required field service or version") }
            let startedText = try f.required("started_at")
            guard let startedAt = RFC3339.parse(startedText) else {
                throw DecodeError("started_at \(quoted(startedText)) is not an RFC 3339 time")
            }
            // The database and the seconds-since-rollout column hold this range, and nothing
            // outside it is a rollout: a year 0 or a far future time is a broken clock.
            guard startedAt >= earliestStart, startedAt.timeIntervalSinceNow <= Double(limits.maxFuture.components.seconds) else {
                throw DecodeError("started_at \(quoted(startedText)) is before 2000 or more than a day in the future")
            }
            return Deployment(
                service: service,
                environment: try context.field(try f.string("environment"), "environment", 0) ?? defaultEnvironment,
                version: version, commit: try context.field(try f.string("commit"), "commit", 0),
                region: try context.field(try f.string("region"), "region", 0), startedAt: startedAt)
        } catch let error as DecodeError {
            throw error
        } catch {
            throw DecodeError("\(error)")
        }
    }
}

/// The deployment an event happened under.
public struct DeploymentContext: Sendable, Equatable {
    public var deploymentID: Int64?
    public var version: String
    public var commit: String?
    public var region: String?
    public var startedAt: Date

    public init(deploymentID: Int64? = nil, version: String, commit: String? = nil, region: String? = nil, startedAt: Date) {
        self.deploymentID = deploymentID
        self.version = version
        self.commit = commit
        self.region = region
        self.startedAt = startedAt
    }

    /// Seconds from the rollout to `time` (never negative).
    public func secondsSinceRollout(at time: Date) -> Int {
        max(0, Int(saturating: time.timeIntervalSince(startedAt)))
    }
}

/// An event ready to store: decoded, fingerprinted, enriched, with where it came from.
public struct EnrichedEvent: Sendable {
    public var event: ErrorEvent
    public var fingerprint: String
    public var template: String
    /// The normalised top in-app frames the fingerprint holds (`a|b|c`).
    public var frames: String
    public var deployment: DeploymentContext?
    public var origin: MessageOrigin

    public init(event: ErrorEvent, fingerprint: String, template: String, frames: String = "", deployment: DeploymentContext?,
                origin: MessageOrigin) {
        self.event = event
        self.fingerprint = fingerprint
        self.template = template
        self.frames = frames
        self.deployment = deployment
        self.origin = origin
    }

    /// The version the event ran: its own, else its deployment's.
    public var version: String? { event.version ?? deployment?.version }
    /// The region: the event's own, else its deployment's.
    public var region: String? { event.region ?? deployment?.region }
}

/// A message that could not be ingested, kept whole with the reason.
public struct DeadLetter: Sendable {
    public var origin: MessageOrigin
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [(name: String, value: [UInt8]?)]
    public var reason: String

    /// - Parameter reason: kept to its first 1,000 bytes, with NUL (which neither PostgreSQL
    ///   text nor a log line should carry) replaced; it may quote the input.
    public init(origin: MessageOrigin, key: [UInt8]?, value: [UInt8], headers: [(name: String, value: [UInt8]?)], reason: String) {
        self.origin = origin
        self.key = key
        self.value = value
        self.headers = headers
        let reason = reason.replacingNUL
        self.reason = reason.utf8.count > 1000 ? reason.prefix(utf8Bytes: 1000) + "…" : reason
    }
}
