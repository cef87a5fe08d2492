import Analysis
import App
import DevTools
import Domain
import Foundation
import Testing
import TestSupport

/// The labelled evaluation data beside the repository (present in CI and on developers' machines).
let sharedData = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
let hasLoghub = FileManager.default.fileExists(atPath: sharedData.appendingPathComponent("loghub2k").path)

func temporaryFile(_ name: String, _ text: String? = nil) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-tools-\(UUID().uuidString)-\(name)").path
    if let text { try text.write(toFile: path, atomically: true, encoding: .utf8) }
    return path
}

@Suite struct TemplateToolTests {
    @Test(.enabled(if: hasLoghub, "needs ../shared/data/loghub2k"))
    func groupingAccuracyOnLoghubMeetsTheGoal() throws {
        let lines = try TemplateTool.evaluate(directory: sharedData.appendingPathComponent("loghub2k").path)
        #expect(lines.count == 9)
        let mean = try #require(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
        #expect(mean["system"] as? String == "mean")
        // The floor of the cross-validated figure (leave one system out), then the in-sample one.
        #expect((mean["cv_ga"] as? Double ?? 0) >= 0.93, "\(mean)")
        #expect((mean["ga"] as? Double ?? 0) >= 0.95, "\(mean)")
        #expect((mean["min_ga"] as? Double ?? 0) >= 0.90, "\(mean)")
        #expect((mean["candidates"] as? Int ?? 0) > 1, "cross-validation needs settings to choose between")
    }

    @Test func writesAGroupAndTemplatePerRowInInputOrder() throws {
        let input = try temporaryFile("in.csv", """
            LineId,Content,Other
            1,"Connection from 10.0.0.1 closed",x
            2,"Disk ""sda"" is full, 95% used",y
            3,"Connection from 10.0.0.7 closed",z

            """)
        let output = try temporaryFile("out.csv")
        #expect(try TemplateTool.analyze(input: input, column: "Content", output: output) == 3)
        let (header, rows) = CSV.parseWithHeader(try String(contentsOfFile: output, encoding: .utf8))
        #expect(header == ["LineId", "group_id", "template"])
        #expect(rows.map { $0[0] } == ["1", "2", "3"])
        #expect(rows[0][1] == rows[2][1] && rows[0][1] != rows[1][1])
        #expect(rows[0][2] == "Connection from <*> closed")
        #expect(throws: ToolError.self) { try TemplateTool.analyze(input: input, column: "Message", output: output) }
    }
}

let hasNAB = FileManager.default.fileExists(atPath: sharedData.appendingPathComponent("nab/windows.json").path)

@Suite struct SpikeToolTests {
    @Test(.enabled(if: hasNAB, "needs ../shared/data/nab"))
    func crossValidatedNABScoreHoldsItsFloor() throws {
        let lines = try SpikeTool.evaluate(directory: sharedData.appendingPathComponent("nab").path)
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let folds = objects.filter { $0["held_out"] != nil }
        #expect(folds.count == 4, "one line per NAB category held out")
        let standard = try #require(objects.last)
        #expect(standard["profile"] as? String == "standard")
        // Leave one category out: settings and threshold never saw the category scored.
        #expect((standard["cv_score"] as? Double ?? 0) >= 65, "\(standard)")
        #expect((standard["score"] as? Double ?? 0) >= 70, "\(standard)")
    }

    func series(_ values: [Double]) -> String {
        "timestamp,value\n" + values.enumerated().map { index, value in
            let date = Date(timeIntervalSince1970: 1_700_000_000 + Double(index) * 300)
            // NAB's form: `2023-11-14 22:13:20`, UTC without a zone.
            return "\(RFC3339.format(date).prefix(19).replacingOccurrences(of: "T", with: " ")),\(value)"
        }.joined(separator: "\n") + "\n"
    }

    @Test func scoresAreCausalAndInRange() throws {
        var values = (0..<600).map { 10 + Double(($0 * 7919) % 5) }
        let first = try temporaryFile("a.csv", series(values))
        values[500] = 90  // a spike
        for index in 550..<600 { values[index] = 40 }  // and a later level shift
        let second = try temporaryFile("b.csv", series(values))
        let outA = try temporaryFile("a.out"), outB = try temporaryFile("b.out")
        #expect(try SpikeTool.analyze(input: first, output: outA) == 600)
        #expect(try SpikeTool.analyze(input: second, output: outB) == 600)
        let a = CSV.parseWithHeader(try String(contentsOfFile: outA, encoding: .utf8))
        let b = CSV.parseWithHeader(try String(contentsOfFile: outB, encoding: .utf8))
        #expect(a.header == ["timestamp", "value", "anomaly_score"])
        let scoresA = a.rows.compactMap { Double($0[2]) }, scoresB = b.rows.compactMap { Double($0[2]) }
        #expect(scoresA.count == 600 && scoresB.count == 600)
        #expect(scoresA.allSatisfy { (0...1).contains($0) } && scoresB.allSatisfy { (0...1).contains($0) })
        #expect(Array(scoresA[..<500]) == Array(scoresB[..<500]), "a score may not depend on later rows")
        #expect(scoresB[500] > 0.5 && scoresB[500] > scoresA[500])
    }

    @Test func aBadRowIsAnErrorNamingItsLine() throws {
        let input = try temporaryFile("bad.csv", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n")
        #expect {
            try SpikeTool.analyze(input: input, output: try temporaryFile("bad.out"))
        } throws: { ($0 as? ToolError)?.description.contains("line 3") == true }
    }
}

@Suite struct IncidentToolTests {
    @Test func printsAFigurePerKindPerVolumeAndTheSummaryLast() throws {
        let lines = IncidentTool.evaluate(services: 4, days: 7, seed: 1)
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.filter { $0["kind"] != nil }.count == IncidentCorpus.Incident.Kind.allCases.count)
        #expect(objects.filter { $0["errors_per_minute"] != nil }.count == 3)
        let summary = try #require(objects.last)
        for key in ["precision", "recall", "spike_recall", "mean_delay_buckets", "false_alerts_per_service_day", "noise_day_alerts"] {
            #expect(summary[key] != nil, "no \(key) in \(summary)")
        }
        #expect(summary["incidents"] as? Int == 20 && summary["services"] as? Int == 4)
        #expect(IncidentTool.evaluate(services: 4, days: 7, seed: 1) == lines, "a fixed seed gives fixed figures")
    }

    @Test func optionsOutsideTheirRangeAreRefusedByName() async throws {
        // The series are held in memory, so sizes are bounded before anything is generated.
        for (arguments, named) in [(["--services", "0"], "--services"), (["--services", "100000"], "--services"),
                                   (["--days", "6"], "--days"), (["--days", "3650"], "--days")] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try faultlineBinary())
            process.arguments = ["eval", "incidents"] + arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = try await onThread { () -> String in
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                return String(decoding: data, as: UTF8.self)
            }
            #expect(process.terminationStatus != 0 && text.contains(named), "\(arguments): \(text)")
        }
    }
}

@Suite struct ClusterToolTests {
    @Test func theSimulatorsPatternsAreFoundWithTheirTitles() throws {
        let lines = ClusterTool.evaluate(seed: 42)
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let summary = try #require(objects.last)
        #expect(summary["groups"] as? Int == 16 && summary["patterns"] as? Int == 8)
        #expect((summary["ari"] as? Double ?? 0) >= 0.9, "\(lines.joined(separator: "\n"))")
        // No cluster mixes the coupon errors with the query errors (they share no word).
        for cluster in objects.dropLast() {
            let patterns = cluster["patterns"] as? [String] ?? []
            #expect(!(patterns.contains("ValidationError") && patterns.contains("QueryError")), "\(cluster)")
            #expect((cluster["title"] as? String ?? "").contains(": "), "titled by type and template: \(cluster)")
        }
        #expect(ClusterTool.evaluate(seed: 42) == lines)
    }
}

@Suite struct AnalysisBenchmarkTests {
    /// docs/operations.md sizes the analyze memory limit by a rule (a base, plus so much per awake
    /// series and per group): a leader taking over thousands of groups stays under it.
    @Test func aTakeoverStaysWithinTheMemoryTheOperationsGuideGives() async throws {
        let guide = try DocumentationConsistencyTests.read("docs/operations.md").replacingOccurrences(of: "\n", with: " ")
        let rule = try #require(guide.firstMatch(of: /about (\d+) MiB, plus (\d+) KB per awake series, plus (\d+) KB per group/),
                                "docs/operations.md no longer gives the rule")
        let (base, perAwake, perGroup) = (Double(rule.1)!, Double(rule.2)!, Double(rule.3)!)

        let directory = NSTemporaryDirectory() + "analysis-bench-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try faultlineBinary())
        process.arguments = ["bench", "analysis", "--services", "20", "--groups", "2000", "--days", "1", "--rate", "30",
                             "--api-seconds", "1", "--directory", directory]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let (text, log) = try await onThread { () -> (String, String) in
            let log = errors.fileHandleForReading.readDataToEndOfFile()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (String(decoding: data, as: UTF8.self), String(decoding: log, as: UTF8.self))
        }
        #expect(process.terminationStatus == 0, "\(log)")
        let line = try #require(text.split(separator: "\n").last.map(String.init), "no result line: \(log)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let groups = try #require(result["groups"] as? Int)
        let awake = try #require(result["awake_series"] as? Int)
        let rss = try #require(result["rss_mib"] as? Double)
        #expect(result["series"] as? Int == groups + 20, "a series per group and per service: \(line)")
        #expect(awake > 20 && awake < groups, "busy series awake, the long tail dormant: \(line)")
        let limit = base + (perAwake * Double(awake) + perGroup * Double(groups)) / 1024
        print("analysis bench: \(line)")
        #expect(rss > 0 && rss <= limit, "peak \(rss) MiB against the guide's \(limit) MiB for \(awake) awake of \(groups) groups")
    }
}
