import Domain
import Foundation
import Logging
import Postgres
import Storage
import Synchronization

/// Produces a dead letter's original message back to its source topic. The App implements it
/// with the Kafka producer.
public protocol DeadLetterReplayer: Sendable {
    func replay(topic: String, key: [UInt8]?, value: [UInt8], headers: [(String, [UInt8]?)]) async throws
}

/// The REST API's settings.
public struct APIConfiguration: Sendable {
    /// A bootstrap key with every scope (`FAULTLINE_ADMIN_TOKEN`); `nil`: only stored keys.
    public var adminToken: String?
    /// Larger request bodies are refused with 413.
    public var maxBodyBytes = 1 << 20
    /// How long the in-memory insights and services stay fresh.
    public var cacheTimeToLive: Duration = .seconds(5)
    /// Insights held in memory.
    public var cachedInsights = 2000
    /// The OpenAPI document served at `/openapi.yaml`.
    public var openAPIPath: String?
    /// Environment of a deployment that names none.
    public var defaultEnvironment = "production"
    /// How long `/readyz` waits for the database.
    public var readinessTimeout: Duration = .seconds(2)
    /// How long the analysis learns before each kind of finding, shown per service.
    public var learning = LearningWindows()

    public init(adminToken: String? = nil, openAPIPath: String? = nil) {
        self.adminToken = adminToken
        self.openAPIPath = openAPIPath
    }
}

/// How much history the analysis needs before each kind of finding (from the analysis
/// settings); `/v1/services` shows from when each applies to a service.
public struct LearningWindows: Sendable {
    /// A service's spikes and level shifts: its detector's warm-up.
    public var spikes: Duration = .seconds(30 * 60)
    /// New error groups: counted from the first error stored at all.
    public var newErrors: Duration = .seconds(3600)
    /// The daily pattern of a service's errors.
    public var dailyPattern: Duration = .seconds(86_400)

    public init() {}
}

/// An endpoint as the route table lists it (for documentation checks and tests).
public struct RouteDescription: Sendable, Hashable {
    public let method: String
    /// `/v1/groups/{fingerprint}`.
    public let path: String
    /// `nil`: no key needed.
    public let scope: Scope?
    /// Keys limited to a service prefix may not call it.
    public let allServices: Bool
}

/// What a handler gets: the request, its path parameters and who it acts for.
struct RequestContext: Sendable {
    let request: APIRequest
    let parameters: [String: String]
    let principal: Principal?

    var caller: Principal { principal ?? Principal(keyID: nil, scopes: [], servicePrefix: "\u{0}") }

    func parameter(_ name: String) -> String { parameters[name] ?? "" }

    /// A query parameter's first value; empty counts as absent.
    func query(_ name: String) -> String? {
        guard let value = request.query[name]?.first, !value.isEmpty else { return nil }
        return value
    }

    /// A query parameter's first value, even when empty. Typed parameters (times, numbers, enums)
    /// use it: an empty one is not a valid value, as the OpenAPI document says.
    func typedQuery(_ name: String) -> String? {
        request.query[name]?.first
    }

    func query(_ name: String, oneOf allowed: [String]) throws -> String? {
        guard let value = typedQuery(name) else { return nil }
        guard allowed.contains(value) else {
            throw APIProblem.badRequest("\(name) must be one of \(allowed.joined(separator: ", ")), not \"\(value)\"")
        }
        return value
    }

    func time(_ name: String) throws -> Date? {
        guard let value = typedQuery(name) else { return nil }
        guard let date = RFC3339.parse(value) else {
            throw APIProblem.badRequest("\(name) must be an RFC 3339 time such as 2026-11-22T04:50:32Z")
        }
        return date
    }

    /// `limit`: 50 by default, at most 500.
    func limit() throws -> Int {
        guard let text = typedQuery("limit") else { return 50 }
        guard let value = Int(text), (1...500).contains(value) else {
            throw APIProblem.badRequest("limit must be a whole number from 1 to 500")
        }
        return value
    }

    /// The decoded `cursor`; `tag` ties it to the sort it was made for.
    func cursor(tag: String = "") throws -> Cursor? {
        guard let text = query("cursor") else { return nil }
        guard let bytes = Base64URL.decode(text), let decoded = String(bytes: bytes, encoding: .utf8) else {
            throw APIProblem.badRequest("cursor is not valid")
        }
        var parts = decoded.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts.removeFirst() == tag else { throw APIProblem.badRequest("cursor is not valid for this list") }
        return Cursor(parts)
    }

    func service(_ name: String = "service", maxLength: Int = 200) throws -> String? {
        guard let value = query(name) else { return nil }
        guard value.unicodeScalars.count <= maxLength else {
            throw APIProblem.badRequest("\(name) is longer than \(maxLength) characters")
        }
        return value
    }

    func id(_ name: String = "id") throws -> Int64 {
        guard let id = Int64(parameter(name)), id > 0 else { throw APIProblem.notFound("no such \(name)") }
        return id
    }
}

/// Faultline's REST API, independent of the HTTP server: ``handle(_:)`` turns a request into a
/// response. Every database call goes through the pool (on its own threads).
///
/// ```swift
/// let api = FaultlineAPI(pool: pool, configuration: APIConfiguration(adminToken: token), logger: logger)
/// let response = await api.handle(APIRequest(method: "GET", target: "/v1/groups?limit=10",
///                                            headers: ["authorization": "Bearer flt_…"]))
/// ```
public final class FaultlineAPI: Sendable {
    let pool: PostgresPool
    let configuration: APIConfiguration
    let readiness: @Sendable () -> Bool
    let metrics: @Sendable () -> String
    let replayer: (any DeadLetterReplayer)?
    let logger: Logger
    let cache: HotCache
    let openAPIDocument: [UInt8]?
    private let router: Router

    /// - Parameters:
    ///   - readiness: `false` once shutdown has begun (or while a dependency is down); `/readyz`
    ///     then answers 503.
    ///   - metrics: Prometheus text of the process's metrics, served at `/metrics`.
    ///   - replayer: produces replayed dead letters; `nil` makes replay answer 503.
    ///   - webhookCheck: why a webhook URL cannot be delivered to from here (its host resolves
    ///     to a refused address, or not at all), or `nil`; a subscription it refuses is
    ///     answered 422. `nil`: no check.
    public init(
        pool: PostgresPool, configuration: APIConfiguration, readiness: @escaping @Sendable () -> Bool = { true },
        metrics: @escaping @Sendable () -> String = { "" }, replayer: (any DeadLetterReplayer)? = nil,
        webhookCheck: (@Sendable (String) async -> String?)? = nil, logger: Logger
    ) {
        self.pool = pool
        self.webhookCheck = webhookCheck
        self.configuration = configuration
        self.readiness = readiness
        self.metrics = metrics
        self.replayer = replayer
        self.logger = logger
        self.openAPIDocument = configuration.openAPIPath.flatMap { FileManager.default.contents(atPath: $0) }.map { Array($0) }
        if openAPIDocument == nil {
            logger.warning("no OpenAPI document found: /openapi.yaml answers 404 (set FAULTLINE_OPENAPI_DIR)",
                           metadata: ["looked_at": "\(configuration.openAPIPath ?? "(none)")"])
        }
        let cachedInsights = configuration.cachedInsights
        let seconds = { (duration: Duration) in Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }
        let learning = (spikes: seconds(configuration.learning.spikes), newErrors: seconds(configuration.learning.newErrors),
                        dailyPattern: seconds(configuration.learning.dailyPattern))
        self.cache = HotCache(timeToLive: configuration.cacheTimeToLive) { [pool] in
            try await pool.withConnection { connection in
                let insights = try APIStore.recentInsights(limit: cachedInsights, on: connection)
                return HotCache.Snapshot(insights: insights.entries, complete: insights.complete,
                                         services: try APIStore.services(learning: learning, on: connection), loadedAt: .now)
            }
        }
        self.router = Router(routes: Self.routeTable)
        self.keys = KeyDirectory(pool: pool, logger: logger)
    }

    let webhookCheck: (@Sendable (String) async -> String?)?

    /// The keys that are not revoked, in memory.
    let keys: KeyDirectory

    /// Answers to the read endpoints, shared between identical requests for a second.
    let sharedReads = SharedReads()

    /// `/readyz`'s database check, shared by the requests that come while it runs.
    let readinessProbe = SharedCheck(reuseFor: .seconds(1))

    /// Every endpoint, for documentation checks.
    public static var routes: [RouteDescription] {
        routeTable.map { RouteDescription(method: $0.method, path: $0.pattern, scope: $0.scope, allServices: $0.allServices) }
    }

    /// Drops the in-memory insights and services, so the next read sees the database (call it
    /// when the analysis job finishes a run).
    public func invalidateCache() async {
        await cache.invalidate()
        sharedReads.invalidate()
    }

    /// Answers one request. Never throws: every failure becomes a problem+json response.
    ///
    /// The response's ``APIResponse/route`` names the matched route's pattern (for metrics).
    public func handle(_ request: APIRequest) async -> APIResponse {
        let resolution = router.resolve(method: request.method, path: request.path)
        var response = await respond(request, resolution)
        if request.method == "GET" || request.method == "HEAD" {
            response = Self.conditional(response, ifNoneMatch: request.headers["if-none-match"])
        }
        if case .found(let route, _) = resolution { response.route = route.pattern }
        return response
    }

    /// The answer to a read that is in memory now, or `nil` when answering needs more: a
    /// database query, a key not yet known, a request that fails. It never waits, so the HTTP
    /// server calls it on its event loop and hands only the `nil`s to ``handle(_:)``, which
    /// would give the same answer.
    public func answerFromMemory(_ request: APIRequest) -> APIResponse? {
        guard request.method == "GET", request.body.isEmpty,
              case .found(let route, _) = router.resolve(method: "GET", path: request.path) else { return nil }
        if route.pattern == "/healthz" {
            var response = Self.conditional(Self.liveness, ifNoneMatch: request.headers["if-none-match"])
            response.route = route.pattern
            return response
        }
        guard route.scope == .read,
              let caller = try? authenticateFromMemory(request), caller.has(.read),
              !(route.allServices && caller.servicePrefix != nil),
              let shared = sharedReads.ready(SharedReads.Key(request, servicePrefix: caller.servicePrefix))
        else { return nil }
        var response = Self.conditional(shared, ifNoneMatch: request.headers["if-none-match"])
        response.route = route.pattern
        return response
    }

    /// A 200 answer to a GET carries an entity tag, a hash of its body, and is kept by a browser
    /// only to be asked again (`private, no-cache`, unless the route says otherwise); a request
    /// whose `If-None-Match` names the tag is answered 304 with no body. The dashboard's polls
    /// of unchanged lists then cost no transfer.
    static func conditional(_ response: APIResponse, ifNoneMatch: String?) -> APIResponse {
        let tagged = Self.tagged(response)
        guard let ifNoneMatch, let tag = tagged.header("etag"), Self.matches(ifNoneMatch, tag) else { return tagged }
        return APIResponse(status: 304, headers: tagged.headers.filter { $0.0.lowercased() != "content-type" })
    }

    /// The answer with its entity tag and caching rule; hashed once, where it is made: a shared
    /// read is tagged before it is shared, so the requests that reuse it within the second do
    /// not hash its body again.
    static func tagged(_ response: APIResponse) -> APIResponse {
        guard response.status == 200, response.header("etag") == nil else { return response }
        let digits = String(StableHash.fnv1a64(response.body), radix: 16)
        var tagged = response
        tagged.headers.append(("ETag", "\"" + String(repeating: "0", count: 16 - digits.count) + digits + "\""))
        if response.header("cache-control") == nil { tagged.headers.append(("Cache-Control", "private, no-cache")) }
        return tagged
    }

    /// Whether an `If-None-Match` list names `tag`: `*`, or a tag equal to it by the weak
    /// comparison RFC 9110 prescribes for this header (a `W/` prefix does not count).
    static func matches(_ ifNoneMatch: String, _ tag: String) -> Bool {
        ifNoneMatch.split(separator: ",").contains { candidate in
            var candidate = candidate.trimmingCharacters(in: .whitespaces)
            if candidate == "*" { return true }
            if candidate.hasPrefix("W/") { candidate.removeFirst(2) }
            return candidate == tag
        }
    }

    private func respond(_ request: APIRequest, _ resolution: Router.Outcome) async -> APIResponse {
        do {
            guard request.body.count <= configuration.maxBodyBytes else {
                throw APIProblem(413, "the request body is larger than \(configuration.maxBodyBytes) bytes")
            }
            switch resolution {
            case .notFound:
                throw APIProblem.notFound("no resource at \(request.path)")
            case .methodNotAllowed(let allowed):
                throw APIProblem(405, "\(request.method) is not allowed here", headers: [("Allow", allowed.joined(separator: ", "))])
            case .found(let route, let parameters):
                var principal: Principal?
                if let scope = route.scope {
                    let caller = try await authenticate(request)
                    guard caller.has(scope) else { throw APIProblem.forbidden("this key lacks the \(scope.rawValue) scope") }
                    if route.allServices && caller.servicePrefix != nil {
                        throw APIProblem.forbidden("a key limited to a service prefix cannot use this endpoint")
                    }
                    principal = caller
                }
                let context = RequestContext(request: request, parameters: parameters, principal: principal)
                if route.scope == .read && request.method == "GET" {
                    return await sharedReads.answer(SharedReads.Key(request, servicePrefix: principal?.servicePrefix)) {
                        Self.tagged(await self.run(route, context))
                    }
                }
                let response = await run(route, context)
                if request.method != "GET" && request.method != "HEAD" { sharedReads.invalidate() }
                return response
            }
        } catch {
            return failure(error, request)
        }
    }

    private func run(_ route: Route, _ context: RequestContext) async -> APIResponse {
        do {
            return try await route.handler(self, context)
        } catch {
            return failure(error, context.request)
        }
    }

    /// The problem+json answer to a request that failed with `error`.
    private func failure(_ error: Error, _ request: APIRequest) -> APIResponse {
        switch error {
        case let problem as APIProblem:
            return problem.response(instance: request.path)
        case let invalid as InvalidQuery:
            return APIProblem.badRequest(invalid.description).response(instance: request.path)
        case let error as PostgresError:
            if error.code == .poolExhausted {
                logger.warning("database busy", metadata: ["error": "\(error)", "path": "\(request.path)"])
                return APIProblem(503, "the database is busy; try again shortly", headers: [("Retry-After", "1")])
                    .response(instance: request.path)
            }
            if error.isConnectionError || error.code == .poolClosed {
                logger.warning("database unavailable", metadata: ["error": "\(error)", "path": "\(request.path)"])
                return APIProblem(503, "the database is unavailable; try again shortly", headers: [("Retry-After", "5")])
                    .response(instance: request.path)
            }
            // A NUL byte in a parameter, a value out of a type's range, a failed CHECK: the
            // request's values, not the server, are at fault.
            if error.code == .invalidParameter {
                return APIProblem.badRequest("a value holds a NUL byte").response(instance: request.path)
            }
            if let state = error.sqlState, state.hasPrefix("22") || state == PostgresError.SQLState.checkViolation {
                return APIProblem.badRequest("a value is out of range or not valid").response(instance: request.path)
            }
            logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.path)"])
            return APIProblem(500, "the request could not be completed").response(instance: request.path)
        default:
            logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.path)"])
            return APIProblem(500, "the request could not be completed").response(instance: request.path)
        }
    }

    private func authenticate(_ request: APIRequest) async throws -> Principal {
        let token = try bearerToken(request)
        if let admin = adminPrincipal(token) { return admin }
        guard let record = try await keys.record(for: token) else {
            throw APIProblem(401, "the API key is not valid or has been revoked",
                             headers: [("WWW-Authenticate", "Bearer realm=\"faultline\", error=\"invalid_token\"")])
        }
        return Self.principal(record)
    }

    /// The caller when the key directory in memory is fresh and knows the key; `nil` (or a
    /// throw) when only ``authenticate(_:)`` can tell.
    private func authenticateFromMemory(_ request: APIRequest) throws -> Principal? {
        let token = try bearerToken(request)
        if let admin = adminPrincipal(token) { return admin }
        return keys.freshRecord(for: token).map(Self.principal)
    }

    private func bearerToken(_ request: APIRequest) throws -> String {
        let challenge = [("WWW-Authenticate", "Bearer realm=\"faultline\"")]
        guard let header = request.headers["authorization"] else {
            throw APIProblem(401, "an API key is required: Authorization: Bearer <key>", headers: challenge)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIProblem(401, "the Authorization header must be Bearer <key>", headers: challenge)
        }
        return Self.trimmingBlanks(parts[1])
    }

    /// `text` without the spaces and tabs around it (and, in the rare text that is not ASCII,
    /// without any Unicode space either, as `.whitespaces` trims).
    static func trimmingBlanks(_ text: Substring) -> String {
        let bytes = text.utf8
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return text.trimmingCharacters(in: .whitespaces) }
        guard let first = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
              let last = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })
        else { return "" }
        return String(text[first...last])
    }

    private func adminPrincipal(_ token: String) -> Principal? {
        guard let admin = configuration.adminToken, !admin.isEmpty, constantTimeEquals(token, admin) else { return nil }
        return Principal(keyID: nil, scopes: [.admin], servicePrefix: nil)
    }

    private static func principal(_ record: APIKeyRecord) -> Principal {
        Principal(keyID: record.id, scopes: Set(record.scopes.compactMap(Scope.init(rawValue:))),
                  servicePrefix: record.servicePrefix)
    }

    // MARK: Helpers for handlers

    func db<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await pool.withConnection(body)
    }

    /// `{"items": [...], "next_cursor": ...}` from a page of JSON texts.
    func pageResponse(_ page: JSONPage, tag: String = "") -> APIResponse {
        var text = "{\"items\":[" + page.items.joined(separator: ",") + "],\"next_cursor\":"
        if let next = page.next {
            text += JSONValue.string(Base64URL.encode(Array(([tag] + next).joined(separator: "\u{1F}").utf8))).text
        } else {
            text += "null"
        }
        return .json(200, text + "}")
    }

    /// The body as a JSON object.
    func jsonBody(_ request: APIRequest) throws -> JSONValue {
        guard !request.body.isEmpty else { throw APIProblem.badRequest("a JSON object body is required") }
        guard let value = try? JSONParser.parse(request.body, maxDepth: 16), value.objectValue != nil else {
            throw APIProblem.badRequest("the body is not a JSON object")
        }
        return value
    }
}

/// One asynchronous check shared by everyone who asks while it runs, its answer reused for a
/// while after.
final class SharedCheck: Sendable {
    private struct State {
        var task: Task<Bool, Never>?
        var finishedAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let reuseFor: Duration

    init(reuseFor: Duration) { self.reuseFor = reuseFor }

    /// The check in flight, or the last one if it finished less than `reuseFor` ago, or a new
    /// one running `body`.
    func current(_ body: @escaping @Sendable () async -> Bool) -> Task<Bool, Never> {
        state.withLock { state in
            if let task = state.task {
                guard let finishedAt = state.finishedAt, ContinuousClock.now - finishedAt >= reuseFor else { return task }
            }
            let task = Task { [weak self] in
                let answer = await body()
                self?.state.withLock { $0.finishedAt = .now }
                return answer
            }
            state.task = task
            state.finishedAt = nil
            return task
        }
    }
}
