import Foundation
import Testing
import TestSupport

/// `faultline keys create|list|revoke` against a migrated test database.
@Suite struct KeysCommandTests {
    func faultline(_ arguments: [String], url: String) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try faultlineBinary())
        process.arguments = arguments
        process.environment = [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_LOG_LEVEL": "warning",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return try await onThread {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    @Test func createListAndRevokeAKey() async throws {
        let url = try TestDatabase.migrated("keys")
        let created = try await faultline(["keys", "create", "--name", "deploy-bot", "--scope", "write",
                                           "--service-prefix", "payments-"], url: url)
        #expect(created.status == 0, "\(created.output)")
        let key = String(created.output.split(separator: "\n").first ?? "")
        #expect(key.hasPrefix("flt_") && key.count == 47)

        let listed = try await faultline(["keys", "list"], url: url)
        #expect(listed.status == 0 && listed.output.contains("deploy-bot") && listed.output.contains("payments-"))
        #expect(!listed.output.contains(key))

        let revoked = try await faultline(["keys", "revoke", "1"], url: url)
        let object = try JSONSerialization.jsonObject(with: Data(revoked.output.utf8)) as? [String: Any]
        #expect(revoked.status == 0 && object?["revoked_at"] is String, "\(revoked.output)")
        let missing = try await faultline(["keys", "revoke", "99"], url: url)
        #expect(missing.status == 1 && missing.output.contains("no API key 99"))
        let bad = try await faultline(["keys", "create", "--name", "x", "--scope", "root"], url: url)
        #expect(bad.status == 1)
    }
}
