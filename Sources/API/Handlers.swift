import Domain
import Foundation
import Postgres
import Storage
import Synchronization

extension FaultlineAPI {
    /// `/healthz`'s answer: the process is alive. Given from memory on the event loop too, so a
    /// liveness probe is answered at once however busy the task pool is (ingest decoding a batch
    /// on every core).
    static let liveness = APIResponse.json(200, "{\"status\":\"ok\"}")

    /// Every route. openapi/openapi.yaml documents each (a test compares them).
    static let routeTable: [Route] = [
        Route("GET", "/healthz", nil) { _, _ in liveness },
        Route("GET", "/readyz", nil) { api, _ in await api.ready() },
        Route("GET", "/metrics", nil) { api, _ in
            .text(200, api.metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        },
        Route("GET", "/openapi.yaml", nil) { api, _ in
            guard let document = api.openAPIDocument else { throw APIProblem.notFound("the OpenAPI document is not installed") }
            return APIResponse(status: 200, headers: [("Content-Type", "application/yaml")], body: document)
        },
    ] + Dashboard.files.map { file in
        // no-cache: a browser asks again each time, so an upgrade's page and script arrive
        // together; the tag (hashed once, here) makes asking again cheap.
        let answer = FaultlineAPI.tagged(
            APIResponse(status: 200, headers: [("Content-Type", file.contentType), ("Cache-Control", "no-cache")], body: file.body))
        return Route("GET", file.path, nil) { _, _ in answer }
    } + [

        Route("GET", "/v1/insights", .read) { api, c in try await api.listInsights(c) },
        Route("GET", "/v1/insights/{id}", .read) { api, c in try await api.getInsight(c) },
        Route("POST", "/v1/insights/{id}/acknowledge", .write) { api, c in try await api.acknowledgeInsight(c) },
        Route("GET", "/v1/recommendations", .read) { api, c in
            let (service, cursor, limit) = (try c.service(), try c.cursor(), try c.limit())
            let prefix = c.caller.servicePrefix
            return api.pageResponse(try await api.db {
                try APIStore.recommendations(service: service, servicePrefix: prefix, after: cursor, limit: limit, on: $0)
            })
        },

        Route("GET", "/v1/groups", .read) { api, c in try await api.listGroups(c) },
        Route("GET", "/v1/groups/{fingerprint}", .read) { api, c in .json(200, try await api.visibleGroup(c).json) },
        Route("GET", "/v1/groups/{fingerprint}/events", .read) { api, c in
            let fingerprint = try await api.visibleGroup(c).fingerprint
            let (cursor, limit) = (try c.cursor(), try c.limit())
            return api.pageResponse(try await api.db { try APIStore.events(of: fingerprint, after: cursor, limit: limit, on: $0) })
        },
        Route("GET", "/v1/groups/{fingerprint}/series", .read) { api, c in
            let group = try await api.visibleGroup(c)
            return try await api.series(c, service: nil, fingerprint: group.fingerprint)
        },
        Route("POST", "/v1/groups/{fingerprint}/resolve", .write) { api, c in try await api.setGroupStatus(c, "resolved") },
        Route("POST", "/v1/groups/{fingerprint}/ignore", .write) { api, c in try await api.setGroupStatus(c, "ignored") },
        Route("POST", "/v1/groups/{fingerprint}/reopen", .write) { api, c in try await api.setGroupStatus(c, "open") },

        Route("GET", "/v1/clusters", .read) { api, c in
            let (cursor, limit, prefix) = (try c.cursor(), try c.limit(), c.caller.servicePrefix)
            return api.pageResponse(try await api.db { try APIStore.clusters(servicePrefix: prefix, after: cursor, limit: limit, on: $0) })
        },
        Route("GET", "/v1/spikes", .read) { api, c in
            let (service, cursor, limit, prefix) = (try c.service(), try c.cursor(), try c.limit(), c.caller.servicePrefix)
            return api.pageResponse(try await api.db {
                try APIStore.spikes(service: service, servicePrefix: prefix, after: cursor, limit: limit, on: $0)
            })
        },
        Route("GET", "/v1/predictions", .read) { api, c in
            let (service, cursor, limit, prefix) = (try c.service(), try c.cursor(), try c.limit(), c.caller.servicePrefix)
            return api.pageResponse(try await api.db {
                try APIStore.predictions(service: service, servicePrefix: prefix, after: cursor, limit: limit, on: $0)
            })
        },
        Route("GET", "/v1/services", .read) { api, c in try await api.listServices(c) },
        Route("GET", "/v1/services/{service}/series", .read) { api, c in
            let service = c.parameter("service")
            guard service.unicodeScalars.count <= 200 else { throw APIProblem.badRequest("service is longer than 200 characters") }
            try c.caller.check(service: service)
            return try await api.series(c, service: service, fingerprint: nil)
        },

        Route("GET", "/v1/deployments", .read) { api, c in
            let (service, environment) = (try c.service(), try c.service("environment", maxLength: 100))
            let (cursor, limit, prefix) = (try c.cursor(), try c.limit(), c.caller.servicePrefix)
            return api.pageResponse(try await api.db {
                try APIStore.deployments(service: service, environment: environment, servicePrefix: prefix, after: cursor,
                                         limit: limit, on: $0)
            })
        },
        Route("POST", "/v1/deployments", .write) { api, c in try await api.recordDeployment(c) },

        Route("GET", "/v1/dead-letters", .read, allServices: true) { api, c in try await api.listDeadLetters(c) },
        Route("POST", "/v1/dead-letters/{id}/replay", .write, allServices: true) { api, c in try await api.replayDeadLetter(c) },

        Route("GET", "/v1/webhooks", .admin, allServices: true) { api, c in
            let (cursor, limit) = (try c.cursor(), try c.limit())
            return api.pageResponse(try await api.db { try WebhookStore.list(after: cursor, limit: limit, on: $0) })
        },
        Route("POST", "/v1/webhooks", .admin, allServices: true) { api, c in
            let input = try WebhookValidation.input(try api.jsonBody(c.request), creating: true)
            try await api.checkDeliverable(input.url)
            return .json(201, try await api.db { try WebhookStore.create(input, on: $0) })
        },
        Route("GET", "/v1/webhooks/{id}", .admin, allServices: true) { api, c in
            let id = try c.id()
            guard let json = try await api.db({ try WebhookStore.get(id: id, on: $0) }) else { throw APIProblem.notFound("no webhook \(id)") }
            return .json(200, json)
        },
        Route("PUT", "/v1/webhooks/{id}", .admin, allServices: true) { api, c in
            let id = try c.id()
            let input = try WebhookValidation.input(try api.jsonBody(c.request), creating: false)
            try await api.checkDeliverable(input.url)
            guard let json = try await api.db({ try WebhookStore.update(id: id, input, on: $0) }) else {
                throw APIProblem.notFound("no webhook \(id)")
            }
            return .json(200, json)
        },
        Route("GET", "/v1/webhooks/{id}/deliveries", .admin, allServices: true) { api, c in
            let (id, cursor, limit) = (try c.id(), try c.cursor(), try c.limit())
            guard let page = try await api.db({ connection -> JSONPage? in
                guard try AlertStore.webhookExists(id: id, on: connection) else { return nil }
                return try AlertStore.deliveries(webhookID: id, after: cursor, limit: limit, on: connection)
            }) else { throw APIProblem.notFound("no webhook \(id)") }
            return api.pageResponse(page)
        },
        Route("POST", "/v1/webhooks/{id}/deliveries/{delivery}/retry", .admin, allServices: true) { api, c in
            let id = try c.id()
            guard let delivery = UUID(uuidString: c.parameter("delivery")) else {
                throw APIProblem.badRequest("delivery must be a delivery_id (a UUID) from the delivery log")
            }
            let (outcome, json) = try await api.db { connection in
                let outcome = try AlertStore.retry(webhookID: id, deliveryID: delivery, on: connection)
                return (outcome, try AlertStore.delivery(webhookID: id, deliveryID: delivery, on: connection))
            }
            switch outcome {
            case .notFound: throw APIProblem.notFound("no delivery \(delivery.uuidString.lowercased()) of webhook \(id)")
            case .notFailed(let status):
                throw APIProblem(409, "delivery \(delivery.uuidString.lowercased()) is \(status); only a failed delivery is retried")
            case .retried: return .json(202, json ?? "{}")
            }
        },
        Route("DELETE", "/v1/webhooks/{id}", .admin, allServices: true) { api, c in
            let id = try c.id()
            guard try await api.db({ try WebhookStore.delete(id: id, on: $0) }) else { throw APIProblem.notFound("no webhook \(id)") }
            return APIResponse(status: 204)
        },

        Route("GET", "/v1/api-keys", .admin, allServices: true) { api, c in
            let (cursor, limit) = (try c.cursor(), try c.limit())
            return api.pageResponse(try await api.db { try APIKeyStore.list(after: cursor, limit: limit, on: $0) })
        },
        Route("POST", "/v1/api-keys", .admin, allServices: true) { api, c in try await api.createKey(c) },
        Route("DELETE", "/v1/api-keys/{id}", .admin, allServices: true) { api, c in
            let id = try c.id()
            guard let json = try await api.db({ try APIKeyStore.revoke(id: id, on: $0) }) else { throw APIProblem.notFound("no API key \(id)") }
            api.keys.invalidate()
            return .json(200, json)
        },
    ]

    // MARK: Health

    func ready() async -> APIResponse {
        guard readiness() else { return APIProblem(503, "shutting down or not ready").response(instance: "/readyz") }
        guard await databaseAnswers(within: configuration.readinessTimeout) else {
            return APIProblem(503, "the database is unreachable").response(instance: "/readyz")
        }
        return .json(200, "{\"status\":\"ready\"}")
    }

    /// Whether `SELECT 1` succeeds in time. One check at a time: requests that come while one
    /// runs wait for its answer (each at most `timeout`), and an answer serves for a second, so
    /// a flood of probes costs at most one query a second. A pool call cannot be cancelled, so
    /// a request answers at its deadline and the check finishes on its own.
    private func databaseAnswers(within timeout: Duration) async -> Bool {
        let pool = self.pool
        let check = readinessProbe.current {
            (try? await pool.withConnection { connection in _ = try connection.query("SELECT 1"); return true }) ?? false
        }
        final class Once: Sendable {
            let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)
            func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
        }
        let once = Once()
        return await withCheckedContinuation { continuation in
            once.continuation.withLock { $0 = continuation }
            Task { once.resume(await check.value) }
            Task {
                try? await Task.sleep(for: timeout)
                once.resume(false)
            }
        }
    }

    // MARK: Insights

    static let insightKinds = Insight.Kind.allCases.map(\.rawValue)

    func listInsights(_ c: RequestContext) async throws -> APIResponse {
        let kind = try c.query("kind", oneOf: Self.insightKinds)
        let status = try c.query("status", oneOf: ["open", "acknowledged"])
        let (service, since, cursor, limit) = (try c.service(), try c.time("since"), try c.cursor(), try c.limit())
        let filter = InsightFilter(kind: kind, service: service, status: status, since: since, servicePrefix: c.caller.servicePrefix)
        // The newest insights come from memory; a page beyond them from the database.
        let snapshot = try await cache.current()
        var start = 0
        var found = cursor == nil
        if let cursor, let index = snapshot.insights.firstIndex(where: { $0.key == cursor.parts }) {
            start = index + 1
            found = true
        }
        if found {
            var items: [APIStore.InsightEntry] = []
            var index = start
            while index < snapshot.insights.count && items.count <= limit {
                let entry = snapshot.insights[index]
                index += 1
                if filter.matches(entry) { items.append(entry) }
            }
            if items.count > limit || snapshot.complete {
                let kept = Array(items.prefix(limit))
                return pageResponse(JSONPage(items: kept.map(\.json), next: items.count > limit ? kept.last?.key : nil))
            }
        }
        return pageResponse(try await db {
            try APIStore.insights(filter, after: cursor, limit: limit, on: $0)
        })
    }

    func visibleInsight(_ c: RequestContext) async throws -> (id: Int64, json: String) {
        let id = try c.id()
        guard let found = try await db({ try APIStore.insight(id: id, on: $0) }) else { throw APIProblem.notFound("no insight \(id)") }
        try c.caller.check(service: found.service)
        return (id, found.json)
    }

    func getInsight(_ c: RequestContext) async throws -> APIResponse {
        .json(200, try await visibleInsight(c).json)
    }

    func acknowledgeInsight(_ c: RequestContext) async throws -> APIResponse {
        let id = try await visibleInsight(c).id
        let json = try await db { connection in
            try APIStore.acknowledgeInsight(id: id, on: connection)
            return try APIStore.insight(id: id, on: connection)?.json ?? "null"
        }
        await cache.invalidate()
        return .json(200, json)
    }

    // MARK: Groups

    func listGroups(_ c: RequestContext) async throws -> APIResponse {
        let sort = try c.query("sort", oneOf: APIStore.GroupSort.allCases.map(\.rawValue)).flatMap(APIStore.GroupSort.init) ?? .lastSeen
        let order = try c.query("order", oneOf: ["asc", "desc"]) ?? "desc"
        let status = try c.query("status", oneOf: ["open", "resolved", "ignored"])
        let (service, errorType, since) = (try c.service(), try c.service("error_type"), try c.time("since"))
        let text = c.query("q")
        guard (text?.unicodeScalars.count ?? 0) <= 500 else { throw APIProblem.badRequest("q is longer than 500 characters") }
        let tag = "groups:\(sort.rawValue):\(order)"
        let (cursor, limit, prefix) = (try c.cursor(tag: tag), try c.limit(), c.caller.servicePrefix)
        return pageResponse(try await db {
            try APIStore.groups(service: service, status: status, errorType: errorType, query: text, since: since, servicePrefix: prefix,
                                sort: sort, ascending: order == "asc", after: cursor, limit: limit, on: $0)
        }, tag: tag)
    }

    /// The group of the path, 404 when unknown and 403 outside the key's services.
    func visibleGroup(_ c: RequestContext) async throws -> (fingerprint: String, json: String) {
        let fingerprint = c.parameter("fingerprint")
        guard fingerprint.unicodeScalars.count <= 200, let found = try await db({ try APIStore.group(fingerprint, on: $0) }) else {
            throw APIProblem.notFound("no group \(fingerprint)")
        }
        try c.caller.check(service: found.service)
        return (fingerprint, found.json)
    }

    func setGroupStatus(_ c: RequestContext, _ status: String) async throws -> APIResponse {
        let fingerprint = try await visibleGroup(c).fingerprint
        let json = try await db { connection in
            try AnalysisStore.setStatus(fingerprint, status, on: connection)
            return try APIStore.group(fingerprint, on: connection)?.json ?? "null"
        }
        await cache.invalidate()
        return .json(200, json)
    }

    // MARK: Services and series

    func listServices(_ c: RequestContext) async throws -> APIResponse {
        let limit = try c.limit()
        var after: String?
        if let cursor = try c.cursor(tag: "services") { after = cursor.parts.first }
        let prefix = c.caller.servicePrefix
        let services = try await cache.current().services.filter { entry in
            (prefix.map { Principal.matches(service: entry.name, prefix: $0) } ?? true) && (after.map { entry.name > $0 } ?? true)
        }
        let kept = Array(services.prefix(limit))
        return pageResponse(JSONPage(items: kept.map(\.json), next: services.count > limit ? kept.last.map { [$0.name] } : nil),
                            tag: "services")
    }

    static let steps = ["1m": 60, "5m": 300, "1h": 3600]

    func series(_ c: RequestContext, service: String?, fingerprint: String?) async throws -> APIResponse {
        let stepName = try c.query("step", oneOf: ["1m", "5m", "1h"]) ?? "1m"
        let step = Self.steps[stepName]!
        let to = try c.time("to") ?? Date()
        let from = try c.time("from") ?? to.addingTimeInterval(-Double(step * 60))
        guard from < to else { throw APIProblem.badRequest("from must be before to") }
        let first = Int((from.timeIntervalSince1970 / Double(step)).rounded(.down)) * step
        let end = Int(to.timeIntervalSince1970.rounded(.up))
        guard (end - first) / step <= 1440 else {
            throw APIProblem.badRequest("at most 1440 buckets: shorten from–to or use a larger step")
        }
        let counts = try await db {
            try APIStore.series(service: service, fingerprint: fingerprint, from: Date(timeIntervalSince1970: Double(first)),
                                to: to, stepSeconds: step, on: $0)
        }
        var points: [JSONValue] = []
        var bucket = first
        while bucket < end {
            points.append(.object([("time", .string(RFC3339.format(Date(timeIntervalSince1970: Double(bucket))))),
                                   ("count", .int(counts[bucket] ?? 0))]))
            bucket += step
        }
        return .json(200, JSONValue.object([
            ("service", .string(service)), ("fingerprint", .string(fingerprint)), ("from", .string(RFC3339.format(from))),
            ("to", .string(RFC3339.format(to))), ("step", .string(stepName)), ("points", .array(points)),
        ]))
    }

    // MARK: Deployments

    /// The text fields of a deployment and their longest length in characters (Unicode scalars,
    /// as JSON Schema's maxLength and PostgreSQL's length() count them).
    static let deploymentFields = [("service", 200), ("environment", 100), ("version", 100), ("commit", 100), ("region", 100)]

    func recordDeployment(_ c: RequestContext) async throws -> APIResponse {
        let body = try jsonBody(c.request)
        // As the OpenAPI document says: no control characters anywhere (the topic's decoder
        // trims surrounding whitespace first; the API does not accept them at all).
        for (name, _) in Self.deploymentFields {
            if let text = body[name]?.stringValue, text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
                throw APIProblem.badRequest("\(name) contains control characters")
            }
        }
        let deployment: Deployment
        do {
            deployment = try Deployment.decode(c.request.body, defaultEnvironment: configuration.defaultEnvironment,
                                               maxFieldBytes: 4 * 200)
        } catch {
            throw APIProblem.badRequest(error.description)
        }
        let values = [deployment.service, deployment.environment, deployment.version, deployment.commit ?? "", deployment.region ?? ""]
        for ((name, limit), value) in zip(Self.deploymentFields, values) where value.unicodeScalars.count > limit {
            throw APIProblem.badRequest("\(name) is longer than \(limit) characters")
        }
        try c.caller.check(service: deployment.service)
        let result = try await db { try APIStore.recordDeployment(deployment, on: $0) }
        return .json(result.created ? 201 : 200, result.json)
    }

    // MARK: Dead letters

    static func deadLetterJSON(_ letter: DeadLetterRecord) -> JSONValue {
        .object([
            ("id", .int(letter.id)), ("reason", .string(letter.reason)), ("source_topic", .string(letter.sourceTopic)),
            ("source_partition", .int(letter.sourcePartition)), ("source_offset", .int(letter.sourceOffset)),
            ("received_at", .string(letter.receivedAt)), ("replayed_at", .string(letter.replayedAt)),
            ("size", .int(letter.value.count)), ("key_base64", .string(letter.key.map { Data($0).base64EncodedString() })),
            ("value_base64", .string(Data(letter.value).base64EncodedString())),
            ("value_text", .string(String(bytes: letter.value, encoding: .utf8))),
            ("headers", .array(letter.headers.map { header in
                .object([("name", .string(header.name)), ("value", .string(header.value.map { String(decoding: $0, as: UTF8.self) }))])
            })),
        ])
    }

    func listDeadLetters(_ c: RequestContext) async throws -> APIResponse {
        let (cursor, limit) = (try c.cursor(), try c.limit())
        let (records, next) = try await db { try DeadLetterStore.list(after: cursor, limit: limit, on: $0) }
        return pageResponse(JSONPage(items: records.map { Self.deadLetterJSON($0).text }, next: next))
    }

    func replayDeadLetter(_ c: RequestContext) async throws -> APIResponse {
        let id = try c.id()
        guard let replayer else { throw APIProblem(503, "replay is not available: no Kafka producer is configured") }
        let force = try c.query("force", oneOf: ["true", "false"]) == "true"
        guard let letter = try await db({ try DeadLetterStore.get(id: id, on: $0) }) else { throw APIProblem.notFound("no dead letter \(id)") }
        // Claimed before producing, so two requests (or a retried one) replay it once; a second
        // replay stores the events of a message without event ids twice, so it must be asked for.
        guard let claimed = try await db({ try DeadLetterStore.claimReplay(id: id, force: force, on: $0) }) else {
            throw APIProblem(409, "dead letter \(id) was replayed at \(letter.replayedAt ?? "?"); add ?force=true to replay it again")
        }
        do {
            try await replayer.replay(topic: letter.sourceTopic, key: letter.key, value: letter.value,
                                      headers: letter.headers.map { ($0.name, $0.value) })
        } catch {
            logger.error("dead letter replay failed", metadata: ["id": "\(id)", "error": "\(error)"])
            do {
                try await db { try DeadLetterStore.unclaimReplay(id: id, previous: letter.replayedAt, on: $0) }
            } catch {
                // The letter stays marked replayed though it was not: a retry needs ?force=true.
                logger.error("dead letter replay mark not undone", metadata: ["id": "\(id)", "error": "\(error)"])
                throw APIProblem(503, "the message could not be produced to \(letter.sourceTopic), and dead letter \(id) "
                    + "stays marked replayed; retry with ?force=true")
            }
            throw APIProblem(503, "the message could not be produced to \(letter.sourceTopic); try again")
        }
        return .json(200, Self.deadLetterJSON(claimed))
    }

    // MARK: API keys

    func createKey(_ c: RequestContext) async throws -> APIResponse {
        let body = try jsonBody(c.request)
        guard let name = body["name"]?.stringValue, (1...200).contains(name.unicodeScalars.count), !name.utf8.contains(0) else {
            throw APIProblem.badRequest("name must be a string of 1 to 200 characters without NUL")
        }
        guard let scopeValues = body["scopes"]?.arrayValue, !scopeValues.isEmpty,
            case let scopes = scopeValues.compactMap(\.stringValue), scopes.count == scopeValues.count,
            scopes.allSatisfy({ Scope(rawValue: $0) != nil })
        else { throw APIProblem.badRequest("scopes must be a non-empty array of read, write and admin") }
        var servicePrefix: String?
        if let raw = body["service_prefix"], !raw.isNull {
            guard let text = raw.stringValue, (1...200).contains(text.unicodeScalars.count), !text.utf8.contains(0) else {
                throw APIProblem.badRequest("service_prefix must be a string of 1 to 200 characters without NUL")
            }
            servicePrefix = text
        }
        let prefix = servicePrefix
        let unique = Array(Set(scopes)).sorted { Scope(rawValue: $0)! < Scope(rawValue: $1)! }
        let created = try await db { try APIKeyStore.create(name: name, scopes: unique, servicePrefix: prefix, on: $0) }
        keys.invalidate()
        // The key is shown this once; only its hash is stored.
        return .json(201, "{\"key\":" + JSONValue.string(created.key).text + "," + created.json.dropFirst())
    }
}

extension FaultlineAPI {
    /// Refuses (422) a webhook URL that deliveries could never reach from here.
    func checkDeliverable(_ url: String) async throws {
        guard let webhookCheck, let refusal = await webhookCheck(url) else { return }
        throw APIProblem(422, "the webhook cannot be delivered: \(refusal)")
    }
}

/// Checks a webhook subscription from a request body.
enum WebhookValidation {
    static let formats = ["generic", "slack", "teams"]

    static func input(_ body: JSONValue, creating: Bool) throws -> WebhookInput {
        let known = ["url", "secret", "format", "filters", "enabled"]
        if let unknown = body.objectValue?.first(where: { !known.contains($0.key) }) {
            throw APIProblem.badRequest("unknown field \(unknown.key)")
        }
        guard let url = body["url"]?.stringValue else { throw APIProblem.badRequest("url is required and must be a string") }
        try validate(url: url)
        var secret: String?
        if let raw = body["secret"], !raw.isNull {
            guard let text = raw.stringValue, (8...256).contains(text.unicodeScalars.count), !text.utf8.contains(0) else {
                throw APIProblem.badRequest("secret must be a string of 8 to 256 characters without NUL")
            }
            secret = text
        }
        var format = "generic"
        if let raw = body["format"] {
            guard let text = raw.stringValue, formats.contains(text) else {
                throw APIProblem.badRequest("format must be one of generic, slack, teams")
            }
            format = text
        }
        var enabled = true
        if let raw = body["enabled"] {
            guard case .bool(let flag) = raw else { throw APIProblem.badRequest("enabled must be true or false") }
            enabled = flag
        }
        let filters = try self.filters(body["filters"])
        return WebhookInput(url: url, secret: secret, format: format, filtersJSON: filters.text, enabled: enabled)
    }

    static func validate(url: String) throws {
        guard (1...2048).contains(url.unicodeScalars.count) else { throw APIProblem.badRequest("url must be 1 to 2048 characters") }
        guard !url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }),
            let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = parsed.host, !host.isEmpty
        else { throw APIProblem.badRequest("url must be an absolute http or https URL") }
    }

    static func filters(_ raw: JSONValue?) throws -> JSONValue {
        guard let raw else { return .object([]) }
        guard let members = raw.objectValue else { throw APIProblem.badRequest("filters must be an object") }
        var result: [(key: String, value: JSONValue)] = []
        for (key, value) in members {
            switch key {
            case "kinds":
                let kinds = try strings(value, key, limit: 10)
                if let bad = kinds.first(where: { Insight.Kind(rawValue: $0) == nil }) {
                    throw APIProblem.badRequest("filters.kinds: \"\(bad)\" is not one of \(FaultlineAPI.insightKinds.joined(separator: ", "))")
                }
                result.append((key, .array(kinds.map { .string($0) })))
            case "services", "environments":
                result.append((key, .array(try strings(value, key, limit: 100).map { .string($0) })))
            case "min_severity":
                if value.isNull { continue }
                guard let text = value.stringValue, Insight.Severity(rawValue: text) != nil else {
                    throw APIProblem.badRequest("filters.min_severity must be info, warning or critical")
                }
                result.append((key, .string(text)))
            case "min_count":
                guard let count = wholeNumber(value), (1...1_000_000_000).contains(count) else {
                    throw APIProblem.badRequest("filters.min_count must be a whole number from 1 to 1000000000")
                }
                result.append((key, .number(String(count))))
            case "cooldown", "throttle", "digest_window":
                // Seconds; at most a day (the digest window at most ten minutes: it delays every alert).
                let limit = key == "digest_window" ? 600 : 86_400
                guard let seconds = wholeNumber(value), (0...limit).contains(seconds) else {
                    throw APIProblem.badRequest("filters.\(key) must be a whole number of seconds from 0 to \(limit)")
                }
                result.append((key, .number(String(seconds))))
            default:
                throw APIProblem.badRequest("filters: unknown field \(key)")
            }
        }
        return .object(result)
    }

    /// A JSON number that is a whole number, however it is written (`60`, `60.0`, `6e1`: JSON
    /// Schema's integer); `nil` for anything else or beyond ±2^53.
    static func wholeNumber(_ value: JSONValue) -> Int? {
        guard case .number(let text) = value else { return nil }
        if let whole = Int(text) { return whole }
        guard let number = Double(text), number.isFinite, number == number.rounded(), abs(number) <= 9_007_199_254_740_992 else {
            return nil
        }
        return Int(number)
    }

    static func strings(_ value: JSONValue, _ key: String, limit: Int) throws -> [String] {
        guard let items = value.arrayValue, items.count <= limit else {
            throw APIProblem.badRequest("filters.\(key) must be an array of at most \(limit) strings")
        }
        return try items.map { item in
            guard let text = item.stringValue, (1...200).contains(text.unicodeScalars.count), !text.utf8.contains(0) else {
                throw APIProblem.badRequest("filters.\(key) must hold strings of 1 to 200 characters without NUL")
            }
            return text
        }
    }
}
