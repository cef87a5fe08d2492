import Foundation
import Testing
@testable import Analysis

/// 100 rows: probation is rows 0..<15; one window at rows 40...59 (width 20).
func file(_ detections: [Int], rows: Int = 100, windows: [ClosedRange<Int>] = [40...59]) -> NABFile {
    var scores = [Double](repeating: 0, count: rows)
    for d in detections { scores[d] = 1 }
    return NABFile(name: "f", scores: scores, windows: windows)
}

@Suite struct NABScorerTests {
    @Test func scaledSigmoidMatchesNAB() {
        #expect(abs(NABScorer.scaledSigmoid(-1) - 0.98661) < 1e-5)
        #expect(abs(NABScorer.scaledSigmoid(-0.5) - 0.84828) < 1e-5)
        #expect(NABScorer.scaledSigmoid(0) == 0)
        #expect(NABScorer.scaledSigmoid(3.5) == -1)
        #expect(NABScorer.probationLength(rows: 4033) == 604)
        #expect(NABScorer.probationLength(rows: 10_000) == 750)
    }

    @Test func perfectDetectorScoresHundred() {
        let r = NABScorer.evaluate([file([40]), file([10, 70], windows: [70...79])], profile: .standard)
        #expect(abs(r.normalized - 100) < 1e-9)  // the detection at row 10 is probationary
        #expect(abs(r.raw - 2) < 1e-9)
        #expect(r.threshold == 1)
    }

    @Test func nullDetectorScoresZero() {
        let r = NABScorer.evaluate([file([]), file([])], profile: .standard)
        #expect(r.normalized == 0)
        #expect(r.null == -2)
        #expect(r.perfect == 2)
    }

    @Test func falsePositiveFarFromWindowsCostsFpWeight() {
        // A detection before any window costs the full fpWeight.
        for profile in NABProfile.all {
            let raw = NABScorer.rawScore([file([20, 40])], profile: profile, threshold: 0.5)
            #expect(abs(raw - (1 - profile.fpWeight)) < 1e-9)
        }
        // Just after a window it costs almost nothing: S(1/19) * 0.11.
        let after = NABScorer.rawScore([file([40, 60])], profile: .standard, threshold: 0.5)
        let expected = 1 + 0.11 * NABScorer.scaledSigmoid(1.0 / 19.0)
        #expect(abs(after - expected) < 1e-9)
        #expect(after > 1 - 0.11)
    }

    @Test func earlyDetectionBeatsLateAndMissCostsFnWeight() {
        let early = NABScorer.rawScore([file([42])], profile: .standard, threshold: 0.5)
        let late = NABScorer.rawScore([file([57])], profile: .standard, threshold: 0.5)
        #expect(early > late && late > 0)
        // Row 50 sits half way: position -(59 - 50 + 1) / 20 = -0.5.
        let middle = NABScorer.rawScore([file([50])], profile: .standard, threshold: 0.5)
        #expect(abs(middle - NABScorer.scaledSigmoid(-0.5) / NABScorer.scaledSigmoid(-1)) < 1e-9)
        #expect(NABScorer.rawScore([file([])], profile: .rewardLowFNRate, threshold: 0.5) == -2)
        // Several detections in one window count once.
        #expect(NABScorer.rawScore([file([40, 45, 50])], profile: .standard, threshold: 0.5) == 1)
    }

    @Test func thresholdIsOptimisedOverTheCorpus() {
        // Scores: 0.9 at the window start, 0.6 on a far false positive, 0.3 on many false positives.
        var scores = [Double](repeating: 0, count: 100)
        scores[40] = 0.9
        scores[20] = 0.6
        for t in 80..<100 { scores[t] = 0.3 }
        let f = NABFile(name: "f", scores: scores, windows: [40...59])
        let r = NABScorer.evaluate([f], profile: .standard)
        #expect(r.threshold == 0.9)
        #expect(abs(r.normalized - 100) < 1e-9)
        let table = NABScorer.sweep([f], profile: .standard)
        #expect(table.map(\.threshold) == [1.1, 0.9, 0.6, 0.3, 0])
        #expect(abs(table[2].score - 0.89) < 1e-9)
        // Normalisation: 100 * (raw - null) / (perfect - null).
        #expect(abs(100 * (table[2].score + 1) / 2 - 94.5) < 1e-9)
    }
}
