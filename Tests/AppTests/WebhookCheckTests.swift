import API
import App
import Foundation
import Logging
import Postgres
import Testing
import TestSupport

/// The API as `serve` wires it refuses, when the subscription is made, a webhook that no
/// delivery could ever reach: 422 naming the setting that would allow it, without telling what
/// the name resolved to.
@Suite struct WebhookCheckTests {
    @Test func aWebhookToAPrivateAddressIsRefusedWhenCreated() async throws {
        let url = try TestDatabase.migrated("webhook_check")
        var logger = Logger(label: "webhook-check-tests")
        logger.logLevel = .critical
        let token = "webhook-check-admin-token"
        func api(allowPrivate: Bool) throws -> (FaultlineAPI, PostgresPool) {
            let configuration = try FaultlineConfiguration.fromEnvironment([
                "FAULTLINE_DATABASE_URL": url, "FAULTLINE_ADMIN_TOKEN": token,
                "FAULTLINE_WEBHOOK_ALLOW_PRIVATE": allowPrivate ? "true" : "false",
            ])
            let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
            return (Faultline.makeAPI(configuration, pool: pool, producer: nil, readiness: { true }, logger: logger), pool)
        }
        func create(_ api: FaultlineAPI, _ target: String) async -> (status: Int, body: String) {
            let body = #"{"url": "\#(target)", "secret": "s3cret-value"}"#
            let response = await api.handle(APIRequest(
                method: "POST", target: "/v1/webhooks", headers: ["authorization": "Bearer \(token)"], body: Array(body.utf8)))
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        let (strict, strictPool) = try api(allowPrivate: false)
        let loopback = await create(strict, "http://localhost:9/hook")
        #expect(loopback.status == 422, "\(loopback.body)")
        #expect(loopback.body.contains("FAULTLINE_WEBHOOK_ALLOW_PRIVATE"), "\(loopback.body)")
        #expect(!loopback.body.contains("127.0.0.1") && !loopback.body.contains("::1"), "\(loopback.body)")
        let unresolvable = await create(strict, "https://no-such-host.invalid/hook")
        #expect(unresolvable.status == 422 && unresolvable.body.contains("does not resolve"), "\(unresolvable.body)")
        let put = await strict.handle(APIRequest(
            method: "PUT", target: "/v1/webhooks/1", headers: ["authorization": "Bearer \(token)"],
            body: Array(#"{"url": "http://10.0.0.7/hook"}"#.utf8)))
        #expect(put.status == 422, "\(String(decoding: put.body, as: UTF8.self))")
        let stored = try PostgresConnection.connect(PostgresConfiguration(url: url), logger: logger)
        #expect(try stored.query("SELECT count(*) FROM webhooks").first?.int(0) == 0)
        await strictPool.close()

        let (relaxed, relaxedPool) = try api(allowPrivate: true)
        #expect(await create(relaxed, "http://127.0.0.1:9/hook").status == 201)
        await relaxedPool.close()
    }
}
