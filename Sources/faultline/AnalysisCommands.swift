import App
import DevTools
import ArgumentParser
import Foundation
import Logging

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks; each prints a final JSON line.",
        subcommands: [BenchIngest.self, BenchDecode.self, BenchTemplates.self, BenchKMeans.self, BenchAlertLatency.self, BenchHTTP.self, BenchSoak.self, BenchIsolation.self, BenchAnalysis.self])
}

/// Prints lines as they are, or a tool's error as one line on stderr with exit status 1.
func report(_ body: () throws -> [String]) throws {
    do {
        for line in try body() { print(line) }
    } catch let error as ToolError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

func report(_ body: () async throws -> [String]) async throws {
    do {
        for line in try await body() { print(line) }
    } catch let error as ToolError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct Analyze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one analysis on a file.", subcommands: [AnalyzeTemplates.self, AnalyzeSpikes.self])
}

struct AnalyzeTemplates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Mine message templates from a CSV column: writes each row's group id and template (<*> for variables), in input order.")
    @Option(help: "Input CSV with a header row.") var input: String
    @Option(help: "The column holding the messages.") var column = "Content"
    @Option(help: "Output CSV: [LineId,]group_id,template.") var output: String

    func run() async throws {
        try report { ["\(try TemplateTool.analyze(input: input, column: column, output: output)) rows written to \(output)"] }
    }
}

struct AnalyzeSpikes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spikes",
        abstract: "Score a time series: input timestamp,value; output timestamp,value,anomaly_score (0–1, causal).")
    @Option(help: "Input CSV: timestamp,value.") var input: String
    @Option(help: "Output CSV: timestamp,value,anomaly_score.") var output: String

    func run() async throws {
        try report { ["\(try SpikeTool.analyze(input: input, output: output)) rows written to \(output)"] }
    }
}

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the analysis on labelled data; one JSON object per line, the summary last.",
        subcommands: [EvalTemplates.self, EvalSpikes.self, EvalIncidents.self, EvalClusters.self])
}

struct EvalTemplates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Grouping and parsing accuracy (GA, FGA, PA, FTA) on Loghub-2k systems, per system and their mean.")
    @Argument(help: "Folder of <System>/<System>_2k.log_structured_corrected.csv (e.g. ../shared/data/loghub2k).") var directory: String

    func run() async throws { try report { try TemplateTool.evaluate(directory: directory) } }
}

struct EvalSpikes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spikes",
        abstract: "NAB scores (standard, reward low FP, reward low FN) of the spike detector on a NAB corpus.")
    @Argument(help: "Folder with windows.json and the series it names (e.g. ../shared/data/nab).") var directory: String

    func run() async throws { try report { try SpikeTool.evaluate(directory: directory) } }
}

struct EvalIncidents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract: "The spike detector on generated per-minute error counts with labelled incidents: recall and delay per kind and per volume, precision, false alerts per service-day, alerts on pure noise.")
    @Option(help: "Services, 1 to 1,000 (base rates spread from 1 to 1,000 errors a minute).") var services = 100
    @Option(help: "Days of each service's series, 7 to 30 (one to learn, five with an incident each, the rest quiet).") var days = 7
    @Option(help: "Seed of the generator.") var seed: UInt64 = 1

    // The series are held in memory: 1,000 services over 30 days are about 350 MB.
    func validate() throws {
        guard (1...1000).contains(services) else { throw ValidationError("--services must be 1 to 1,000, not \(services)") }
        guard (7...30).contains(days) else { throw ValidationError("--days must be 7 to 30, not \(days)") }
    }

    func run() async throws {
        try report { IncidentTool.evaluate(services: services, days: days, seed: seed) }
    }
}

struct EvalClusters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusters",
        abstract: "The pattern clusters of the simulator's error groups against the pattern that made each group: one line per cluster, then the adjusted Rand index (ari).")
    @Option(help: "Seed of the messages and of k-means.") var seed: UInt64 = 42

    func run() async throws { try report { ClusterTool.evaluate(seed: seed) } }
}

struct BenchTemplates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Template mining speed: the same messages through Faultline's miner and Drain3 (pip install drain3), one core each.")
    @Option(help: "Loghub-2k folder whose messages are mined.") var data = "../shared/data/loghub2k"
    @Option(help: "Messages mined (the data is repeated to reach it).") var messages = 300_000
    @Option(help: "Runs on each side, taking turns; the median counts.") var runs = 5

    func run() async throws {
        try report { try TemplateTool.bench(directory: data, minimumMessages: max(1, messages), runs: max(1, runs)) }
    }
}

struct BenchHTTP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "wrk against GET /v1/insights of Faultline (a private PostgreSQL behind it) and against nginx serving the same bytes (apt-get install wrk nginx).")
    @Option(help: "wrk connections.") var connections = 64
    @Option(help: "Seconds each side is loaded.") var duration = 10
    @Option(help: "nginx worker_processes: auto (one per core) or a number.") var nginxWorkers = "auto"
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-bench-http"

    func validate() throws {
        guard (1...10_000).contains(connections), (1...600).contains(duration) else {
            throw ValidationError("--connections must be 1 to 10000 and --duration 1 to 600")
        }
    }

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        // Requests are counted and timed as in production.
        FaultlineMetrics.bootstrap()
        var options = HTTPBenchmark.Options()
        options.connections = connections
        options.duration = duration
        options.nginxWorkers = nginxWorkers
        options.directory = directory
        let benchmark = HTTPBenchmark(options: options, logger: Logger(label: "faultline.bench"))
        try await report {
            [try await benchmark.run { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }]
        }
    }
}

struct BenchKMeans: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmeans",
        abstract: "k-means speed and inertia against scikit-learn on the same data and initial centroids (pip install scikit-learn threadpoolctl).")
    @Option(help: "Points.") var n = 100_000
    @Option(help: "Dimensions.") var d = 64
    @Option(help: "Clusters.") var k = 32
    @Option(help: "Seed of the data and the initial centroids.") var seed: UInt64 = 42
    @Option(help: "Fits on each side; the fastest counts.") var repeats = 3

    func validate() throws {
        guard (1...10_000_000).contains(n), (1...4096).contains(d), (1...n).contains(k) else {
            throw ValidationError("need 1 ≤ k ≤ n ≤ 10,000,000 and 1 ≤ d ≤ 4096")
        }
    }

    func run() async throws {
        try report { try KMeansBench.run(n: n, d: d, k: k, seed: seed, repeats: max(1, repeats)) }
    }
}

struct BenchIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Ingest events through the real pipeline and compare with psql \\copy of the same rows (use a release build).")
    @Option(help: "Number of events.") var events = 1_000_000
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-bench"

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        let result = try await IngestBenchmark.run(events: events, directory: directory, logger: Logger(label: "faultline.bench")) {
            FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
        }
        print(result.json)
    }
}

struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "CPU per event of ingest's decoding stage on one thread, stage by stage, with no database or broker (use a release build).")
    @Option(help: "Number of events.") var events = 200_000
    @Option(help: "Runs; the median of each stage is reported.") var runs = 5

    func run() throws {
        let result = try DecodeBenchmark.run(events: max(1, events), runs: max(1, runs)) {
            FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
        }
        print(result.json)
    }
}

struct BenchIsolation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "isolation",
        abstract: "Ingest the same events with no API load, under wrk on /healthz, with made-up keys and with a valid key on the list endpoints (apt-get install wrk; use a release build).")
    @Option(help: "Number of events.") var events = 200_000
    @Option(help: "wrk connections.") var connections = 64
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-isolation"

    func validate() throws {
        guard (1...10_000_000).contains(events), (1...1000).contains(connections) else {
            throw ValidationError("need 1 ≤ events ≤ 10,000,000 and 1 ≤ connections ≤ 1000")
        }
    }

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        var options = IsolationBenchmark.Options(binary: Bundle.main.executablePath ?? CommandLine.arguments[0])
        options.events = events
        options.connections = connections
        options.directory = directory
        let result = try await IsolationBenchmark.run(options, logger: Logger(label: "faultline.bench")) {
            FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
        }
        print(result.json)
    }
}

struct BenchAnalysis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analysis",
        abstract: "The analysis at a real installation's size: fills a fresh database with Zipf-shaped groups and per-minute counts, then times a leader takeover and a steady run, their peak memory, and the API's list endpoints (use a release build).")
    @Option(help: "Services.") var services = 1000
    @Option(help: "Error groups.") var groups = 100_000
    @Option(help: "Days of per-minute counts.") var days = 7
    @Option(help: "Errors per second over all groups.") var rate = 200.0
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-analysis-bench"
    @Option(help: "Seconds of load on the API's list endpoints.") var apiSeconds = 10

    func validate() throws {
        guard (1...100_000).contains(services), (1...10_000_000).contains(groups), (1...90).contains(days), rate > 0, rate <= 1_000_000,
            (1...600).contains(apiSeconds)
        else {
            throw ValidationError(
                "need 1 ≤ services ≤ 100,000, 1 ≤ groups ≤ 10,000,000, 1 ≤ days ≤ 90, 0 < rate ≤ 1,000,000 and 1 ≤ api-seconds ≤ 600")
        }
    }

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        var options = AnalysisBenchmark.Options(binary: Bundle.main.executablePath ?? CommandLine.arguments[0])
        options.services = services
        options.groups = groups
        options.days = days
        options.errorsPerSecond = rate
        options.directory = directory
        options.apiSeconds = apiSeconds
        let result = try await AnalysisBenchmark.run(options, logger: Logger(label: "faultline.bench")) {
            FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
        }
        print(result.json)
    }
}

struct BenchSoak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Run faultline serve for minutes with hostile messages, API load and a flapping webhook receiver; account for every message.")
    @Option(help: "How long to produce.") var minutes = 10.0
    @Option(help: "Messages per second.") var rate = 200
    @Option(help: "Share of hostile messages.") var hostile = 0.01
    @Option(help: "Keep-alive API clients.") var apiClients = 4
    @Option(help: "Folders of extra hostile inputs (files the decoder refuses), e.g. Fuzz/corpus/decoder.") var corpus: [String] = []
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-soak"

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        var options = SoakBenchmark.Options(binary: Bundle.main.executablePath ?? CommandLine.arguments[0])
        options.minutes = minutes
        options.rate = rate
        options.hostileFraction = hostile
        options.apiClients = apiClients
        options.corpora = corpus.isEmpty && FileManager.default.fileExists(atPath: "Fuzz/corpus") ? ["Fuzz/corpus"] : corpus
        options.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let result = try await SoakBenchmark.run(options, logger: Logger(label: "faultline.bench")) {
            FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
        }
        print(result.json)
        if result.produced != result.stored + result.deadLettered || result.restarts > 0 { throw ExitCode(1) }
    }
}

struct BenchAlertLatency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alert-latency",
        abstract: "Time from the first event of a spike entering Kafka to its webhook arriving, over several runs.")
    @Option(help: "Number of spikes measured.") var runs = 5
    @Option(help: "The analysis interval (FAULTLINE_ANALYSIS_INTERVAL), e.g. 15s.") var interval = "15s"
    @Option(help: "Working folder (a private PostgreSQL is created there).") var directory = "/tmp/faultline-bench-alerts"

    func run() async throws {
        Logging.bootstrap(format: .text, level: .error)
        let interval = try FaultlineConfiguration.fromEnvironment(["FAULTLINE_ANALYSIS_INTERVAL": interval]).analysisInterval
        let result = try await AlertLatencyBenchmark.run(
            runs: max(1, runs), interval: interval, directory: directory, logger: Logger(label: "faultline.bench")
        ) { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
        print(result.json)
    }
}
