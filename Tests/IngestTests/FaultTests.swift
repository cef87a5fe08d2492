import App
import Domain
import Foundation
import TestSupport
import Ingest
import Kafka
import Logging
import Postgres
import Testing

/// Writes `count` native events over `groups` groups; returns the expected count per group
/// template number.
func writeEvents(_ count: Int, groups: Int, to path: String, seed: Int = 0) throws -> [Int: Int] {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try #require(FileHandle(forWritingAtPath: path))
    defer { try? handle.close() }
    let base = Date().addingTimeInterval(-3600)
    var expected: [Int: Int] = [:]
    var chunk = ""
    for n in 0..<count {
        let group = (n * 7 + seed) % groups
        expected[group, default: 0] += 1
        let id = StableHash.uuid("crash/\(seed)/\(n)").uuidString
        chunk += #"{"event_id":"\#(id)","timestamp":"\#(rfc3339(base.addingTimeInterval(Double(n % 3600))))","service":"svc-\#(group % 5)","environment":"production","error_type":"Error\#(group)","message":"operation \#(group) failed for request \#(n) after \#(n % 997)ms","version":"1.\#(group % 3).0"}"#
        chunk += "\n"
        if chunk.utf8.count > 1 << 20 {
            handle.write(Data(chunk.utf8))
            chunk = ""
        }
    }
    handle.write(Data(chunk.utf8))
    return expected
}

/// `faultline dev-kafka` in a process of its own; its bootstrap servers.
func startDevKafka(partitions: Int) throws -> (Process, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try faultlineBinary())
    process.arguments = ["dev-kafka", "--brokers", "1", "--partitions", "\(partitions)", "--topic", "errors", "--topic", "deployments",
                         "--topic", "errors.dlq"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    guard let bootstrap = firstLine(of: pipe) else { throw TestFailure("dev-kafka ended") }
    return (process, bootstrap)
}

/// What the kill loop of ``CrashTests`` did: the events sent and the processes it ran.
struct KillRun: @unchecked Sendable {  // handed once from the loop's thread to the test
    var total = 0
    var expected: [Int: Int] = [:]
    var producers: [Process] = []
    var kills = 0
    var counts: [Int] = []
    var serve: Process?
}

@Suite struct CrashTests {
    @Test func killingServeRepeatedlyLosesAndDuplicatesNothing() async throws {
        let url = try migratedDatabaseURL()
        let (kafka, bootstrap) = try startDevKafka(partitions: 6)
        defer { kafka.terminate() }
        let file = NSTemporaryDirectory() + "crash-\(UUID().uuidString.prefix(8)).ndjson"
        let environment = [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": bootstrap, "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "FAULTLINE_LOG_LEVEL": "warning", "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_INGEST_BATCH_SIZE": "2000", "FAULTLINE_HTTP_PORT": "0",
        ]
        // The kills are timed from a thread of their own: on the test runner's shared pool,
        // busy with other tests, a sleep can overrun by seconds, and a fast build ingests the
        // whole file meanwhile. Should the file still be stored before the fifth kill, more
        // events are sent (up to four rounds), so every run kills five times mid-ingest.
        let run = try await onThread { () throws -> KillRun in
            var run = KillRun()
            var files: [String] = []
            defer { for file in files { try? FileManager.default.removeItem(atPath: file) } }
            func send(_ count: Int, seed: Int) throws {
                let path = file + ".\(seed)"
                files.append(path)
                run.expected.merge(try writeEvents(count, groups: 40, to: path, seed: seed)) { $0 + $1 }
                run.total += count
                run.producers.append(try launch(["produce", "--file", path], environment: environment))
            }
            try send(200_000, seed: 0)
            var serve = try launch(["serve"], environment: environment)
            var generator = SystemRandomNumberGenerator()
            var storedAtLastKill = 0
            while run.kills < 5 {
                // A random moment once this process stores rows: wait until it has stored two
                // batches of its own, then up to half a second. Two batches: after a kill, the
                // new process decodes the dead one's claimed range a message at a time, and a
                // message being decoded alone when a process dies a second time is set aside as
                // `crashed-decoder` by design.
                let stored = try count(url, "SELECT count(*) FROM events")
                if stored >= run.total {
                    guard run.producers.count < 5 else { break }
                    try send(50_000, seed: run.producers.count)
                    continue
                }
                guard stored > storedAtLastKill + 4000 else {
                    usleep(50_000)
                    continue
                }
                usleep(UInt32.random(in: 50_000...500_000, using: &generator))
                storedAtLastKill = try count(url, "SELECT count(*) FROM events")
                if storedAtLastKill >= run.total { continue }
                kill(serve.processIdentifier, SIGKILL)
                serve.waitUntilExit()
                run.kills += 1
                run.counts.append(storedAtLastKill)
                serve = try launch(["serve"], environment: environment)
            }
            for producer in run.producers { producer.waitUntilExit() }
            run.serve = serve
            return run
        }
        let total = run.total, expected = run.expected, kills = run.kills, counts = run.counts
        let serve = try #require(run.serve)
        #expect(run.producers.allSatisfy { $0.terminationStatus == 0 })
        // A kill that lands while the next process decodes the dead one's range a message at a
        // time sets that message aside (`crashed-decoder`, by design: it cannot tell a kill from
        // outside from a message that crashes it). Set aside is not lost: it waits, with its
        // bytes, to be replayed. Every event is stored or set aside, exactly once.
        // Such a message may have been stored too, by the process killed first (its offsets
        // were not committed yet): a replay of it then adds nothing, as its event ids are
        // stored. So the ids stored and those set aside must make up every event, each once.
        let setAsideQuery = "SELECT count(*) FROM dead_letters WHERE reason LIKE 'crashed-decoder%'"
        let accountedQuery = """
            SELECT count(*) FROM (SELECT event_id::text FROM events
                                  UNION SELECT lower(convert_from(message_value, 'UTF8')::jsonb->>'event_id') FROM dead_letters) ids
            """
        let done = try await eventually(.seconds(240)) { try count(url, accountedQuery) >= total }
        serve.terminate()  // SIGTERM: graceful
        let last = serve
        try await onThread { last.waitUntilExit() }
        #expect(serve.terminationStatus == 0)
        #expect(done)
        #expect(kills >= 5, "killed only \(kills) times: ingest finished too early (rows at each kill: \(counts))")

        let setAside = try count(url, setAsideQuery)
        #expect(setAside <= kills, "at most one message set aside per kill, not \(setAside)")
        #expect(try count(url, "SELECT count(*) FROM dead_letters") == setAside, "no other dead letters")
        let stored = try count(url, "SELECT count(*) FROM events")
        #expect(try count(url, accountedQuery) == total, "every event stored or set aside")
        #expect(try count(url, "SELECT count(DISTINCT event_id) FROM events") == stored, "none stored twice")
        #expect((total - setAside...total).contains(stored), "\(stored) stored, \(setAside) set aside")
        #expect(try count(url, "SELECT sum(event_count) FROM groups") == stored)
        #expect(try count(url, "SELECT sum(count) FROM event_counts") == stored)
        let groups = try query(url, "SELECT error_type, event_count FROM groups").rows
        let perGroup = Dictionary(uniqueKeysWithValues: try groups.map { (Int(try $0.string(0).dropFirst(5))!, try $0.int(1)) })
        if stored == total {
            #expect(perGroup == expected)
        } else {
            #expect(perGroup.keys.allSatisfy { perGroup[$0]! <= expected[$0] ?? 0 })
        }
    }
}

@Suite struct DependencyFaultTests {
    /// PostgreSQL restarted and brokers taken down while ingesting: nothing lost or doubled.
    @Test func survivesADatabaseRestartAndBrokerFaults() async throws {
        let directory = "/tmp/faultline-ingest-restart-\(UUID().uuidString.prefix(8))"
        let postgres = LocalPostgresCluster(directory: directory)
        try await onThread { try postgres.start() }
        defer {
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try postgres.createDatabase("faultline", logger: logger)
        let url = postgres.url(database: "faultline")
        try Migrator(migrations: try Migration.load(directory: repositoryRoot.appendingPathComponent("migrations").path), logger: logger)
            .migrate(PostgresConnection.connect(.init(url: url), logger: logger))

        let cluster = try KafkaMockCluster(brokers: 3, logger: logger)
        for (topic, partitions) in [("errors", 6), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: partitions, replicationFactor: 3)
        }
        try cluster.setGroupCoordinator("faultline", broker: 1)
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000", "FAULTLINE_KAFKA_RECONNECT_BACKOFF_MAX_MS": "500",
            "FAULTLINE_INGEST_BATCH_SIZE": "500",
        ])
        let file = NSTemporaryDirectory() + "faults-\(UUID().uuidString.prefix(8)).ndjson"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let total = 20_000
        _ = try writeEvents(total, groups: 10, to: file, seed: 3)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")

        // Told in full: should ingest stall here, its warnings (retries, rebalances, the
        // Kafka client's connection errors) are what says why.
        var verbose = Logger(label: "ingest-faults")
        verbose.logLevel = .warning
        try await withIngest(configuration, logger: verbose) { status async throws in
            var producerLogger = Logger(label: "faults-producer")  // its own name, apart from ingest's
            producerLogger.logLevel = .error
            let producer = try KafkaProducer(configuration: configuration.kafka, logger: producerLogger)
            for (n, line) in lines.enumerated() {
                if n == total / 4 {
                    try await onThread { try postgres.restart() }
                    cluster.pushRequestErrors(.fetch, [6, 7, 7])
                }
                // A broker fails and leadership moves to a live one, as a cluster elects leaders.
                if n == total / 2 { try cluster.setBrokerDown(2); try cluster.failOver(to: 1) }
                if n == 3 * total / 4 { cluster.pushRequestErrors(.offsetCommit, [27, 27]) }
                try await producer.enqueue(KafkaOutgoingMessage(topic: "errors", value: Array(line.utf8)))
                if n % 2000 == 0 { try await Task.sleep(for: .milliseconds(300)) }
            }
            try await producer.flush(timeout: .seconds(60))
            let stored = try await eventually(.seconds(120)) { try count(url, "SELECT count(*) FROM events") >= total }
            // Should it fail: rows short while the offsets are committed means events lost or
            // set aside; offsets behind means ingest stalled.
            var committed = "-"
            if !stored {
                let observer = try KafkaConsumer(
                    configuration: KafkaConsumerConfiguration(kafka: configuration.kafka, groupID: configuration.ingest.group, topics: []),
                    logger: logger)
                let offsets = try? await observer.committed((0..<6).map { KafkaTopicPartition(topic: "errors", partition: $0) })
                committed = offsets.map { "\($0.sorted { $0.key.partition < $1.key.partition }.map { "\($0.key.partition):\($0.value.map(String.init) ?? "none")" })" } ?? "unknown"
                try await observer.close()
            }
            let rows = try count(url, "SELECT count(*) FROM events")
            let letters = try query(url, "SELECT reason FROM dead_letters LIMIT 3").rows.map { try $0.string(0) }
            #expect(stored, "committed offsets \(committed); \(rows) of \(total) stored; dead letters \(letters); ingest counted \(status.eventsInserted) inserted, \(status.duplicates) duplicates, \(status.deadLetters) dead letters, \(status.assignedPartitions) partitions assigned, database available: \(status.databaseAvailable)")
        }
        #expect(try count(url, "SELECT count(*) FROM events") == total)
        #expect(try count(url, "SELECT sum(event_count) FROM groups") == total)
        #expect(try count(url, "SELECT sum(count) FROM event_counts") == total)
    }
}
