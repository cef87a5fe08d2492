import Foundation
import HTTPClient
import Testing

/// The signature-verification code that docs/webhooks.md gives receivers is run here against
/// signatures made by ``WebhookSignature``: a receiver who copies it must accept what Faultline
/// signs and refuse anything else.
@Suite struct WebhookDocumentationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// One case: what the verifier is given and what it must answer.
    struct Case {
        let name: String
        let secret: String
        let header: String
        let body: [UInt8]
        let valid: Bool
    }

    /// Signed by Faultline's own code, then changed in the ways an attacker or a mistake would.
    static func cases(now: Int = Int(Date().timeIntervalSince1970)) -> [Case] {
        let secret = "whsec-documentation-test"
        let body = Array(#"{"delivery_id":"2f1d7c7e-5a0e-4c59-9d55-1b7f6e1f2a10","type":"alert","count":1,"alerts":[{"title":"Spike in checkout errors: 179/min vs 6 expected","service":"checkout","summary":"ünïcödé ✓"}]}"#.utf8)
        let header = WebhookSignature.header(secret: secret, timestamp: now, body: body)
        let signature = String(header.split(separator: "=").last!)
        var tampered = body
        tampered[tampered.count - 3] = UInt8(ascii: "X")
        let old = WebhookSignature.header(secret: secret, timestamp: now - 400, body: body)
        return [
            Case(name: "signed body", secret: secret, header: header, body: body, valid: true),
            Case(name: "tampered body", secret: secret, header: header, body: tampered, valid: false),
            Case(name: "body with a trailing newline", secret: secret, header: header, body: body + [10], valid: false),
            Case(name: "wrong secret", secret: secret + "x", header: header, body: body, valid: false),
            Case(name: "timestamp outside the replay window", secret: secret, header: old, body: body, valid: false),
            Case(name: "timestamp changed", secret: secret, header: "t=\(now - 1),v1=\(signature)", body: body, valid: false),
            Case(name: "a second v1 that matches", secret: secret, header: "t=\(now),v1=\(String(repeating: "0", count: 64)),v1=\(signature)",
                 body: body, valid: true),
            Case(name: "no timestamp", secret: secret, header: "v1=\(signature)", body: body, valid: false),
            Case(name: "not a signature header", secret: secret, header: "garbage", body: body, valid: false),
            Case(name: "empty header", secret: secret, header: "", body: body, valid: false),
        ]
    }

    /// The fenced block of `language` after the marker comment in docs/webhooks.md.
    static func snippet(_ language: String) throws -> String {
        let document = try String(contentsOf: root.appendingPathComponent("docs/webhooks.md"), encoding: .utf8)
        let marker = "<!-- signature-verification: \(language) -->"
        guard let markerRange = document.range(of: marker) else { throw Failure("docs/webhooks.md has no \(marker)") }
        let rest = document[markerRange.upperBound...]
        guard let open = rest.range(of: "```\(language)\n") ?? rest.range(of: "```\(language == "node" ? "js" : language)\n"),
            rest[markerRange.upperBound..<open.lowerBound].allSatisfy(\.isWhitespace),
            let close = rest[open.upperBound...].range(of: "\n```")
        else { throw Failure("no ```\(language) block right after \(marker)") }
        return String(rest[open.upperBound..<close.lowerBound]) + "\n"
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The cases as lines the harnesses read: name, secret, header and body, each base64, separated by commas.
    static func casesFile(_ cases: [Case], in directory: URL) throws -> URL {
        let lines = cases.map { c in
            [c.name, c.secret, c.header].map { Data($0.utf8).base64EncodedString() }.joined(separator: ",")
                + "," + Data(c.body).base64EncodedString()
        }
        let url = directory.appendingPathComponent("cases.txt")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Runs `arguments`, returns its standard output; a non-zero exit is a failure with stderr.
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure("\(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Checks a harness's answers (`<name> true|false` per line) against the cases.
    static func check(_ output: String, _ cases: [Case], language: String) {
        let answers = output.split(separator: "\n").map(String.init)
        #expect(answers.count == cases.count, "\(language) answered \(answers.count) of \(cases.count) cases: \(output)")
        for (answer, c) in zip(answers, cases) {
            #expect(answer == "\(c.valid)", "\(language) verifier, case '\(c.name)': expected \(c.valid), got \(answer)")
        }
    }

    @Test func theCasesAreJudgedAlikeByFaultlinesOwnVerifier() {
        let now = Int(Date().timeIntervalSince1970)
        for c in Self.cases(now: now) {
            #expect(WebhookSignature.verify(header: c.header, secret: c.secret, body: c.body, now: now) == c.valid, "\(c.name)")
        }
    }

    @Test func thePythonVerifierInTheDocsAcceptsFaultlinesSignaturesAndRefusesTampering() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-doc-python-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases = Self.cases()
        let harness = try Self.snippet("python") + """

            import base64, sys
            for line in open(sys.argv[1], encoding="ascii"):
                name, secret, header, body = (base64.b64decode(field) for field in line.strip().split(","))
                print(verify(secret, header.decode(), body))
            """
        let script = directory.appendingPathComponent("verify.py")
        try harness.write(to: script, atomically: true, encoding: .utf8)
        let output = try Self.run(["python3", script.path, try Self.casesFile(cases, in: directory).path])
        Self.check(output.replacingOccurrences(of: "True", with: "true").replacingOccurrences(of: "False", with: "false"), cases,
                   language: "Python")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/node"), "needs node"))
    func theNodeVerifierInTheDocsAcceptsFaultlinesSignaturesAndRefusesTampering() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-doc-node-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases = Self.cases()
        let harness = try Self.snippet("node") + """

            const fs = require("node:fs");
            for (const line of fs.readFileSync(process.argv[2], "ascii").split("\\n").filter(Boolean)) {
              const [name, secret, header, body] = line.split(",").map((field) => Buffer.from(field, "base64"));
              console.log(String(verify(secret.toString("utf8"), header.toString("utf8"), body)));
            }
            """
        let script = directory.appendingPathComponent("verify.js")
        try harness.write(to: script, atomically: true, encoding: .utf8)
        let output = try Self.run(["/usr/bin/node", script.path, try Self.casesFile(cases, in: directory).path])
        Self.check(output, cases, language: "Node.js")
    }
}
