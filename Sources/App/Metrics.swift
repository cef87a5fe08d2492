import AnalysisJob
import HTTPServer
import Ingest
import Synchronization

/// The counters of this process in Prometheus' text format, for `/metrics`.
final class StatusBox: Sendable {
    private struct Parts: @unchecked Sendable {
        // Unchecked: each part is itself Sendable (a final class with its own lock).
        var ingest: IngestStatus?
        var analysis: AnalysisStatus?
        var http: HTTPServer?
    }

    private let parts = Mutex(Parts())

    func set(ingest: IngestStatus?, analysis: AnalysisStatus?, http: HTTPServer?) {
        parts.withLock { $0 = Parts(ingest: ingest, analysis: analysis, http: http) }
    }

    func metrics() -> String {
        let parts = parts.withLock { $0 }
        var text = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples {
                let value = sample.value == sample.value.rounded() ? String(Int64(sample.value)) : String(sample.value)
                text += "\(name)\(sample.labels) \(value)\n"
            }
        }
        if let ingest = parts.ingest {
            metric("faultline_events_ingested_total", "counter", "Events taken from Kafka, by outcome.", [
                ("{outcome=\"inserted\"}", Double(ingest.eventsInserted)),
                ("{outcome=\"duplicate\"}", Double(ingest.duplicates)),
                ("{outcome=\"dead_letter\"}", Double(ingest.deadLetters)),
                ("{outcome=\"skipped\"}", Double(ingest.skipped)),
            ])
            metric("faultline_dead_letters_total", "counter", "Messages set aside in the dead-letter topic.",
                   [("", Double(ingest.deadLetters))])
            metric("faultline_database_available", "gauge", "1 while ingest reaches PostgreSQL.",
                   [("", ingest.databaseAvailable ? 1 : 0)])
            metric("faultline_assigned_partitions", "gauge", "Kafka partitions this replica consumes.",
                   [("", Double(ingest.assignedPartitions))])
        }
        if let analysis = parts.analysis {
            let duration = analysis.lastDuration.components
            metric("faultline_analysis_leader", "gauge", "1 on the replica that runs the analysis now.", [("", analysis.isLeader ? 1 : 0)])
            metric("faultline_analysis_runs_total", "counter", "Analysis runs on this replica.", [("", Double(analysis.runs))])
            metric("faultline_analysis_failures_total", "counter", "Analysis runs that failed.", [("", Double(analysis.failures))])
            metric("faultline_analysis_last_run_seconds", "gauge", "Duration of the last analysis run.",
                   [("", Double(duration.seconds) + Double(duration.attoseconds) / 1e18)])
        }
        if let http = parts.http {
            metric("faultline_http_open_connections", "gauge", "Open HTTP connections.", [("", Double(http.openConnections))])
            metric("faultline_http_requests_total", "counter", "HTTP requests answered.", [("", Double(http.requestsServed))])
        }
        return text
    }
}
