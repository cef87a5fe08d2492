import Foundation

import Analysis

/// Seeded samples for simulated series: the same on every run.
extension SeededGenerator {
    mutating func uniform() -> Double { nextDouble() }
    mutating func gaussian() -> Double { nextGaussian() }

    /// A Poisson count (Knuth's method for the small means of per-bucket counts, a normal
    /// approximation for large ones).
    mutating func poisson(_ mean: Double) -> Double {
        guard mean > 0 else { return 0 }
        if mean > 30 { return max(0, (mean + mean.squareRoot() * nextGaussian()).rounded()) }
        let limit = exp(-mean)
        var product = nextDouble()
        var k = 0.0
        while product > limit {
            product *= nextDouble()
            k += 1
        }
        return k
    }
}

/// The shipped rule file: `rules/recommendations.json` at the repository root.
func shippedRulesJSON(filePath: String = #filePath) throws -> String {
    let tests = URL(fileURLWithPath: filePath).deletingLastPathComponent()
    let root = tests.deletingLastPathComponent().deletingLastPathComponent()
    for candidate in ["rules/recommendations.json", "recommendations.json"] {
        let url = root.appendingPathComponent(candidate)
        if FileManager.default.fileExists(atPath: url.path) { return try String(contentsOf: url, encoding: .utf8) }
    }
    throw CocoaError(.fileNoSuchFile)
}
