import Foundation
import Testing
@testable import Analysis

@Suite struct IncidentCorpusTests {
    @Test func theSameSeedGivesTheSameSeriesAndAnotherSeedOthers() {
        let a = IncidentCorpus(services: 3, days: 7, seed: 7), b = IncidentCorpus(services: 3, days: 7, seed: 7)
        let c = IncidentCorpus(services: 3, days: 7, seed: 8)
        #expect(a.services.map(\.counts) == b.services.map(\.counts))
        #expect(a.services.map(\.incidents) == b.services.map(\.incidents))
        #expect(a.services.map(\.counts) != c.services.map(\.counts))
    }

    @Test func everyServiceHasOneIncidentOfEachKindOnItsOwnDayAfterTheFirst() {
        let corpus = IncidentCorpus(services: 5, days: 7, seed: 1)
        #expect(corpus.services.map(\.rate).first == 1 && corpus.services.map(\.rate).last == 1000)
        for service in corpus.services {
            #expect(service.counts.count == 7 * 1440 && service.quiet.count == 2 * 1440)
            #expect(service.incidents.map(\.kind) == IncidentCorpus.Incident.Kind.allCases)
            let days = service.incidents.map { $0.start / 1440 }
            #expect(days == [1, 2, 3, 4, 5])
            #expect(service.incidents.allSatisfy { $0.start < $0.detectionEnd && $0.detectionEnd <= $0.aftermathEnd })
        }
    }

    @Test func anIncidentRaisesTheCounts() {
        let busiest = IncidentCorpus(services: 2, days: 7, seed: 3).services[1]  // 1,000 a minute
        func mean(_ range: Range<Int>) -> Double { busiest.counts[range].reduce(0, +) / Double(range.count) }
        for incident in busiest.incidents {
            let before = mean((incident.start - 10)..<incident.start)
            let during = busiest.counts[incident.start + (incident.kind == .ramp ? 29 : incident.kind == .leak ? 359 : 0)]
            let factor: Double = switch incident.kind {
            case .spike3x: 3
            case .spike10x: 10
            case .ramp: 5
            case .leak: 3
            case .levelShift: 2
            }
            // The daily shape moves the rate by at most a factor of 3 (peak to trough) over the
            // longest incident, so compare loosely; short ones are close to their factor.
            let low = incident.kind == .leak ? factor / 3 : factor * 0.6
            #expect(during >= before * low, "\(incident.kind): \(during) after \(before)")
        }
    }

    @Test func aDetectorThatNeverAlertsCatchesNothingAndRaisesNothing() {
        var silent = SpikeDetector.Configuration.default
        silent.alertPValue = 0
        let result = IncidentCorpus(services: 4, days: 7, seed: 1).evaluate(silent)
        #expect(result.outcomes.count == 20)
        #expect(result.recall == 0 && result.spikeRecall == 0)
        #expect(result.caughtAlerts == 0 && result.falseAlerts == 0 && result.noiseDayAlerts == 0)
        #expect(result.precision == 1)
        #expect(result.serviceDays == 24)
    }

    @Test func theShippedDetectorCatchesTenfoldSpikesAtBusyServices() {
        let result = IncidentCorpus(services: 6, days: 7, seed: 1, minimumRate: 100, maximumRate: 1000).evaluate()
        let tenfold = result.outcomes.filter { $0.kind == .spike10x }
        #expect(tenfold.allSatisfy { $0.delay == 0 }, "\(tenfold)")
    }
}
