import Foundation

/// Labelled per-minute error counts shaped like a service's, for measuring the spike detector on
/// the problem it has in production rather than on someone else's benchmark.
///
/// Every service gets a base rate (spread evenly on a log scale from `minimumRate` to
/// `maximumRate` errors a minute across the services), a daily shape (peak three times the
/// trough, at a random hour) and overdispersed noise (a gamma-distributed rate per minute, then
/// Poisson counts). Its main series is `days` long; the first day only teaches the detector, and
/// on each later day but the last one incident of a kind in `Incident.Kind` begins at a random
/// minute (the level shift lasts to the end). Each service also gets a quiet series of two days
/// with no incident: the second day measures alerts on pure noise.
///
/// Deterministic: the same seed gives the same series.
public struct IncidentCorpus: Sendable {
    public struct Incident: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            /// Three times the rate for 2 minutes.
            case spike3x = "spike_3x_2min"
            /// Ten times the rate for 1 minute.
            case spike10x = "spike_10x_1min"
            /// The rate climbs linearly to five times over 30 minutes, then falls back.
            case ramp = "ramp_5x_30min"
            /// The rate climbs linearly to three times over 6 hours (a leak), then falls back.
            case leak = "leak_3x_6h"
            /// The rate doubles for good (a deployment that breaks something).
            case levelShift = "level_shift_2x"

            /// The day of the main series it happens on (day 0 teaches the detector).
            var day: Int {
                switch self {
                case .spike3x: 1
                case .spike10x: 2
                case .ramp: 3
                case .leak: 4
                case .levelShift: 5
                }
            }

            /// Minutes the rate is raised (the level shift: until the series ends).
            var length: Int {
                switch self {
                case .spike3x: 2
                case .spike10x: 1
                case .ramp: 30
                case .leak: 360
                case .levelShift: Int.max / 4
                }
            }

            /// Minutes from its start within which an alert counts as catching it.
            var detectionWindow: Int {
                switch self {
                case .spike3x: 2
                case .spike10x: 1
                case .ramp: 30
                case .leak: 360
                case .levelShift: 60
                }
            }

            /// Whether it counts towards the spike goal (3× or larger, caught within a bucket).
            public var isSpike: Bool { self == .spike3x || self == .spike10x }

            /// The factor on the rate `minute` minutes after the start.
            func factor(_ minute: Int) -> Double {
                guard minute >= 0, minute < length else { return 1 }
                switch self {
                case .spike3x: return 3
                case .spike10x: return 10
                case .ramp: return 1 + 4 * Double(minute + 1) / Double(length)
                case .leak: return 1 + 2 * Double(minute + 1) / Double(length)
                case .levelShift: return 2
                }
            }
        }

        public var kind: Kind
        public var start: Int
        /// Alerts from `start` up to here catch it.
        public var detectionEnd: Int
        /// Alerts after `detectionEnd` up to here are its aftermath: neither caught nor false.
        public var aftermathEnd: Int
    }

    public struct Service: Sendable {
        /// Errors a minute at the daily mean.
        public var rate: Double
        public var counts: [Double]
        public var incidents: [Incident]
        /// Two days of noise with no incident.
        public var quiet: [Double]
        /// Where in the day the daily shape peaks (0 to 1).
        public var peak: Double

        /// The mean the rate had at `minute` of the main series had no incident happened.
        public func usualMean(_ minute: Int) -> Double {
            let phase = Double(minute) / Double(IncidentCorpus.minutesPerDay) - peak
            return rate * (1 + 0.5 * cos(2 * Double.pi * phase))
        }
    }

    public static let minutesPerDay = 1440
    /// Minutes after an incident's raised rate ends during which the detector may still alert
    /// about it (a rate falling back is news too).
    public static let aftermath = 60

    public var services: [Service]
    public var days: Int
    /// The rate's extra variance: a minute's count is negative binomial with variance
    /// `mean + mean² / dispersion` (the gamma rate's shape).
    public var dispersion: Double

    public init(services count: Int = 100, days: Int = 7, seed: UInt64 = 1, minimumRate: Double = 1,
                maximumRate: Double = 1000, dispersion: Double = 25) {
        self.days = max(days, Incident.Kind.allCases.count + 2)
        self.dispersion = dispersion
        let minutes = self.days * Self.minutesPerDay
        services = (0..<max(count, 1)).map { index in
            var random = SeededGenerator(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
            let position = count > 1 ? Double(index) / Double(count - 1) : 0
            let rate = minimumRate * pow(maximumRate / minimumRate, position)
            let peak = random.nextDouble()
            var incidents: [Incident] = []
            for kind in Incident.Kind.allCases {
                // Far enough from the day's end for the incident and its aftermath.
                let latest = kind == .levelShift ? Self.minutesPerDay - 1 : Self.minutesPerDay - kind.length - Self.aftermath
                let start = kind.day * Self.minutesPerDay + random.nextInt(below: max(latest, 1))
                let end = kind == .levelShift ? minutes : start + kind.length
                incidents.append(Incident(kind: kind, start: start, detectionEnd: start + kind.detectionWindow,
                                          aftermathEnd: min(end + Self.aftermath, minutes)))
            }
            let shape = Service(rate: rate, counts: [], incidents: [], quiet: [], peak: peak)
            func series(_ length: Int, _ incidents: [Incident], _ random: inout SeededGenerator) -> [Double] {
                (0..<length).map { minute in
                    var mean = shape.usualMean(minute)
                    for incident in incidents { mean *= incident.kind.factor(minute - incident.start) }
                    return Self.poisson(mean * Self.gamma(shape: dispersion, &random) / dispersion, &random)
                }
            }
            let counts = series(minutes, incidents, &random)
            let quiet = series(2 * Self.minutesPerDay, [], &random)
            return Service(rate: rate, counts: counts, incidents: incidents, quiet: quiet, peak: peak)
        }
    }

    /// A gamma variate with mean `shape` (Marsaglia and Tsang; shape ≥ 1).
    static func gamma(shape: Double, _ random: inout SeededGenerator) -> Double {
        let d = shape - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = random.nextGaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = random.nextDouble()
            if u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// A Poisson count: by multiplication of uniforms for small means, from the normal
    /// approximation (rounded, never negative) above 50.
    static func poisson(_ mean: Double, _ random: inout SeededGenerator) -> Double {
        guard mean > 0 else { return 0 }
        if mean > 50 { return max(0, (mean + mean.squareRoot() * random.nextGaussian()).rounded()) }
        let limit = exp(-mean)
        var product = random.nextDouble()
        var count = 0.0
        while product > limit {
            product *= random.nextDouble()
            count += 1
        }
        return count
    }

    // MARK: Scoring

    /// The spikes of 3× or more that a detector knowing each minute's usual mean and the noise's
    /// law exactly would catch within a bucket, testing each minute alone: it alerts where the
    /// count's negative-binomial tail probability is below `pValue` and the count passes
    /// `configuration`'s gates. No detector does much better at that rate of false alerts
    /// (one that also sums two minutes gains a little); what it misses is hidden in the noise.
    public func oracleSpikeRecall(pValue: Double, configuration: SpikeDetector.Configuration = .default,
                                  rates: Range<Double> = 0..<Double.infinity) -> Double {
        var spikes = 0, caught = 0
        for service in services where rates.contains(service.rate) {
            for incident in service.incidents where incident.kind.isSpike {
                spikes += 1
                let minutes = incident.start..<min(incident.start + 2, incident.detectionEnd)
                let seen = minutes.contains { minute in
                    let mean = service.usualMean(minute), count = service.counts[minute]
                    let passes = count >= configuration.minimumCount && count >= mean * (1 + configuration.minimumRelativeIncrease)
                    return passes && CountModel.negativeBinomialUpperTail(count, mean: mean, dispersion: 1 / dispersion) < pValue
                }
                if seen { caught += 1 }
            }
        }
        return spikes == 0 ? 0 : Double(caught) / Double(spikes)
    }

    /// What a detector made of one incident.
    public struct Outcome: Sendable, Equatable {
        public var kind: Incident.Kind
        public var rate: Double
        /// Minutes from the start to the first alert in the detection window, or nil if missed.
        public var delay: Int?
    }

    public struct Result: Sendable {
        public var outcomes: [Outcome]
        /// Alerts inside a detection window, and alerts outside every window and aftermath.
        public var caughtAlerts: Int
        public var falseAlerts: Int
        /// Alerts on the pure-noise days.
        public var noiseDayAlerts: Int
        public var serviceDays: Int
        /// Per service, in the corpus's order: its rate, false alerts and pure-noise alerts.
        public var perService: [(rate: Double, falseAlerts: Int, noiseDayAlerts: Int)] = []

        public var precision: Double {
            caughtAlerts + falseAlerts == 0 ? 1 : Double(caughtAlerts) / Double(caughtAlerts + falseAlerts)
        }
        public var recall: Double { share(outcomes) { $0.delay != nil } }
        /// Spikes of 3× or more caught at their first or second minute.
        public var spikeRecall: Double { share(outcomes.filter(\.kind.isSpike)) { ($0.delay ?? .max) <= 1 } }
        public var meanDelay: Double {
            let delays = outcomes.compactMap(\.delay)
            return delays.isEmpty ? 0 : Double(delays.reduce(0, +)) / Double(delays.count)
        }
        public var falseAlertsPerServiceDay: Double { serviceDays == 0 ? 0 : Double(falseAlerts) / Double(serviceDays) }

        func share(_ outcomes: [Outcome], _ caught: (Outcome) -> Bool) -> Double {
            outcomes.isEmpty ? 0 : Double(outcomes.filter(caught).count) / Double(outcomes.count)
        }
    }

    /// Runs a fresh detector of `configuration` over every series, alerting as the analysis
    /// does (an alert that is a spike or a level shift), and scores the alerts after the first day.
    public func evaluate(_ configuration: SpikeDetector.Configuration = .default) -> Result {
        let perService = parallelMap(services.count) { index -> Result in
            let service = services[index]
            var outcomes = service.incidents.map { Outcome(kind: $0.kind, rate: service.rate, delay: nil) }
            var caught = 0, false_ = 0, noise = 0
            var detector = SpikeDetector(configuration: configuration)
            for (minute, value) in service.counts.enumerated() {
                let point = detector.update(value)
                guard minute >= Self.minutesPerDay, point.isAlert && (point.isSpike || point.isLevelShift) else { continue }
                if let hit = service.incidents.firstIndex(where: { (($0.start)..<$0.detectionEnd).contains(minute) }) {
                    caught += 1
                    if outcomes[hit].delay == nil { outcomes[hit].delay = minute - service.incidents[hit].start }
                } else if !service.incidents.contains(where: { ($0.start..<$0.aftermathEnd).contains(minute) }) {
                    false_ += 1
                }
            }
            var quiet = SpikeDetector(configuration: configuration)
            for (minute, value) in service.quiet.enumerated() {
                let point = quiet.update(value)
                if minute >= Self.minutesPerDay && point.isAlert && (point.isSpike || point.isLevelShift) { noise += 1 }
            }
            return Result(outcomes: outcomes, caughtAlerts: caught, falseAlerts: false_, noiseDayAlerts: noise,
                          serviceDays: days - 1, perService: [(service.rate, false_, noise)])
        }
        return Result(outcomes: perService.flatMap(\.outcomes), caughtAlerts: perService.reduce(0) { $0 + $1.caughtAlerts },
                      falseAlerts: perService.reduce(0) { $0 + $1.falseAlerts },
                      noiseDayAlerts: perService.reduce(0) { $0 + $1.noiseDayAlerts },
                      serviceDays: perService.reduce(0) { $0 + $1.serviceDays }, perService: perService.flatMap(\.perService))
    }
}
