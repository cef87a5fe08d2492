import Testing

@testable import Analysis

@Suite struct TemplateEvaluationTests {
    @Test func perfectGroupingScoresOne() {
        let truth = ["A", "A", "B", "C", "C"]
        let predicted = [7, 7, 1, 2, 2]
        #expect(TemplateEvaluation.groupingAccuracy(predicted: predicted, truth: truth) == 1)
        #expect(TemplateEvaluation.groupF1(predicted: predicted, truth: truth) == 1)
    }

    @Test func splitGroupLosesAllItsMessages() {
        // True group A (3 messages) is split in two; B is right.
        let truth = ["A", "A", "A", "B"]
        let predicted = [1, 1, 2, 3]
        #expect(TemplateEvaluation.groupingAccuracy(predicted: predicted, truth: truth) == 0.25)
        // Correct groups 1 (B); precision 1/3, recall 1/2 -> F1 0.4.
        #expect(abs(TemplateEvaluation.groupF1(predicted: predicted, truth: truth) - 0.4) < 1e-12)
    }

    @Test func mergedGroupsLoseBoth() {
        let truth = ["A", "A", "B", "C"]
        let predicted = [1, 1, 1, 2]
        #expect(TemplateEvaluation.groupingAccuracy(predicted: predicted, truth: truth) == 0.25)
        // Correct 1 (C) of 2 predicted and 3 true: P 0.5, R 1/3 -> F1 0.4.
        #expect(abs(TemplateEvaluation.groupF1(predicted: predicted, truth: truth) - 0.4) < 1e-12)
    }

    @Test func parsingAccuracyComparesTemplateStrings() {
        let truth = ["a <*>", "a <*>", "b"]
        let predicted = ["a <*>", "a x", "b"]
        #expect(abs(TemplateEvaluation.parsingAccuracy(predicted: predicted, truth: truth) - 2.0 / 3.0) < 1e-12)
    }

    @Test func templateF1NeedsPureTemplates() {
        // Predicted "a <*>" covers both true templates: wrong. "c" is right.
        let truth = ["a <*>", "a b", "c"]
        let predicted = ["a <*>", "a <*>", "c"]
        // Correct 1 of 2 predicted, 3 true: P 0.5, R 1/3 -> 0.4.
        #expect(abs(TemplateEvaluation.templateF1(predicted: predicted, truth: truth) - 0.4) < 1e-12)
        #expect(TemplateEvaluation.templateF1(predicted: truth, truth: truth) == 1)
    }

    @Test func canonicalTemplateAppliesTheBenchmarkRules() {
        #expect(TemplateEvaluation.canonicalTemplate("open  /var/log/x.log   ok") == "open <*> ok")
        #expect(TemplateEvaluation.canonicalTemplate("got 42 from blk_<*>") == "got <*> from <*>")
        #expect(TemplateEvaluation.canonicalTemplate("ip <*>.<*>.<*>.<*> and <*><*>") == "ip <*> and <*>")
        #expect(TemplateEvaluation.canonicalTemplate("flag=true user=root") == "flag=<*> user=<*>")
        #expect(TemplateEvaluation.canonicalTemplate("v2 stays") == "v2 stays")
    }

    @Test func evaluateKeysGroupsByCanonicalTemplate() {
        let truth = ["send <*>", "send <*>", "stop"]
        // Two spellings of the same template count as one group after canonicalisation.
        let scores = TemplateEvaluation.evaluate(predictedTemplates: ["send 1", "send <*>", "stop"], trueTemplates: truth)
        #expect(scores.ga == 1)
        #expect(scores.pa == 1)
        #expect(scores.fta == 1)
        #expect(scores.messages == 3)
    }
}
