import Foundation

/// Seeded per-bucket counts (SplitMix64 underneath), so every simulated series is the same on every run.
struct CountSampler: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// A Poisson count (Knuth's method; fine for the small means of per-bucket counts).
    mutating func poisson(_ mean: Double) -> Double {
        guard mean > 0 else { return 0 }
        if mean > 60 {
            // Normal approximation keeps large means cheap.
            let u1 = max(uniform(), 1e-12)
            let u2 = uniform()
            let z = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            return max(0, (mean + z * mean.squareRoot()).rounded())
        }
        let limit = exp(-mean)
        var product = uniform()
        var k = 0.0
        while product > limit {
            product *= uniform()
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
