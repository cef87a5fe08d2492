import Domain
import Foundation
import Kafka
import Posix
import Postgres
import Storage
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `faultline serve` processes started by a test; whatever is still running when the test ends
/// (it failed, or threw) is killed.
final class Replicas: @unchecked Sendable {
    struct Replica {
        let process: Process
        let port: Int
        let log: String
        var base: String { "http://127.0.0.1:\(port)" }
        var pid: Int32 { process.processIdentifier }
    }

    private let lock = NSLock()
    private var all: [Replica] = []
    let environment: [String: String]

    init(environment: [String: String]) { self.environment = environment }

    deinit {
        for replica in all where replica.process.isRunning { kill(replica.pid, SIGKILL) }
        for replica in all { try? FileManager.default.removeItem(atPath: replica.log) }
    }

    /// Starts one with its own HTTP port; its log goes to a file of its own.
    func start(_ arguments: [String] = ["serve"]) throws -> Replica {
        let port = try Loopback.freePort()
        let log = NSTemporaryDirectory() + "replica-\(UUID().uuidString.prefix(8)).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else { throw TestFailure("cannot write \(log)") }
        var environment = environment
        environment["FAULTLINE_HTTP_PORT"] = "\(port)"
        let process = try launch(arguments, environment: environment, output: handle)
        try handle.close()
        let replica = Replica(process: process, port: port, log: log)
        lock.withLock { all.append(replica) }
        return replica
    }

    /// The end of a replica's log, for failure messages.
    func tail(_ replica: Replica, lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: replica.log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

/// Waits for a process to end, at most `timeout`; whether it did.
func waitForExit(_ process: Process, _ timeout: Duration) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(100))
    }
    guard !process.isRunning else { return false }
    try await onThread { process.waitUntilExit() }
    return true
}

/// The sum of a metric's samples on a replica's /metrics (any labels); `nil` when it does not
/// answer or has no such metric.
func metric(_ replica: Replicas.Replica, _ name: String) async -> Double? {
    guard let answer = try? await curl(replica.base + "/metrics", ["--max-time", "5"]), answer.status == 200 else { return nil }
    var total: Double?
    for line in answer.body.split(separator: "\n") where line.hasPrefix(name) {
        let rest = line.dropFirst(name.count)
        guard rest.first == " " || rest.first == "{", let value = rest.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
        total = (total ?? 0) + value
    }
    return total
}

/// Each replica's `faultline_assigned_partitions` (nil for one that does not answer).
func assignedPartitions(_ replicas: [Replicas.Replica]) async -> [Int?] {
    var result: [Int?] = []
    for replica in replicas { result.append(await metric(replica, "faultline_assigned_partitions").map { Int($0) }) }
    return result
}

/// A native error event with a stable, unique id.
func eventLine(id: String, at time: Date, service: String, errorType: String, message: String, version: String) -> String {
    #"{"event_id":"\#(id)","timestamp":"\#(rfc3339(time))","service":"\#(service)","environment":"production","error_type":"\#(errorType)","message":"\#(message)","version":"\#(version)"}"#
}

/// Background errors: `count` events from `first`, over 40 groups of five services, spread
/// over the 50 minutes before `now` (long enough ago that none is news to the analysis).
func backgroundEvents(_ range: Range<Int>, seed: String, now: Date) -> [(id: String, line: String)] {
    range.map { n in
        let group = n % 40
        let id = StableHash.uuid("replicas/\(seed)/\(n)").uuidString
        let time = now.addingTimeInterval(-3000 + Double(n % 2400))
        return (id, eventLine(id: id, at: time, service: "svc-\(group % 5)", errorType: "Error\(group)",
                              message: "operation \(group) failed for request \(n)", version: "1.\(group % 3).0"))
    }
}

/// Produces `lines` round-robin over the errors topic's partitions; the delivery reports by
/// event id.
final class Deliveries: Sendable {
    let reports = Mutex<[String: KafkaDeliveryReport]>([:])
    let failures = Mutex(0)

    func produce(_ producer: KafkaProducer, _ events: [(id: String, line: String)], partitions: Int32, from index: Int = 0) async throws {
        for (offset, event) in events.enumerated() {
            let id = event.id
            try await producer.enqueue(
                KafkaOutgoingMessage(topic: "errors", partition: Int32((index + offset) % Int(partitions)), value: Array(event.line.utf8))
            ) { [self] result in
                switch result {
                case .success(let report): reports.withLock { $0[id] = report }
                case .failure: failures.withLock { $0 += 1 }
                }
            }
        }
    }
}

@Suite struct ReplicaTests {
    /// Three `faultline serve` processes in one consumer group share the partitions, one of them
    /// runs the analysis, and each alert leaves once. The analysis leader is killed (SIGKILL)
    /// while events are produced: its partitions move to the other two, another replica takes
    /// over the analysis, and every event is stored exactly once.
    @Test func threeReplicasShareTheWorkAndSurviveTheLeadersDeath() async throws {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        let partitions = 6
        for (topic, count) in [("errors", partitions), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: count)
        }
        let secret = "replica-signing-secret"
        let receiver = try WebhookReceiver(secret: secret)
        let connection = try PostgresConnection.connect(.init(url: url), logger: logger)
        _ = try WebhookStore.create(WebhookInput(
            url: "http://127.0.0.1:\(receiver.port)/hook", secret: secret, format: "generic",
            filtersJSON: #"{"kinds": ["new_group"], "digest_window": 0, "cooldown": 0}"#, enabled: true), on: connection)

        let replicas = Replicas(environment: [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000", "FAULTLINE_LOG_LEVEL": "info",
            "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_HTTP_HOST": "127.0.0.1", "FAULTLINE_ANALYSIS_INTERVAL": "1s", "FAULTLINE_INGEST_BATCH_SIZE": "200",
            "FAULTLINE_WEBHOOK_ALLOW_PRIVATE": "true", "FAULTLINE_WEBHOOK_TIMEOUT": "5s", "FAULTLINE_WEBHOOK_RETRY_MAX_DELAY": "1s",
        ])
        let started = ContinuousClock.now
        var running = try (0..<3).map { _ in try replicas.start() }
        let total = 7  // six errors partitions and the deployments topic's one

        // Every replica owns partitions; together, all of them.
        var shares: [Int?] = []
        let shared = try await eventually(.seconds(90)) {
            shares = await assignedPartitions(running)
            return shares.allSatisfy { ($0 ?? 0) > 0 } && shares.reduce(0) { $0 + ($1 ?? 0) } == total
        }
        #expect(shared, "assigned partitions: \(shares)\n\(running.map { replicas.tail($0) }.joined(separator: "\n---\n"))")
        guard shared else { return }

        // Exactly one runs the analysis.
        var leaders: [Double?] = []
        let oneLeader = try await eventually(.seconds(60)) {
            leaders = []
            for replica in running { leaders.append(await metric(replica, "faultline_analysis_leader")) }
            return leaders.compactMap { $0 }.count == 3 && leaders.reduce(0) { $0 + ($1 ?? 0) } == 1
        }
        #expect(oneLeader, "leader gauges: \(leaders)")
        guard oneLeader, let leaderIndex = leaders.firstIndex(of: 1) else { return }

        // checkout 2.0.0 rolls out and three errors never seen before follow: three insights,
        // each alerted once although three replicas send webhooks.
        let now = Date()
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        let deployment = #"{"service":"checkout","environment":"production","version":"2.0.0","commit":"abc123","started_at":"\#(rfc3339(now.addingTimeInterval(-300)))"}"#
        _ = try await producer.send(KafkaOutgoingMessage(topic: "deployments", value: Array(deployment.utf8)))
        #expect(try await eventually(.seconds(60)) { try count(url, "SELECT count(*) FROM deployments WHERE version = '2.0.0'") == 1 })
        var events = backgroundEvents(0..<1000, seed: "first", now: now)
        for (n, errorType) in ["CartMissingError", "PriceOverflowError", "CouponLoopError"].enumerated() {
            for k in 0..<10 {
                let id = StableHash.uuid("replicas/new/\(n)/\(k)").uuidString
                events.append((id, eventLine(id: id, at: now.addingTimeInterval(-120 + Double(k)), service: "checkout", errorType: errorType,
                                             message: "checkout step \(n) broke on cart \(k)", version: "2.0.0")))
            }
        }
        events += backgroundEvents(1000..<3000, seed: "second", now: now)
        let firstPart = 1030
        let deliveries = Deliveries()
        try await deliveries.produce(producer, Array(events[..<firstPart]), partitions: Int32(partitions))
        try await producer.flush(timeout: .seconds(30))
        let alerted = try await eventually(.seconds(90)) {
            try count(url, "SELECT count(*) FROM alert_outbox WHERE status = 'delivered'") == 3
                && count(url, "SELECT count(*) FROM alert_outbox") == 3
        }
        let outbox = try query(url, "SELECT status FROM alert_outbox").rows.map { try $0.string(0) }
        #expect(alerted, "outbox: \(outbox)")

        // The rest is produced in a steady stream; a third of the way, the leader dies.
        let victim = running[leaderIndex]
        let rest = Array(events[firstPart...])
        let streaming = Task {
            for start in stride(from: 0, to: rest.count, by: 100) {
                try await deliveries.produce(producer, Array(rest[start..<min(start + 100, rest.count)]), partitions: Int32(partitions),
                                             from: firstPart + start)
                try await Task.sleep(for: .milliseconds(100))
            }
            try await producer.flush(timeout: .seconds(60))
        }
        defer { streaming.cancel() }
        let killAt = firstPart + rest.count / 3
        #expect(try await eventually(.seconds(60)) { deliveries.reports.withLock { $0.count } >= killAt })
        kill(victim.pid, SIGKILL)
        #expect(try await waitForExit(victim.process, .seconds(30)))
        running.remove(at: leaderIndex)

        // Its partitions move to the other two; one of them takes the analysis over.
        let moved = try await eventually(.seconds(90)) {
            shares = await assignedPartitions(running)
            return shares.allSatisfy { ($0 ?? 0) > 0 } && shares.reduce(0) { $0 + ($1 ?? 0) } == total
        }
        #expect(moved, "assigned partitions after the kill: \(shares)")
        let takenOver = try await eventually(.seconds(60)) {
            leaders = []
            for replica in running { leaders.append(await metric(replica, "faultline_analysis_leader")) }
            return leaders.compactMap { $0 }.count == 2 && leaders.reduce(0) { $0 + ($1 ?? 0) } == 1
        }
        #expect(takenOver, "leader gauges after the kill: \(leaders)")

        // Nothing lost, nothing doubled, and the groups count exactly the stored rows.
        try await streaming.value
        #expect(deliveries.failures.withLock { $0 } == 0)
        #expect(deliveries.reports.withLock { $0.count } == events.count)
        let stored = try await eventually(.seconds(120)) { try count(url, "SELECT count(*) FROM events") >= events.count }
        let storedCount = try count(url, "SELECT count(*) FROM events")
        #expect(stored, "\(storedCount) of \(events.count) events stored")
        #expect(try count(url, "SELECT count(*) FROM events") == events.count)
        #expect(try count(url, "SELECT count(DISTINCT event_id) FROM events") == events.count)
        let expectedIDs = Set(events.map { $0.id.lowercased() })
        let storedIDs = Set(try query(url, "SELECT event_id::text FROM events").rows.map { try $0.string(0).lowercased() })
        #expect(storedIDs == expectedIDs)
        #expect(try count(url, "SELECT sum(event_count) FROM groups") == events.count)
        #expect(try count(url, "SELECT sum(count) FROM event_counts") == events.count)
        #expect(try count(url, "SELECT count(*) FROM groups g WHERE event_count <> (SELECT count(*) FROM events e WHERE e.fingerprint = g.fingerprint)") == 0)

        // Each alert arrived once: one request per delivery id, each insight in one request.
        let insights = Set(try query(url, "SELECT id FROM insights WHERE kind = 'new_group' AND service = 'checkout'").rows.map { try $0.int(0) })
        #expect(insights.count == 3)
        #expect(try count(url, "SELECT count(*) FROM alert_outbox WHERE status <> 'delivered'") == 0)
        let requests = try await receiver.requests()
        let deliveryIDs = Set(try query(url, "SELECT delivery_id::text FROM alert_outbox").rows.map { try $0.string(0).lowercased() })
        #expect(requests.count == deliveryIDs.count, "\(requests.count) requests for \(deliveryIDs.count) deliveries")
        #expect(Set(requests.compactMap { $0.delivery?.lowercased() }) == deliveryIDs)
        #expect(requests.allSatisfy { $0.signatureOK })
        let alertedInsights = requests.flatMap { ($0.json["alerts"] as? [[String: Any]] ?? []).compactMap { $0["insight_id"] as? Int } }
        #expect(alertedInsights.count == Set(alertedInsights).count, "an insight alerted twice: \(alertedInsights.sorted())")
        #expect(Set(alertedInsights) == insights)

        for replica in running { kill(replica.pid, SIGTERM) }
        for replica in running {
            #expect(try await waitForExit(replica.process, .seconds(60)))
            #expect(replica.process.terminationStatus == 0, "\(replicas.tail(replica))")
        }
        print("three replicas: \(ContinuousClock.now - started)")
    }
}

/// Clients with a request half sent: each opens a connection and sends all of a request's head
/// but its last line, prints `open`, and on a line on stdin finishes the requests and prints,
/// as JSON, each one's status, whether the body arrived whole, and its Connection header.
let slowClients = #"""
import json, socket, sys
port, count, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sockets = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(f"GET /v1/groups?limit=100 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n".encode())
    sockets.append(s)
print("open", flush=True)
sys.stdin.readline()
for s in sockets:
    s.sendall(b"\r\n")
results = []
for s in sockets:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
        length = int(headers.get("content-length", "-1"))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        results.append({"status": int(lines[0].split()[1]), "whole": length >= 0 and len(body) == length,
                        "connection": headers.get("connection", ""), "items": b'"items"' in body})
    except Exception as error:
        results.append({"status": 0, "whole": False, "connection": "", "error": str(error)})
print(json.dumps(results), flush=True)
"""#

@Suite struct ShutdownTests {
    static let token = "shutdown-admin-token-0123456789"

    /// SIGTERM while events stream in and HTTP requests are in flight: `/readyz` turns 503 while
    /// the server still answers, the requests in flight get their whole responses, the replica
    /// leaves the consumer group (the other replica gets its partitions long before the session
    /// timeout would hand them over), what was written is exactly what was committed, and the
    /// process exits with 0. Restarted, `faultline serve` stores the rest, each event once.
    @Test func sigtermDrainsHTTPCommitsWhatWasWrittenAndLeavesTheGroup() async throws {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        let partitions = 6
        for (topic, count) in [("errors", partitions), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: count)
        }
        // The mock coordinator waits session.timeout.ms − 1 s for members to rejoin in every
        // rebalance: a member that leaves is handed over about that long after it left, one that
        // merely vanishes only after its session has expired too (about twice as long).
        let sessionTimeout = Duration.seconds(20)
        let shutdownGrace = Duration.seconds(20)
        let replicas = Replicas(environment: [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "\(sessionTimeout.components.seconds * 1000)", "FAULTLINE_LOG_LEVEL": "info",
            "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_HTTP_HOST": "127.0.0.1", "FAULTLINE_ADMIN_TOKEN": Self.token, "FAULTLINE_API_CACHE_TTL": "0s",
            "FAULTLINE_INGEST_BATCH_SIZE": "200", "FAULTLINE_SHUTDOWN_GRACE": "\(shutdownGrace.components.seconds)s",
            "FAULTLINE_SHUTDOWN_DRAIN": "3s",
        ])
        let started = ContinuousClock.now
        let a = try replicas.start()
        let b = try replicas.start(["serve", "--role", "ingest"])
        let total = 7  // six errors partitions and the deployments topic's one
        var shares: [Int?] = []
        let shared = try await eventually(.seconds(90)) {
            shares = await assignedPartitions([a, b])
            return shares.allSatisfy { ($0 ?? 0) > 0 } && shares.reduce(0) { $0 + ($1 ?? 0) } == total
        }
        #expect(shared, "assigned partitions: \(shares)\n\(replicas.tail(a))\n---\n\(replicas.tail(b))")
        guard shared else { return }

        // Events stream in until A is told to stop.
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        let deliveries = Deliveries()
        let stop = Mutex(false)
        let now = Date()
        let streaming = Task {
            var next = 0
            while !stop.withLock({ $0 }) && next < 60_000 {
                try await deliveries.produce(producer, backgroundEvents(next..<next + 30, seed: "shutdown", now: now),
                                             partitions: Int32(partitions), from: next)
                next += 30
                try await Task.sleep(for: .milliseconds(100))
            }
            try await producer.flush(timeout: .seconds(30))
        }
        defer { streaming.cancel() }
        #expect(try await eventually(.seconds(60)) { try count(url, "SELECT count(*) FROM events") >= 300 })

        // B leaves: A owns every partition well before B's session could have expired and the
        // rebalance that follows could have ended.
        kill(b.pid, SIGTERM)
        #expect(try await waitForExit(b.process, sessionTimeout + .seconds(10)), "B did not stop\n\(replicas.tail(b))")
        #expect(b.process.terminationStatus == 0, "\(replicas.tail(b))")
        let left = ContinuousClock.now
        let handedOver = try await eventually(sessionTimeout * 1.4) { await assignedPartitions([a]) == [total] }
        let aShare = await assignedPartitions([a])
        #expect(handedOver, "A's partitions \(aShare) \(ContinuousClock.now - left) after B exited")
        print("partitions handed over \(ContinuousClock.now - left) after the leaving replica exited")

        // A is busy: the stream goes on, and requests are half sent.
        let stored = try count(url, "SELECT count(*) FROM events")
        #expect(try await eventually(.seconds(60)) { try count(url, "SELECT count(*) FROM events") > stored + 200 })
        let script = NSTemporaryDirectory() + "slow-clients-\(UUID().uuidString.prefix(8)).py"
        try slowClients.write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let clients = Process()
        clients.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        clients.arguments = [script, "\(a.port)", "8", Self.token]
        let input = Pipe()
        let output = Pipe()
        clients.standardInput = input
        clients.standardOutput = output
        clients.standardError = FileHandle.nullDevice
        try clients.run()
        defer { if clients.isRunning { kill(clients.processIdentifier, SIGKILL) } }
        let opened = try await onThread { firstLine(of: output) ?? "" }
        #expect(opened == "open")

        kill(a.pid, SIGTERM)
        let terminated = ContinuousClock.now
        // Readiness turns 503 while the server still answers, then the listener closes.
        var readiness: [Int] = []
        while a.process.isRunning && ContinuousClock.now - terminated < .seconds(20) {
            let status = (try? await curl(a.base + "/readyz", ["--max-time", "2"]).status) ?? 0
            if readiness.last != status { readiness.append(status) }
            if status == 0 { break }  // refused: the listener is closed
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(readiness.contains(503), "readiness answers after SIGTERM: \(readiness)")
        #expect(!readiness.drop { $0 != 503 }.contains(200), "ready again after 503: \(readiness)")
        #expect(readiness.last == 0 && a.process.isRunning, "listener closed before the process ends: \(readiness)")

        // The requests in flight are finished after the listener has closed.
        input.fileHandleForWriting.write(Data("go\n".utf8))
        let answers = try await onThread { () -> String in
            let data = output.fileHandleForReading.readDataToEndOfFile()
            clients.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        let results = (try? JSONSerialization.jsonObject(with: Data(answers.utf8))) as? [[String: Any]] ?? []
        #expect(results.count == 8, "\(answers)")
        #expect(results.allSatisfy { ($0["status"] as? Int) == 200 && ($0["whole"] as? Bool) == true && ($0["items"] as? Bool) == true },
                "\(answers)")
        #expect(results.allSatisfy { ($0["connection"] as? String)?.lowercased() == "close" }, "\(answers)")

        // Within its budget (plus a little for the process to end once the grace is over).
        #expect(try await waitForExit(a.process, shutdownGrace + .seconds(5)), "A did not stop\n\(replicas.tail(a))")
        #expect(a.process.terminationStatus == 0, "\(replicas.tail(a))")
        print("the busy replica stopped \(ContinuousClock.now - terminated) after SIGTERM")
        // What was produced while no replica ran is for the restart.
        stop.withLock { $0 = true }
        try await streaming.value

        // What A wrote is exactly what the group committed: below each partition's committed
        // offset every event is stored, at and above it none (none would be delivered twice).
        let reports = deliveries.reports.withLock { $0 }
        #expect(deliveries.failures.withLock { $0 } == 0)
        let storedIDs = Set(try query(url, "SELECT event_id::text FROM events").rows.map { try $0.string(0).uppercased() })
        // The reader's subscription matches no topic, so it never joins the group: it only asks
        // the coordinator for the group's offsets.
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(kafka: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers),
                                                      groupID: "faultline", topics: ["^no-topic-is-called-this$"]),
            logger: logger)
        let committed = try await consumer.committed((0..<Int32(partitions)).map { KafkaTopicPartition(topic: "errors", partition: $0) })
        try await consumer.close()
        var writtenNotCommitted: [String] = []
        var committedNotWritten: [String] = []
        for (id, report) in reports {
            let position = committed[KafkaTopicPartition(topic: "errors", partition: report.partition)].flatMap { $0 } ?? 0
            let isStored = storedIDs.contains(id.uppercased())
            if report.offset >= position && isStored { writtenNotCommitted.append("\(report.partition)@\(report.offset)") }
            if report.offset < position && !isStored { committedNotWritten.append("\(report.partition)@\(report.offset)") }
        }
        #expect(writtenNotCommitted.isEmpty, "stored but not committed: \(writtenNotCommitted.sorted().prefix(20))")
        #expect(committedNotWritten.isEmpty, "committed but not stored: \(committedNotWritten.sorted().prefix(20))")
        #expect(storedIDs.isSubset(of: Set(reports.keys.map { $0.uppercased() })))

        // Restarted, serve stores the rest: every produced event once.
        let again = try replicas.start(["serve", "--role", "ingest"])
        let restarted = ContinuousClock.now
        #expect(try await eventually(.seconds(90)) { await assignedPartitions([again]) == [total] }, "\(replicas.tail(again))")
        let complete = try await eventually(.seconds(90)) { try count(url, "SELECT count(*) FROM events") >= reports.count }
        let storedAfter = try count(url, "SELECT count(*) FROM events")
        #expect(complete, "\(storedAfter) of \(reports.count) events\n\(replicas.tail(again))")
        print("restarted replica: all events stored \(ContinuousClock.now - restarted) after its start")
        #expect(try count(url, "SELECT count(*) FROM events") == reports.count)
        #expect(try count(url, "SELECT count(DISTINCT event_id) FROM events") == reports.count)
        #expect(try count(url, "SELECT sum(event_count) FROM groups") == reports.count)
        kill(again.pid, SIGTERM)
        #expect(try await waitForExit(again.process, .seconds(40)))
        #expect(again.process.terminationStatus == 0, "\(replicas.tail(again))")
        print("shutdown test: \(ContinuousClock.now - started), \(reports.count) events, \(storedIDs.count) stored before the restart")
    }
}

/// A rolling restart of one of two replicas while errors stream in: ingest is stalled only for
/// the two rebalances (the restarted replica leaves, then joins), and catches up at once. The
/// embedded broker waits `session.timeout.ms` − 1 s in each rebalance and has neither static
/// membership nor working cooperative rebalancing (its members lose their assignment), so this
/// is the eager case; docs/operations.md says what a real broker adds.
@Suite struct RollingRestartTests {
    @Test func aRestartedReplicaStallsIngestOnlyForItsRebalances() async throws {
        let url = try migratedDatabaseURL()
        let cluster = try KafkaMockCluster(brokers: 1, logger: logger)
        let partitions = 6
        for (topic, count) in [("errors", partitions), ("deployments", 1), ("errors.dlq", 1)] {
            try cluster.createTopic(topic, partitions: count)
        }
        let replicas = Replicas(environment: [
            "FAULTLINE_DATABASE_URL": url, "FAULTLINE_KAFKA_BROKERS": cluster.bootstrapServers,
            "FAULTLINE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "FAULTLINE_LOG_LEVEL": "info", "FAULTLINE_ROLES": "ingest", "FAULTLINE_HTTP_HOST": "127.0.0.1",
            "FAULTLINE_MIGRATIONS_DIR": repositoryRoot.appendingPathComponent("migrations").path,
            "FAULTLINE_INGEST_BATCH_SIZE": "200", "FAULTLINE_SHUTDOWN_DRAIN": "1s",
        ])
        let a = try replicas.start()
        let b = try replicas.start()
        let total = partitions + 1
        var shares: [Int?] = []
        let shared = try await eventually(.seconds(90)) {
            shares = await assignedPartitions([a, b])
            return shares.allSatisfy { ($0 ?? 0) > 0 } && shares.reduce(0) { $0 + ($1 ?? 0) } == total
        }
        #expect(shared, "assigned partitions: \(shares)\n\(replicas.tail(a))\n---\n\(replicas.tail(b))")
        guard shared else { return }

        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        let deliveries = Deliveries()
        let produced = Mutex(0)
        let stop = Mutex(false)
        let now = Date()
        let streaming = Task {
            var next = 0
            while !stop.withLock({ $0 }) && next < 60_000 {
                try await deliveries.produce(producer, backgroundEvents(next..<next + 20, seed: "rolling", now: now),
                                             partitions: Int32(partitions), from: next)
                next += 20
                produced.withLock { $0 = next }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await producer.flush(timeout: .seconds(30))
        }
        defer { streaming.cancel() }
        #expect(try await eventually(.seconds(60)) { try count(url, "SELECT count(*) FROM events") >= 200 })

        // The busiest minute of a rolling restart: A stops and comes straight back.
        kill(a.pid, SIGTERM)
        let stopped = ContinuousClock.now
        #expect(try await waitForExit(a.process, .seconds(30)), "A did not stop\n\(replicas.tail(a))")
        let restarted = try replicas.start()
        // How far ingest falls behind the stream (200 events a second), and when it last was
        // more than a second behind.
        var worst = 0
        var lastBehind = stopped
        while ContinuousClock.now - stopped < .seconds(60) {
            let behind = produced.withLock { $0 } - (try count(url, "SELECT count(*) FROM events"))
            worst = max(worst, behind)
            if behind > 200 { lastBehind = .now }
            try await Task.sleep(for: .milliseconds(200))
        }
        let stall = lastBehind - stopped
        print("rolling restart: ingest more than a second behind for \(stall) after SIGTERM (at worst \(worst) events)")
        // Two rebalances with a 6 s session: 6.5 s when this test runs alone here, 6.5-26 s
        // beside the rest of the suite on two cores. A bound, not a benchmark: a replica that
        // took the stream down until it was restarted by hand would pass no bound at all.
        #expect(stall < .seconds(45), "behind until \(stall) after SIGTERM\n\(replicas.tail(restarted))")

        // Caught up: what was produced a moment ago is stored, with both replicas at work again.
        stop.withLock { $0 = true }
        _ = try? await streaming.value
        let target = produced.withLock { $0 }
        let caughtUp = try await eventually(.seconds(60)) { try count(url, "SELECT count(*) FROM events") >= target }
        let storedNow = try count(url, "SELECT count(*) FROM events")
        #expect(caughtUp, "\(storedNow) of \(target)\n\(replicas.tail(restarted))")
        let both = try await eventually(.seconds(60)) {
            let now = await assignedPartitions([restarted, b])
            return now.allSatisfy { ($0 ?? 0) > 0 }
        }
        let finalShares = await assignedPartitions([restarted, b])
        #expect(both, "\(finalShares)\n\(replicas.tail(restarted))")
        #expect(try count(url, "SELECT count(DISTINCT event_id) FROM events") == (try count(url, "SELECT count(*) FROM events")))
    }
}
