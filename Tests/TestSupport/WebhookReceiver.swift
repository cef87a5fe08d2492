import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The Python webhook receiver (Tests/AlertsTests/receiver.py) in a process of its own: it
/// checks each request's signature with `secret` and lists what it got at `/_requests`.
public final class WebhookReceiver: @unchecked Sendable {
    public let process: Process
    public let port: Int

    /// Starts on `port` (0: any free port).
    public init(port: Int = 0, secret: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [repositoryRoot.appendingPathComponent("Tests/AlertsTests/receiver.py").path, "--port", "\(port)", "--secret", secret]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard let line = firstLine(of: pipe) else { throw TestFailure("receiver ended") }
        guard let bound = Int(line) else { throw TestFailure("receiver printed no port") }
        self.process = process
        self.port = bound
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var base: String { "http://127.0.0.1:\(port)" }

    /// Ends the receiver at once (SIGKILL: it goes down as a crashed receiver would).
    public func stop() async throws {
        kill(process.processIdentifier, SIGKILL)
        let process = process
        try await onThread { process.waitUntilExit() }
    }

    public struct Request: Sendable {
        public var path: String
        public var delivery: String?
        public var attempt: String?
        public var signatureOK: Bool
        public var body: String
        public var time: Double
        public var status: Int
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    /// Every request received so far, oldest first.
    public func requests() async throws -> [Request] {
        let url = URL(string: base + "/_requests")!
        let data = try await onThread { try Data(contentsOf: url) }
        let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        return list.map {
            Request(path: $0["path"] as? String ?? "", delivery: $0["delivery"] as? String, attempt: $0["attempt"] as? String,
                    signatureOK: $0["signature_ok"] as? Bool ?? false, body: $0["body"] as? String ?? "",
                    time: $0["time"] as? Double ?? 0, status: $0["status"] as? Int ?? 0)
        }
    }
}
