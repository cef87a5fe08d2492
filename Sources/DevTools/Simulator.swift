import App
import Domain
import Foundation
import Kafka
import Logging
import Synchronization

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
        Kind(service: "inventory", errorType: "NotFound", weight: 1, message: { "sku SKU-\(10_000 + $0.next() % 90_000) not found in warehouse \($0.next() % 12)" }, frames: ["Inventory.lookup"]),
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

    /// What a service with a memory leak reports as its usage nears the limit.
    static func leak(_ service: String, usage: Int) -> Kind {
        Kind(service: service, errorType: "MemoryPressureWarning", weight: 0,
             message: { "memory usage \(usage - Int($0.next() % 4)) MiB of 512 MiB limit after full GC (heap keeps growing)" },
             frames: ["\(service.capitalized).cache.store"])
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

    /// One background event (of the version each service runs: checkout's is `checkoutVersion`).
    public mutating func backgroundEvent(at time: Date, sequence: Int, checkoutVersion: String = "1.8.2") -> String {
        let total = Self.background.reduce(0) { $0 + $1.weight }
        var pick = Double(random.next() % 10_000) / 10_000 * total
        var kind = Self.background[0]
        for candidate in Self.background {
            pick -= candidate.weight
            if pick <= 0 { kind = candidate; break }
        }
        return event(kind, at: time, version: kind.service == "checkout" ? checkoutVersion : "2.4.0", sequence: sequence)
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

/// What a running simulation has done, for a progress display. Shared between the simulator
/// and whoever watches it.
public final class SimulationProgress: Sendable {
    struct State {
        var produced = 0
        var ingested: (count: Int, at: ContinuousClock.Instant)?
        var historyProduced: Int?
        var step = "starting"
        var scenariosStartedAt: Date?
    }

    private let state = Mutex(State())
    /// Events produced and not yet ingested at most, when the ingested count is known
    /// (``noteIngested(_:)``): the embedded broker keeps only the newest 5 MiB of a partition,
    /// so history produced faster than it is ingested would be dropped unread.
    public let backlogLimit: Int

    public init(backlogLimit: Int = 20_000) {
        self.backlogLimit = backlogLimit
    }

    /// The events ingested so far, as the database counts them.
    public func noteIngested(_ count: Int) {
        state.withLock { state in
            if state.ingested?.count != count { state.ingested = (count, .now) }
        }
    }

    /// Waits while more than `backlogLimit` events wait to be ingested; gives up waiting once the
    /// count has not moved for 30 s (ingest stalled: better late history than none).
    func waitForBacklog() async throws {
        while true {
            let (produced, ingested) = state.withLock { ($0.produced, $0.ingested) }
            guard let ingested, produced - ingested.count > backlogLimit, ContinuousClock.now - ingested.at < .seconds(30) else { return }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Events produced so far (history included).
    public var produced: Int { state.withLock { $0.produced } }
    /// Events of the back-filled history, once it has all been produced.
    public var historyProduced: Int? { state.withLock { $0.historyProduced } }
    /// What the simulation is doing now, in words.
    public var step: String { state.withLock { $0.step } }
    /// When the scenarios' clock started (nil while they wait).
    public var scenariosStartedAt: Date? { state.withLock { $0.scenariosStartedAt } }

    /// Starts the scenarios' clock (the deployment and the outage are timed from here); a
    /// second call changes nothing.
    public func startScenarios(at date: Date = Date()) {
        state.withLock { if $0.scenariosStartedAt == nil { $0.scenariosStartedAt = date } }
    }

    func add(_ count: Int) { state.withLock { $0.produced += count } }
    func set(step: String) { state.withLock { $0.step = step } }
    func historyDone() { state.withLock { $0.historyProduced = $0.produced } }
}

/// Produces simulated traffic into Kafka: optionally a back-filled history with past
/// timestamps, then traffic in real time (or, for tests, everything at once on a simulated
/// clock ending now).
///
/// The story: background errors in every service with a daily shape; optionally a slow memory
/// leak whose warnings grow steadily; checkout 1.8.3 rolling out with a new error; payments-db
/// timing out for checkout, payments and orders.
public struct Simulator: Sendable {
    public struct Scenario: Sendable {
        /// Background errors per second at the daily mean.
        public var rate: Double = 20
        /// When checkout 1.8.3 rolls out and starts throwing a new error.
        public var deploymentAt: Duration = .seconds(60)
        /// New errors per second the bad release adds, as a share of `rate`.
        public var regressionShare: Double = 0.8
        /// When payments-db starts timing out, and for how long.
        public var outageAt: Duration = .seconds(150)
        public var outageLength: Duration = .seconds(60)
        /// Timeouts per second during the outage.
        public var outageRate: Double = 60
        /// The service with a memory leak (nil: none). Its memory warnings grow by
        /// `leakGrowth` (a share) every minute and stand at `leakRateNow` per minute when the
        /// real-time traffic begins. (With the defaults they were about 1/min three hours
        /// before, and reach 60/min, the default forecast threshold, 18 minutes after it.)
        public var leakService: String? = nil
        public var leakRateNow: Double = 42
        public var leakGrowth: Double = 0.02
        /// History produced first, as fast as possible, with timestamps in the past (ending when
        /// the real-time traffic begins); only background errors and the leak happen in it.
        public var history: Duration = .zero
        /// Whether the scenarios' clock starts by itself when the real-time traffic begins;
        /// when false it waits for ``SimulationProgress/startScenarios(at:)``.
        public var startScenariosAtOnce = true
        public var duration: Duration? = nil
        /// Paced in real time (the demo), or as fast as possible on a simulated clock whose
        /// events carry simulated timestamps ending now (tests).
        public var realTime = true
        public init() {}
    }

    let producer: KafkaProducer
    let topic: String
    let deploymentsTopic: String
    let logger: Logger
    public let progress: SimulationProgress

    public init(producer: KafkaProducer, topic: String, deploymentsTopic: String, logger: Logger,
                progress: SimulationProgress = SimulationProgress()) {
        self.producer = producer
        self.topic = topic
        self.deploymentsTopic = deploymentsTopic
        self.logger = logger
        self.progress = progress
    }

    /// The state of the story over one stretch of time.
    struct Moment {
        var deployed: Bool
        var outage: Bool
    }

    /// Runs the scenario until `duration` passes or the task is cancelled.
    public func run(_ scenario: Scenario) async throws {
        var generator = TrafficGenerator(seed: UInt64(Date().timeIntervalSince1970))
        var sequence = 0
        var deployedPublished = false
        let history = scenario.history.seconds
        if scenario.realTime {
            let liveStart = Date()
            try await publishDeployment(service: "checkout", version: "1.8.2", commit: "4f2a9c1",
                                        at: liveStart.addingTimeInterval(-history - 86_400))
            if history > 0 {
                progress.set(step: "back-filling \(Self.describe(scenario.history)) of history")
                try await emit(from: liveStart.addingTimeInterval(-history), to: liveStart, scenario, liveStart: liveStart,
                               moment: { _ in Moment(deployed: false, outage: false) }, &generator, &sequence)
                logger.info("simulated history produced", metadata: ["events": "\(progress.produced)"])
            }
            progress.historyDone()
            if scenario.startScenariosAtOnce { progress.startScenarios(at: liveStart) }
            progress.set(step: progress.scenariosStartedAt == nil ? "waiting for the history to be ingested" : "background traffic")
            var last = liveStart
            var lastReport = ContinuousClock.now
            while !Task.isCancelled {
                let now = Date()
                if let length = scenario.duration, now.timeIntervalSince(liveStart) >= length.seconds { break }
                let started = progress.scenariosStartedAt
                let moment = { (time: Date) -> Moment in
                    guard let started else { return Moment(deployed: false, outage: false) }
                    return Self.moment(scenario, elapsed: time.timeIntervalSince(started))
                }
                if !deployedPublished, moment(now).deployed {
                    let at = started!.addingTimeInterval(scenario.deploymentAt.seconds)
                    try await publishDeployment(service: "checkout", version: "1.8.3", commit: "9b7e3d0", at: at)
                    deployedPublished = true
                    logger.info("simulated deployment: checkout 1.8.3")
                }
                if let started { progress.set(step: Self.step(scenario, elapsed: now.timeIntervalSince(started))) }
                try await emit(from: last, to: now, scenario, liveStart: liveStart, moment: moment, &generator, &sequence)
                last = now
                if ContinuousClock.now - lastReport >= .seconds(10) {
                    logger.info("simulated traffic", metadata: [
                        "events": "\(progress.produced)", "elapsed_s": "\(Int(now.timeIntervalSince(liveStart)))"])
                    lastReport = .now
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        } else {
            // A simulated clock never ends by itself: without a duration it covers ten minutes.
            let length = (scenario.duration ?? .seconds(600)).seconds
            let end = Date()
            let start = end.addingTimeInterval(-length)
            try await publishDeployment(service: "checkout", version: "1.8.2", commit: "4f2a9c1",
                                        at: start.addingTimeInterval(-history - 86_400))
            if history > 0 {
                try await emit(from: start.addingTimeInterval(-history), to: start, scenario, liveStart: start,
                               moment: { _ in Moment(deployed: false, outage: false) }, &generator, &sequence)
            }
            progress.historyDone()
            progress.startScenarios(at: start)
            if scenario.deploymentAt.seconds < length {
                try await publishDeployment(service: "checkout", version: "1.8.3", commit: "9b7e3d0",
                                            at: start.addingTimeInterval(scenario.deploymentAt.seconds))
            }
            try await emit(from: start, to: end, scenario, liveStart: start,
                           moment: { Self.moment(scenario, elapsed: $0.timeIntervalSince(start)) }, &generator, &sequence)
        }
        try await producer.flush(timeout: .seconds(30))
    }

    static func moment(_ scenario: Scenario, elapsed: Double) -> Moment {
        let outageStart = scenario.outageAt.seconds
        return Moment(deployed: elapsed >= scenario.deploymentAt.seconds,
                      outage: elapsed >= outageStart && elapsed < outageStart + scenario.outageLength.seconds)
    }

    /// The scenario step at `elapsed` seconds after the scenarios started, in words.
    static func step(_ scenario: Scenario, elapsed: Double) -> String {
        let deployment = scenario.deploymentAt.seconds
        let outage = scenario.outageAt.seconds
        let outageEnd = outage + scenario.outageLength.seconds
        var parts: [String] = []
        if elapsed < deployment {
            parts.append("background traffic; checkout 1.8.3 rolls out in \(Int(deployment - elapsed)) s")
        } else if elapsed < deployment + 60 {
            parts.append("checkout 1.8.3 rolling out (new NullPointerException)")
        } else {
            parts.append("checkout 1.8.3 live with its new error")
        }
        if elapsed >= outage && elapsed < outageEnd {
            parts.append("payments-db outage (timeouts from checkout, payments, orders) for \(Int(outageEnd - elapsed)) s more")
        } else if elapsed >= outageEnd {
            parts.append("payments-db recovered")
        } else if elapsed >= deployment {
            parts.append("payments-db outage in \(Int(outage - elapsed)) s")
        }
        return parts.joined(separator: "; ")
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = Int(duration.seconds)
        if seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        if seconds % 60 == 0 { return "\(seconds / 60) min" }
        return "\(seconds) s"
    }

    /// Produces the events of `[from, to)` in steps of at most a second, each at a uniformly
    /// drawn time inside its step.
    private func emit(
        from: Date, to: Date, _ scenario: Scenario, liveStart: Date, moment: (Date) -> Moment,
        _ generator: inout TrafficGenerator, _ sequence: inout Int
    ) async throws {
        var stepStart = from
        while stepStart < to {
            if Task.isCancelled { return }
            let stepEnd = min(to, stepStart.addingTimeInterval(1))
            let width = stepEnd.timeIntervalSince(stepStart)
            let state = moment(stepStart)
            var batch: [String] = []
            func at() -> Date { stepStart.addingTimeInterval(width * Double(generator.random.next() % 1_000_000) / 1_000_000) }
            // A daily shape: busier in the afternoon (UTC), quiet at night.
            let hour = stepStart.timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400) / 3600
            let daily = 1 + 0.5 * sin((hour - 9) / 24 * 2 * .pi)
            for _ in 0..<poisson(scenario.rate * daily * width, &generator.random) {
                // After the rollout every checkout pod runs 1.8.3, the old errors included.
                batch.append(generator.backgroundEvent(at: at(), sequence: sequence, checkoutVersion: state.deployed ? "1.8.3" : "1.8.2"))
                sequence += 1
            }
            if let service = scenario.leakService {
                let minutes = stepStart.timeIntervalSince(liveStart) / 60
                let perMinute = scenario.leakRateNow * pow(1 + scenario.leakGrowth, minutes)
                for _ in 0..<poisson(perMinute / 60 * width, &generator.random) {
                    // The reported usage climbs towards the limit with the warnings.
                    let usage = min(511, 420 + Int(perMinute))
                    batch.append(generator.event(TrafficGenerator.leak(service, usage: usage), at: at(), version: "3.1.0",
                                                 sequence: sequence))
                    sequence += 1
                }
            }
            if state.deployed {
                for _ in 0..<poisson(scenario.rate * scenario.regressionShare * width, &generator.random) {
                    batch.append(generator.event(TrafficGenerator.regression, at: at(), version: "1.8.3", sequence: sequence)); sequence += 1
                }
            }
            if state.outage {
                for service in ["checkout", "payments", "orders"] {
                    for _ in 0..<poisson(scenario.outageRate / 3 * width, &generator.random) {
                        batch.append(generator.event(TrafficGenerator.outage(service), at: at(),
                                                     version: service == "checkout" ? (state.deployed ? "1.8.3" : "1.8.2") : "2.4.0",
                                                     sequence: sequence))
                        sequence += 1
                    }
                }
            }
            for line in batch {
                try await producer.enqueue(KafkaOutgoingMessage(topic: topic, value: Array(line.utf8)))
            }
            progress.add(batch.count)
            stepStart = stepEnd
            try await progress.waitForBacklog()
        }
    }

    private func publishDeployment(service: String, version: String, commit: String, at time: Date) async throws {
        let record = #"{"service":"\#(service)","environment":"production","version":"\#(version)","commit":"\#(commit)","region":"eu-west-1","started_at":"\#(TrafficGenerator.iso(time))"}"#
        // Queued, not awaited: the scenario's clock must not stall on a slow first delivery.
        try await producer.enqueue(KafkaOutgoingMessage(topic: deploymentsTopic, key: Array(service.utf8), value: Array(record.utf8)))
    }

    private func poisson(_ mean: Double, _ random: inout SplitMix64) -> Int {
        guard mean > 0 else { return 0 }
        if mean > 30 {
            // A normal approximation (Box-Muller) where Knuth's product would underflow.
            let u1 = Double(random.next() % 1_000_000 + 1) / 1_000_001
            let u2 = Double(random.next() % 1_000_000) / 1_000_000
            let z = (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
            return max(0, Int((mean + z * mean.squareRoot()).rounded()))
        }
        // Knuth's method: fine for the small means of one step.
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
