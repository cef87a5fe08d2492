import Foundation
import Postgres

/// The filters of `GET /v1/insights`, in one place: applied in SQL to a page read from the
/// database (``sqlCondition``) and in memory to the newest insights the API keeps
/// (``matches(_:)``). A test holds the two to the same answers.
public struct InsightFilter: Sendable, Equatable {
    public var kind: String?
    public var service: String?
    public var status: String?
    /// Insights last seen at or after this.
    public var since: Date?
    /// The key's service prefix: services that start with it, byte for byte.
    public var servicePrefix: String?

    public init(kind: String? = nil, service: String? = nil, status: String? = nil, since: Date? = nil, servicePrefix: String? = nil) {
        self.kind = kind
        self.service = service
        self.status = status
        self.since = since
        self.servicePrefix = servicePrefix
    }

    public func matches(_ entry: APIStore.InsightEntry) -> Bool {
        if let kind, entry.kind != kind { return false }
        if let status, entry.status != status { return false }
        if let service, entry.service != service { return false }
        if let since, entry.lastSeenAt < since { return false }
        if let servicePrefix, !(entry.service?.utf8.starts(with: servicePrefix.utf8) ?? false) { return false }
        return true
    }

    /// The same condition on `insights i`, over parameters $1 to $5 (``sqlParameters``).
    static let sqlCondition = """
        ($1::text IS NULL OR i.kind = $1::text) AND ($2::text IS NULL OR i.service = $2::text)
        AND ($3::text IS NULL OR i.status = $3::text) AND ($4::timestamptz IS NULL OR i.last_seen_at >= $4::timestamptz)
        AND ($5::text IS NULL OR starts_with(i.service, $5::text))
        """

    var sqlParameters: [PostgresValue] {
        [.optional(kind), .optional(service), .optional(status), .optional(since), .optional(servicePrefix)]
    }
}
