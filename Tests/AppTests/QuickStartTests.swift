import Foundation
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// docs/quickstart.md's second part, run as written: every `sh` block in order in one bash
/// session, each `text` block after it checked against what the block printed.
@Suite(.serialized) struct QuickStartTests {
    /// The section a newcomer follows with their own (or the stand-in) Kafka and PostgreSQL.
    static func steps() throws -> [QuickStartStep] {
        let markdown = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/quickstart.md"), encoding: .utf8)
        guard let start = markdown.range(of: "## Run it against your Kafka and PostgreSQL"),
            let end = markdown.range(of: "\n## ", range: start.upperBound..<markdown.endIndex)
        else { throw TestFailure("docs/quickstart.md has no section 'Run it against your Kafka and PostgreSQL'") }
        return QuickStartStep.parse(String(markdown[start.lowerBound..<end.lowerBound]))
    }

    @Test func theSectionIsMadeOfShellBlocksAndTheirOutputs() throws {
        let steps = try Self.steps()
        #expect(steps.count >= 9, "\(steps.map(\.script))")
        #expect(steps.filter { $0.expected != nil }.count >= 5)
        // Every block parses as bash.
        for step in steps {
            let check = Process()
            check.executableURL = URL(fileURLWithPath: "/bin/bash")
            check.arguments = ["-n", "-c", step.script]
            try check.run()
            check.waitUntilExit()
            #expect(check.terminationStatus == 0, "not valid bash:\n\(step.script)")
        }
    }

    /// Every `sh` block of README.md and docs/ at least parses as bash.
    @Test func everyShellBlockInTheDocsIsValidBash() throws {
        let docs = repositoryRoot.appendingPathComponent("docs")
        let files = [repositoryRoot.appendingPathComponent("README.md")]
            + (try FileManager.default.contentsOfDirectory(atPath: docs.path)).filter { $0.hasSuffix(".md") }.sorted()
                .map { docs.appendingPathComponent($0) }
        var checked = 0
        for file in files {
            for step in QuickStartStep.parse(try String(contentsOf: file, encoding: .utf8)) {
                let check = Process()
                check.executableURL = URL(fileURLWithPath: "/bin/bash")
                check.arguments = ["-n", "-c", step.script]
                check.standardError = FileHandle.nullDevice
                try check.run()
                check.waitUntilExit()
                #expect(check.terminationStatus == 0, "\(file.lastPathComponent): not valid bash:\n\(step.script)")
                checked += 1
            }
        }
        #expect(checked >= 30, "\(checked) blocks")
    }

    /// From the stand-in Kafka and PostgreSQL to the first insight, as a newcomer types it: the
    /// only change is that `swift build -c release` is answered by the build under test.
    @Test func theQuickStartRunsAsWrittenAndShowsAFirstInsight() async throws {
        let steps = try Self.steps()
        let root = try QuickStartRoot()
        defer { root.remove() }
        let shell = try ShellSession(directory: root.path, environment: root.environment)
        defer {
            shell.close()
            _ = try? root.run(["dev-postgres", "stop", "--directory", "/tmp/faultline-quickstart-db"])
        }
        _ = try? root.run(["dev-postgres", "stop", "--directory", "/tmp/faultline-quickstart-db"])
        try? FileManager.default.removeItem(atPath: "/tmp/faultline-quickstart-db")
        let started = ContinuousClock.now
        var firstError: ContinuousClock.Instant?
        for (index, step) in steps.enumerated() {
            if step.script.contains("kcat -P") { firstError = .now }
            // A read may show what is still on its way (the first insight): it is tried again,
            // for as long as a newcomer is promised to wait.
            let rereadable = step.script.split(separator: "\n").allSatisfy { $0.hasPrefix("curl ") }
            let deadline = ContinuousClock.now + (rereadable ? .seconds(300) : .zero)
            var result = try await shell.run(step.script, timeout: .seconds(180))
            while let expected = step.expected, !QuickStartStep.matches(result.output, expected), ContinuousClock.now < deadline {
                try await Task.sleep(for: .seconds(3))
                result = try await shell.run(step.script, timeout: .seconds(60))
            }
            #expect(result.status == 0, "step \(index + 1) ended with \(result.status):\n\(step.script)\n\(result.output)")
            if let expected = step.expected {
                #expect(QuickStartStep.matches(result.output, expected),
                        "step \(index + 1) printed something else:\n\(step.script)\n--- expected\n\(expected)\n--- got\n\(result.output)")
            }
            if result.status != 0 { break }
            if step.script.contains("/v1/insights"), let firstError {
                print("quick start: first insight \(ContinuousClock.now - firstError) after the first error")
            }
        }
        print("quick start: \(steps.count) steps in \(ContinuousClock.now - started)")
    }
}

/// One `sh` block of the quick start and the `text` block that shows its output, if any.
struct QuickStartStep {
    var script: String
    var expected: String?

    static func parse(_ markdown: String) -> [QuickStartStep] {
        var steps: [QuickStartStep] = []
        var lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).makeIterator()
        while let line = lines.next() {
            guard line.hasPrefix("```"), case let info = line.dropFirst(3).trimmingCharacters(in: .whitespaces), !info.isEmpty else { continue }
            var body: [Substring] = []
            while let next = lines.next(), !next.hasPrefix("```") { body.append(next) }
            let text = body.joined(separator: "\n")
            if info == "sh" {
                steps.append(QuickStartStep(script: text))
            } else if info == "text", !steps.isEmpty, steps[steps.count - 1].expected == nil {
                steps[steps.count - 1].expected = text
            }
        }
        return steps
    }

    /// Whether every line shown appears in the output, in order, `…` matching anything.
    static func matches(_ output: String, _ expected: String) -> Bool {
        var remaining = output.split(separator: "\n")[...]
        for line in expected.split(separator: "\n") {
            let pattern = "^" + line.components(separatedBy: "…").map(NSRegularExpression.escapedPattern(for:)).joined(separator: ".*") + "$"
            guard let regex = try? NSRegularExpression(pattern: pattern),
                let found = remaining.firstIndex(where: { candidate in
                    let text = String(candidate)
                    return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
                })
            else { return false }
            remaining = remaining[(found + 1)...]
        }
        return true
    }
}

/// A folder laid out as the repository root after `swift build -c release`, with the build
/// under test as the release binary and a `swift` that only says so.
struct QuickStartRoot {
    let path: String
    let environment: [String: String]
    private let binary: String

    init() throws {
        guard let binary = ProcessInfo.processInfo.environment["FAULTLINE_BIN"] else {
            throw TestFailure("FAULTLINE_BIN is not set: run the tests with scripts/test")
        }
        self.binary = binary
        path = NSTemporaryDirectory() + "faultline-quickstart-\(UUID().uuidString.prefix(8))"
        let files = FileManager.default
        try files.createDirectory(atPath: path + "/.build/release", withIntermediateDirectories: true)
        try files.createDirectory(atPath: path + "/bin", withIntermediateDirectories: true)
        for folder in ["migrations", "rules", "openapi"] {
            try files.createSymbolicLink(atPath: path + "/" + folder, withDestinationPath: repositoryRoot.appendingPathComponent(folder).path)
        }
        try files.createSymbolicLink(atPath: path + "/.build/release/faultline", withDestinationPath: binary)
        let swift = path + "/bin/swift"
        try "#!/bin/sh\necho 'Build complete! (the build under test)'\n".write(toFile: swift, atomically: true, encoding: .utf8)
        chmod(swift, 0o755)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FAULTLINE_") }
        environment["PATH"] = path + "/bin:" + (environment["PATH"] ?? "/usr/bin:/bin")
        self.environment = environment
    }

    /// Runs the binary outside the session (clean-up).
    func run(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// One bash process fed scripts on its standard input, as a terminal session would be: the
/// variables, the working folder and the background jobs of a script stay for the next.
final class ShellSession: Sendable {
    private let process: Process
    private let input: FileHandle
    /// What the session printed since the current script was sent.
    private final class Buffer: Sendable { let text = Mutex("") }
    private let buffer = Buffer()
    private let counter = Mutex(0)

    init(directory: String, environment: [String: String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = environment
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        input = stdin.fileHandleForWriting
        let reader = stdout.fileHandleForReading
        let buffer = self.buffer
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { return }
                buffer.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
    }

    /// Runs `script`; what it printed (standard error included) and the status of its last command.
    func run(_ script: String, timeout: Duration) async throws -> (output: String, status: Int32) {
        let n = counter.withLock { $0 += 1; return $0 }
        let marker = "@@quickstart-step-\(n)@@"
        buffer.text.withLock { $0 = "" }
        try input.write(contentsOf: Data((script + "\necho \"\(marker) $?\"\n").utf8))
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = buffer.text.withLock { $0 }
            if let range = text.range(of: marker + " ") {
                let rest = text[range.upperBound...]
                if let newline = rest.firstIndex(of: "\n") {
                    return (String(text[..<range.lowerBound]), Int32(rest[..<newline]) ?? -1)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("no end after \(timeout):\n\(script)\n--- printed so far\n\(buffer.text.withLock { $0 })")
    }

    /// Ends the session and whatever it left running in the background.
    func close() {
        try? input.write(contentsOf: Data("kill $(jobs -p) 2>/dev/null; exit\n".utf8))
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
