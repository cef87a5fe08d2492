import App
import Domain
import Foundation
import TestSupport
import Ingest
import Kafka
import Logging
import Postgres
import ServiceLifecycle

let logger: Logger = {
    var logger = Logger(label: "ingest-tests")
    logger.logLevel = .error
    return logger
}()

/// A fresh, migrated database on the test server; its URL.
func migratedDatabaseURL() throws -> String {
    try TestDatabase.migrated("ingest")
}

func query(_ url: String, _ sql: String) throws -> PostgresRows {
    try PostgresConnection.connect(.init(url: url), logger: logger).query(sql)
}

func count(_ url: String, _ sql: String) throws -> Int {
    try query(url, sql).first?.int(0) ?? -1
}

/// Runs an ingest service until `body` returns, then shuts it down gracefully.
func withIngest<T>(
    _ configuration: FaultlineConfiguration, logger: Logger = logger, _ body: (IngestStatus) async throws -> T
) async throws -> T {
    let pool = PostgresPool(configuration: configuration.postgres, logger: logger)
    let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
    let role = IngestRole(configuration: configuration.ingest, pool: pool, producer: producer, logger: logger)
    let service = role.ingest
    let group = ServiceGroup(configuration: .init(services: role.services.map { .init(service: $0) }, logger: logger))
    let task = Task { try await group.run() }
    do {
        let result = try await body(service.status)
        await group.triggerGracefulShutdown()
        try await task.value
        await pool.close()
        return result
    } catch {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        await pool.close()
        throw error
    }
}

/// The product's own formatter: Foundation's ISO8601DateFormatter goes through ICU, whose
/// formatter creation crashed the test process when parallel tests made thousands at once.
func rfc3339(_ date: Date) -> String {
    RFC3339.format(date)
}

/// Runs kcat to produce a file's lines as messages.
func kcatProduce(_ bootstrap: String, topic: String, file: String) async throws {
    let kcat = Process()
    kcat.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
    kcat.arguments = ["-P", "-b", bootstrap, "-t", topic, "-l", file]
    try kcat.run()
    try await onThread { kcat.waitUntilExit() }
    guard kcat.terminationStatus == 0 else { throw TestFailure("kcat exited with \(kcat.terminationStatus)") }
}
