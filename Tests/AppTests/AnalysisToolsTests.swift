import Analysis
import App
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
        #expect((mean["ga"] as? Double ?? 0) >= 0.95, "\(mean)")
        #expect((mean["min_ga"] as? Double ?? 0) >= 0.90, "\(mean)")
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

@Suite struct SpikeToolTests {
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
