import Analysis
import App
import Domain
import Foundation
import Ingest
import Kafka

/// `faultline bench decode`: the CPU one ingest thread spends per event, with no database and no
/// broker, split into the stages the ingest benchmark's `decode_seconds` holds: parsing and
/// decoding, fingerprinting (masking and hashing), and enriching with the deployment. The
/// messages are the ingest benchmark's. Each stage is timed on its own, on the thread's CPU
/// clock, and the whole pipeline (``MessageProcessor`` on one thread) beside them. A stage here
/// hands each event on as a copy, which the pipeline moves: the stages add up to a little more
/// than the whole.
public enum DecodeBenchmark {
    public struct Result: Sendable {
        public var events: Int
        public var bytesPerEvent: Double
        /// Microseconds of CPU per event, median of the runs.
        public var decode: Double
        public var fingerprint: Double
        public var enrich: Double
        public var pipeline: Double

        public var json: String {
            func round(_ value: Double) -> String { String(format: "%.3f", value) }
            return #"{"benchmark":"decode","events":\#(events),"bytes_per_event":\#(Int(bytesPerEvent)),"decode_us":\#(round(decode)),"fingerprint_us":\#(round(fingerprint)),"enrich_us":\#(round(enrich)),"pipeline_us":\#(round(pipeline)),"events_per_sec_per_core":\#(Int(1_000_000 / pipeline))}"#
        }
    }

    public static func run(events: Int, runs: Int, progress: (String) -> Void) throws -> Result {
        var generator = TrafficGenerator(seed: 7)
        let base = Date().addingTimeInterval(-3600)
        let messages = (0..<events).map { n in
            KafkaMessage(
                topic: "errors", partition: Int32(n % 32), offset: Int64(n / 32), key: nil,
                value: Array(generator.backgroundEvent(at: base.addingTimeInterval(Double(n % 3600)), sequence: n).utf8),
                headers: [], timestamp: nil)
        }
        let bytes = messages.reduce(0) { $0 + $1.value.count }
        var index = DeploymentIndex()
        for (n, service) in TrafficGenerator.services.enumerated() {
            index.insert(Deployment(
                service: service, environment: "production", version: "2.4.0", commit: String(repeating: "a", count: 40),
                region: "eu-west-1", startedAt: base.addingTimeInterval(-Double(n) * 600)))
        }
        let processor = MessageProcessor(deploymentsTopic: "deployments")
        let decoder = processor.decoder
        let now = Date()
        let origins = messages.map { MessageOrigin(topic: $0.topic, partition: $0.partition, offset: $0.offset) }
        var stages: [[Double]] = [[], [], [], []]
        for run in 0..<runs {
            progress("run \(run + 1) of \(runs)")
            var decoded: [ErrorEvent] = []
            decoded.reserveCapacity(events)
            stages[0].append(cpu {
                for position in messages.indices {
                    if let message = try? decoder.decode(messages[position].value, origin: origins[position], now: now) {
                        decoded += message.events
                    }
                }
            })
            guard decoded.count == events else { throw ToolError("decoded \(decoded.count) of \(events) events") }
            var fingerprints: [Fingerprint] = []
            fingerprints.reserveCapacity(events)
            stages[1].append(cpu { for event in decoded { fingerprints.append(Fingerprint(event)) } })
            var enriched: [EnrichedEvent] = []
            enriched.reserveCapacity(events)
            stages[2].append(cpu {
                for position in decoded.indices {
                    let event = decoded[position]
                    let deployment = index.context(service: event.service, environment: event.environment, version: event.version, at: event.timestamp)
                    enriched.append(EnrichedEvent(
                        event: event, fingerprint: fingerprints[position].value, template: fingerprints[position].template,
                        frames: fingerprints[position].frames, deployment: deployment, origin: origins[position]))
                }
            })
            decoded = []
            fingerprints = []
            enriched = []
            // The whole stage as ingest runs it, in parts small enough to stay on this thread.
            var stored = 0
            stages[3].append(cpu {
                var start = 0
                while start < messages.count {
                    let end = min(messages.count, start + 900)
                    stored += processor.process(Array(messages[start..<end]), index: index, now: now).batch.events.count
                    start = end
                }
            })
            guard stored == events else { throw ToolError("processed \(stored) of \(events) events") }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] * 1_000_000 / Double(events) }
        return Result(events: events, bytesPerEvent: Double(bytes) / Double(events), decode: median(stages[0]),
                      fingerprint: median(stages[1]), enrich: median(stages[2]), pipeline: median(stages[3]))
    }

    /// Seconds of this thread's CPU that `body` takes.
    private static func cpu(_ body: () -> Void) -> Double {
        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        let start = now()
        body()
        return now() - start
    }
}
