/// What a key may do. `write` implies `read`; `admin` implies both.
public enum Scope: String, Sendable, CaseIterable, Comparable {
    case read, write, admin

    public static func < (a: Scope, b: Scope) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Who a request acts for: the scopes of its key and the services it may see.
struct Principal: Sendable {
    /// The key's id; `nil` for the bootstrap admin token.
    var keyID: Int64?
    var scopes: Set<Scope>
    /// Only services whose names start with this are visible; `nil`: every service.
    var servicePrefix: String?

    func has(_ scope: Scope) -> Bool {
        scopes.contains { $0 >= scope }
    }

    func sees(service: String?) -> Bool {
        guard let servicePrefix else { return true }
        guard let service else { return false }
        return Self.matches(service: service, prefix: servicePrefix)
    }

    /// Whether `service` starts with `prefix`, byte for byte, as PostgreSQL's `starts_with`
    /// compares in the queries (`String.hasPrefix` would also match canonically equivalent
    /// text, so the two checks could disagree). A prefix is no word: `team-a` also matches
    /// `team-ab`; end it with a delimiter (`team-a-`).
    static func matches(service: String, prefix: String) -> Bool {
        service.utf8.starts(with: prefix.utf8)
    }

    /// Throws 403 unless the key may see `service`.
    func check(service: String?) throws {
        guard sees(service: service) else {
            throw APIProblem.forbidden("this key is limited to services starting with \"\(servicePrefix ?? "")\"")
        }
    }
}

/// Compares two secrets in time that depends only on their lengths, not on where they differ.
func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    var difference = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) {
        difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return difference == 0
}
