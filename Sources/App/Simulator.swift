import Domain
import Foundation
import Kafka
import Logging

/// Realistic error traffic for several services: steady background errors with a daily shape,
/// a deployment that introduces a new error, and a dependency outage that causes a burst of
/// timeouts across services.
public struct TrafficGenerator: Sendable {
    struct Kind {
        let service: String
        let errorType: String
        let weight: Double
        let message: @Sendable (inout SplitMix64) -> String
        let frames: [String]
    }

    static let services = ["checkout", "payments", "orders", "search", "inventory"]

    /// Errors every service has now and then.
    static let background: [Kind] = [
        Kind(service: "checkout", errorType: "ValidationError", weight: 3, message: { "cart \($0.next() % 100_000) has an invalid coupon 'SPRING\($0.next() % 50)'" }, frames: ["Checkout.applyCoupon", "Checkout.submit"]),
        Kind(service: "orders", errorType: "ConcurrencyError", weight: 2, message: { "order \($0.next() % 1_000_000) was modified by another request (version \($0.next() % 9))" }, frames: ["Orders.save"]),
        Kind(service: "search", errorType: "QueryError", weight: 2, message: { "query parse failed at position \($0.next() % 80)" }, frames: ["Search.parse"]),
        Kind(service: "inventory", errorType: "NotFound", weight: 1, message: { "sku SKU-\($0.next() % 90_000) not found in warehouse \($0.next() % 12)" }, frames: ["Inventory.lookup"]),
        Kind(service: "payments", errorType: "CardDeclined", weight: 2, message: { "card declined for payment \(UUID(uuid: (UInt8($0.next() % 256), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)).uuidString.lowercased()): insufficient funds" }, frames: ["Payments.charge"]),
    ]

    /// The error a bad release brings.
    static let regression = Kind(
        service: "checkout", errorType: "NullPointerException", weight: 0,
        message: { "Cannot read field 'currency' because 'cart.pricing' is null (cart \($0.next() % 100_000))" },
        frames: ["Checkout.totals", "Checkout.submit"])

    /// What every caller of a failing database sees.
    static func outage(_ service: String) -> Kind {
        Kind(service: service, errorType: "TimeoutException", weight: 0,
             message: { "timeout after \(5000 + $0.next() % 3000)ms connecting to payments-db.internal:5432" },
             frames: ["\(service.capitalized).repository.query"])
    }

    var random: SplitMix64

    public init(seed: UInt64 = 42) {
        random = SplitMix64(seed: seed)
    }

    /// One event as native JSON.
    mutating func event(_ kind: Kind, at time: Date, version: String, sequence: Int) -> String {
        let id = StableHash.uuid("sim/\(random.next())/\(sequence)").uuidString.lowercased()
        let stack = kind.frames.map { "  at \($0) (\($0.split(separator: ".").first ?? "App").swift:\(10 + random.next() % 200))" }
            .joined(separator: "\\n")
        let message = kind.message(&random).replacingOccurrences(of: "\"", with: "\\\"")
        let pod = "\(kind.service)-\(String(random.next() % 0xFFFFF, radix: 16))"
        return #"{"event_id":"\#(id)","timestamp":"\#(Self.iso(time))","service":"\#(kind.service)","environment":"production","version":"\#(version)","severity":"error","error_type":"\#(kind.errorType)","message":"\#(message)","stacktrace":"\#(kind.errorType): \#(message)\n\#(stack)","pod":"\#(pod)","namespace":"shop","region":"eu-west-1","http_status":\#(kind.errorType == "TimeoutException" ? 504 : 500)}"#
    }

    /// Background events only: for benchmarks.
    public mutating func backgroundEvent(at time: Date, sequence: Int) -> String {
        let total = Self.background.reduce(0) { $0 + $1.weight }
        var pick = Double(random.next() % 10_000) / 10_000 * total
        var kind = Self.background[0]
        for candidate in Self.background {
            pick -= candidate.weight
            if pick <= 0 { kind = candidate; break }
        }
        return event(kind, at: time, version: "1.8.2", sequence: sequence)
    }

    static func iso(_ date: Date) -> String { RFC3339.format(date) }
}

/// SplitMix64: a small, fast, seeded generator, so simulated traffic is repeatable.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Produces simulated traffic into Kafka in real time.
public struct Simulator: Sendable {
    public struct Scenario: Sendable {
        /// Background errors per second at the daily mean.
        public var rate: Double = 20
        /// When checkout 1.8.3 rolls out and starts throwing a new error.
        public var deploymentAt: Duration = .seconds(60)
        /// When payments-db starts timing out, and for how long.
        public var outageAt: Duration = .seconds(150)
        public var outageLength: Duration = .seconds(60)
        /// Timeouts per second during the outage.
        public var outageRate: Double = 60
        public var duration: Duration? = nil
        /// Paced in real time (the demo), or as fast as possible on a simulated clock whose
        /// events carry simulated timestamps ending now (tests, back-fills).
        public var realTime = true
        public init() {}
    }

    let producer: KafkaProducer
    let topic: String
    let deploymentsTopic: String
    let logger: Logger

    public init(producer: KafkaProducer, topic: String, deploymentsTopic: String, logger: Logger) {
        self.producer = producer
        self.topic = topic
        self.deploymentsTopic = deploymentsTopic
        self.logger = logger
    }

    /// Runs the scenario until `duration` passes or the task is cancelled.
    public func run(_ scenario: Scenario) async throws {
        var generator = TrafficGenerator(seed: UInt64(Date().timeIntervalSince1970))
        // A simulated clock never ends by itself: without a duration it covers ten minutes.
        let length = scenario.duration ?? (scenario.realTime ? nil : .seconds(600))
        let start = ContinuousClock.now
        let wallStart = scenario.realTime ? Date() : Date().addingTimeInterval(-(length?.seconds ?? 0))
        var simulated = Duration.zero
        try await publishDeployment(service: "checkout", version: "1.8.2", commit: "4f2a9c1", at: wallStart.addingTimeInterval(-86_400))
        var deployed = false
        var sequence = 0
        var sent = 0
        var lastReport = ContinuousClock.now
        while !Task.isCancelled {
            let elapsed = scenario.realTime ? ContinuousClock.now - start : simulated
            if let length, elapsed >= length { break }
            let now = scenario.realTime ? Date() : wallStart.addingTimeInterval(elapsed.seconds)
            if !deployed && elapsed >= scenario.deploymentAt {
                try await publishDeployment(service: "checkout", version: "1.8.3", commit: "9b7e3d0", at: now)
                deployed = true
                logger.info("simulated deployment: checkout 1.8.3")
            }
            // A daily shape: busier in the afternoon (UTC), quiet at night.
            let hour = now.timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400) / 3600
            let daily = 1 + 0.5 * sin((hour - 9) / 24 * 2 * .pi)
            var batch: [String] = []
            let tick = 0.1
            let backgroundCount = poisson(scenario.rate * daily * tick, &generator.random)
            for _ in 0..<backgroundCount {
                batch.append(generator.backgroundEvent(at: now, sequence: sequence)); sequence += 1
            }
            if deployed {
                for _ in 0..<poisson(scenario.rate * 0.8 * tick, &generator.random) {
                    batch.append(generator.event(TrafficGenerator.regression, at: now, version: "1.8.3", sequence: sequence)); sequence += 1
                }
            }
            if elapsed >= scenario.outageAt && elapsed < scenario.outageAt + scenario.outageLength {
                for service in ["checkout", "payments", "orders"] {
                    for _ in 0..<poisson(scenario.outageRate / 3 * tick, &generator.random) {
                        batch.append(generator.event(TrafficGenerator.outage(service), at: now,
                                                     version: service == "checkout" ? (deployed ? "1.8.3" : "1.8.2") : "2.4.0",
                                                     sequence: sequence))
                        sequence += 1
                    }
                }
            }
            for line in batch {
                try await producer.enqueue(KafkaOutgoingMessage(topic: topic, value: Array(line.utf8)))
            }
            sent += batch.count
            if ContinuousClock.now - lastReport >= .seconds(10) {
                logger.info("simulated traffic", metadata: ["events": "\(sent)", "elapsed_s": "\(elapsed.components.seconds)"])
                lastReport = .now
            }
            if scenario.realTime {
                try await Task.sleep(for: .milliseconds(100))
            } else {
                simulated += .milliseconds(100)
            }
        }
        try await producer.flush(timeout: .seconds(30))
    }

    private func publishDeployment(service: String, version: String, commit: String, at time: Date) async throws {
        let record = #"{"service":"\#(service)","environment":"production","version":"\#(version)","commit":"\#(commit)","region":"eu-west-1","started_at":"\#(TrafficGenerator.iso(time))"}"#
        // Queued, not awaited: the scenario's clock must not stall on a slow first delivery.
        try await producer.enqueue(KafkaOutgoingMessage(topic: deploymentsTopic, key: Array(service.utf8), value: Array(record.utf8)))
    }

    private func poisson(_ mean: Double, _ random: inout SplitMix64) -> Int {
        // Knuth's method: fine for the small means of one tick.
        let limit = exp(-mean)
        var product = Double(random.next() % 1_000_000) / 1_000_000
        var count = 0
        while product > limit && count < 10_000 {
            product *= Double(random.next() % 1_000_000 + 1) / 1_000_001
            count += 1
        }
        return count
    }
}
