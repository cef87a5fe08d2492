import App
import Foundation
import Logging
import Postgres
import Testing
import TestSupport

@testable import Ingest

#if canImport(Glibc)
import Glibc
#endif

/// Dead letters reach the log as a summary: the first at once, then at most one line a minute
/// with the count and the commonest reasons.
@Suite struct DeadLetterLogTests {
    @Test func theFirstIsToldAtOnceTheRestOnceAMinute() {
        let log = DeadLetterLog(interval: .seconds(60))
        let start = ContinuousClock.now
        #expect(log.note("not JSON", at: start) == DeadLetterLog.Summary(count: 1, reasons: "not JSON ×1"))
        for n in 0..<99 {
            #expect(log.note(n % 3 == 0 ? "no service" : "not JSON", at: start + .seconds(1)) == nil)
        }
        let summary = log.note("not JSON", at: start + .seconds(61))
        #expect(summary == DeadLetterLog.Summary(count: 100, reasons: "not JSON ×67; no service ×33"))
        #expect(log.note(String(repeating: "x", count: 10_000), at: start + .seconds(62)) == nil)
    }
}

/// What `serve` refuses before it does anything: a taken HTTP port (before migrations and
/// before joining the consumer group), and a database that waiting will not bring.
@Suite struct StartupTests {
    var quiet: Logger {
        var logger = Logger(label: "startup-tests")
        logger.logLevel = .critical
        return logger
    }

    @Test func aTakenPortIsRefusedBeforeTheDatabaseIsTried() async throws {
        // A listener holds the port; the database URL points where nothing answers, which
        // migrations would retry for a minute.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let port: Int = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(fd, raw, length) == 0, listen(fd, 1) == 0, getsockname(fd, raw, &length) == 0 else { return 0 }
                return Int(UInt16(bigEndian: pointer.pointee.sin_port))
            }
        }
        try #require(port > 0)
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": "postgres://faultline@127.0.0.1:1/none", "FAULTLINE_HTTP_HOST": "127.0.0.1",
            "FAULTLINE_HTTP_PORT": String(port), "FAULTLINE_KAFKA_BROKERS": "127.0.0.1:1", "FAULTLINE_ROLES": "ingest,api",
        ])
        let started = ContinuousClock.now
        let error = await #expect(throws: ConfigurationError.self) { try await Faultline.serve(configuration, logger: quiet) }
        #expect(error?.variable == "FAULTLINE_HTTP_PORT", "\(String(describing: error))")
        #expect(error?.reason.contains("127.0.0.1:\(port)") == true)
        // Migrations would have retried the database for 60 s first.
        #expect(ContinuousClock.now - started < .seconds(55), "it waited for the database first")
    }

    @Test func aDatabaseThatDoesNotExistFailsAtOnceWithLibpqsText() async throws {
        let url = try TestDatabase.url()
        guard let slash = url.lastIndex(of: "/") else { throw TestFailure("no database in \(url)") }
        var missing = String(url[..<slash]) + "/faultline_no_such_database"
        if let query = url[slash...].firstIndex(of: "?") { missing += String(url[query...]) }
        var configuration = FaultlineConfiguration()
        configuration.databaseURL = missing
        configuration.migrationsDirectory = try ResourceLocator.migrations(configured: nil)
        let started = ContinuousClock.now
        // Retried, it would take the whole patience of 120 s.
        let error = await #expect(throws: PostgresError.self) { try await Faultline.migrate(configuration, logger: quiet, patience: .seconds(120)) }
        #expect(error?.message.contains("does not exist") == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(90), "a database that does not exist was retried")
    }
}
