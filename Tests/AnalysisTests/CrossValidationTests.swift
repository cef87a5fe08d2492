import Foundation
import Testing
@testable import Analysis

@Suite struct CrossValidationTests {
    @Test func aHeldOutGroupHasNoSayInTheChoiceMadeForIt() {
        // Candidate 1 is best on average only because of group 2; candidate 0 on the others.
        let scores: [[Double]] = [
            [0.9, 0.9, 0.5],
            [0.8, 0.8, 1.0],
        ]
        let folds = CrossValidation.leaveOneGroupOut(scores)
        #expect(folds.map(\.heldOut) == [0, 1, 2])
        // Without group 2, candidate 0 is better (0.9 against 0.8), so group 2 scores 0.5.
        #expect(folds[2] == CrossValidation.Fold(heldOut: 2, candidate: 0, score: 0.5))
        // Without group 0: candidate 0 has (0.9 + 0.5) / 2 = 0.7, candidate 1 has 0.9.
        #expect(folds[0] == CrossValidation.Fold(heldOut: 0, candidate: 1, score: 0.8))
        #expect(folds[1] == CrossValidation.Fold(heldOut: 1, candidate: 1, score: 0.8))
    }

    @Test func tiesGoToTheFirstCandidate() {
        let folds = CrossValidation.leaveOneGroupOut([[1, 1], [1, 1]])
        #expect(folds.allSatisfy { $0.candidate == 0 })
        #expect(CrossValidation.leaveOneGroupOut([[1]]).isEmpty, "one group leaves nothing to choose on")
    }

    @Test func parallelMapKeepsTheOrder() {
        #expect(parallelMap(1000) { $0 * $0 } == (0..<1000).map { $0 * $0 })
        #expect(parallelMap(0) { $0 }.isEmpty)
    }
}

@Suite struct NABCrossValidationTests {
    /// A file whose window is found at row 40 (score 0.9), with a false alarm at row 80 scoring `noise`.
    func scored(noise: Double) -> NABFile {
        var scores = [Double](repeating: 0, count: 100)
        scores[40] = 0.9
        scores[80] = noise
        return NABFile(name: "f", scores: scores, windows: [40...59])
    }

    @Test func withTheSameBestThresholdEverywhereTheCrossValidatedScoreIsTheInSampleOne() {
        // Group 1's false alarm scores above its window; 0.9 is still the best threshold there.
        let files = [[scored(noise: 0.5), scored(noise: 0.5), scored(noise: 0.95)]]
        let result = NABScorer.crossValidate(files, groups: [0, 0, 1], profile: .standard)
        #expect(result.folds.count == 2)
        #expect(result.folds.map(\.threshold) == [0.9, 0.9])
        let inSample = NABScorer.evaluate(files[0], profile: .standard)
        // Every fold uses the in-sample threshold here, so the pooled score is the in-sample one.
        #expect(abs(result.normalized - inSample.normalized) < 1e-9)
    }

    @Test func aCandidateThatOnlyWinsOnTheHeldOutGroupIsNotChosenForIt() {
        // Candidate 1 finds group 1's window, candidate 0 does not; on group 0 candidate 0 is
        // better (candidate 1 raises a false alarm there).
        let found = scored(noise: 0)
        var missed = found
        missed.scores[40] = 0
        let noisy = scored(noise: 0.95)
        let files = [[found, missed], [noisy, found]]
        let result = NABScorer.crossValidate(files, groups: [0, 1], profile: .standard)
        #expect(result.folds.map(\.candidate) == [1, 0])
        // Held out, group 1 is scored with candidate 0, which misses its window: the null score.
        #expect(result.folds[1].raw == result.folds[1].null)
        #expect(result.folds[1].normalized == 0)
        #expect(result.normalized < NABScorer.evaluate(files[0], profile: .standard).normalized)
    }
}
