import CRdKafka
import Foundation
import Postgres
import Testing

@testable import App

/// Keeps README.md, docs/ and deploy/ from naming things that do not exist: settings, REST
/// endpoints, files and metrics. Each check lists every offending name with its file.
@Suite struct DocumentationConsistencyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Repository-relative paths of the files under `folder` whose names end with `suffix`.
    static func files(under folder: String, endingWith suffix: String) -> [String] {
        let base = root.appendingPathComponent(folder)
        guard let enumerator = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        return enumerator.compactMap { $0 as? URL }.filter { $0.lastPathComponent.hasSuffix(suffix) }
            .map { folder + "/" + $0.path.dropFirst(base.path.count + 1) }.sorted()
    }

    /// README.md and every page in docs/.
    static var documents: [String] { ["README.md"] + files(under: "docs", endingWith: ".md") }

    // MARK: (a) settings

    /// Whether `name` is something Faultline reads, or a documented family of names.
    static func isKnownVariable(_ name: String) -> Bool {
        if FaultlineConfiguration.settings.contains(where: { $0.name == name }) { return true }
        // `FAULTLINE_*`, `FAULTLINE_KAFKA_*` and `FAULTLINE_KAFKA_<PROPERTY>` name the families.
        if name == "FAULTLINE_" || name == FaultlineConfiguration.kafkaPassthroughPrefix { return true }
        if FaultlineConfiguration.isKubernetesServiceLink(name, value: "") { return true }
        return name.hasPrefix(FaultlineConfiguration.kafkaPassthroughPrefix) && librdkafkaKnows(FaultlineConfiguration.librdkafkaProperty(name))
    }

    /// Whether the linked librdkafka has a configuration property of this name: it tells an
    /// unknown property from a bad value.
    static func librdkafkaKnows(_ property: String) -> Bool {
        guard let conf = rd_kafka_conf_new() else { return false }
        defer { rd_kafka_conf_destroy(conf) }
        var error = [CChar](repeating: 0, count: 512)
        return rd_kafka_conf_set(conf, property, "", &error, error.count) != RD_KAFKA_CONF_UNKNOWN
    }

    @Test func everyVariableTheDocumentsNameIsASetting() throws {
        let sources = Self.documents + Self.files(under: "deploy", endingWith: ".yaml")
        var unknown: [String] = []
        var seen = 0
        for path in sources {
            for match in try Self.read(path).matches(of: /FAULTLINE_[A-Z0-9_]*/) {
                let name = String(match.output)
                seen += 1
                if !Self.isKnownVariable(name) { unknown.append("\(path): \(name)") }
            }
        }
        #expect(seen > 50, "the scan found only \(seen) names")
        #expect(unknown.isEmpty, "documented variables Faultline does not read: \(unknown.joined(separator: "; "))")
    }

    @Test func theVariableCheckRefusesTyposAndAcceptsThePassthrough() {
        #expect(Self.isKnownVariable("FAULTLINE_DATABASE_URL"))
        #expect(!Self.isKnownVariable("FAULTLINE_DATABSE_URL"))
        #expect(!Self.isKnownVariable("FAULTLINE_KEY"))
        #expect(Self.isKnownVariable("FAULTLINE_SERVICE_HOST"))
        #expect(Self.isKnownVariable("FAULTLINE_KAFKA_SASL_MECHANISM"))
        #expect(Self.isKnownVariable("FAULTLINE_KAFKA_SOCKET_KEEPALIVE_ENABLE"))
        #expect(!Self.isKnownVariable("FAULTLINE_KAFKA_SASL_MECHANISMS_TYPO"))
    }

    // MARK: (b) endpoints

    /// The operations of openapi/openapi.yaml: path → methods (upper case).
    static func openAPIOperations() throws -> [String: Set<String>] {
        var operations: [String: Set<String>] = [:]
        var current: String?
        for line in try read("openapi/openapi.yaml").split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("components:") { break }
            if let match = line.wholeMatch(of: #/  (\/[^ :]*):\s*/#) {
                current = String(match.1)
                operations[current!, default: []] = []
            } else if let current, let match = line.wholeMatch(of: #/    (get|put|post|delete|patch):\s*/#) {
                operations[current, default: []].insert(match.1.uppercased())
            }
        }
        return operations
    }

    /// A path as written in a document (`/v1/groups/9c1e…/resolve`, `/v1/insights/{id}`) matches
    /// an OpenAPI path when the segments agree; a `{parameter}` segment matches any segment.
    static func template(for path: String, in operations: [String: Set<String>]) -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        let candidates = operations.keys.filter { template in
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == segments.count && zip(parts, segments).allSatisfy { part, segment in
                part == segment || (part.hasPrefix("{") && !segment.isEmpty)
            }
        }
        // A literal segment beats a parameter (`/v1/insights/{id}` vs a longer literal path).
        return candidates.max { a, b in a.filter { $0 == "{" }.count > b.filter { $0 == "{" }.count }
    }

    struct Mention: Hashable {
        let file: String
        let method: String?
        let path: String
    }

    /// `/v1/…` paths in a text, with the method when it stands right before (`GET /v1/…`) or
    /// comes from the `curl` command the path is in.
    static func mentions(in text: String, file: String) -> [Mention] {
        var result: [Mention] = []
        // curl commands, continued lines joined: -X METHOD, else POST with -d, else GET.
        let joined = text.replacingOccurrences(of: "\\\n", with: " ")
        for line in joined.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("curl ") {
            let method = line.firstMatch(of: /-X\s+([A-Z]+)/).map { String($0.1) } ?? (line.contains(" -d ") ? "POST" : "GET")
            for match in line.matches(of: /https?:\/\/[^\s"'\/]+(\/[^\s"'?#]*)|\$[A-Z_]+(\/[^\s"'?#]*)/) {
                let path = String(match.1 ?? match.2 ?? "")
                if path.hasPrefix("/") { result.append(Mention(file: file, method: method, path: normalise(path))) }
            }
        }
        for match in text.matches(of: /(?:(GET|POST|PUT|DELETE|PATCH) )?(\/v1\/[A-Za-z0-9_\-\/{}.]*)/) {
            result.append(Mention(file: file, method: match.1.map(String.init), path: normalise(String(match.2))))
        }
        return result
    }

    static func normalise(_ path: String) -> String {
        var path = path
        while path.count > 1 && (path.hasSuffix("/") || path.hasSuffix(".")) { path.removeLast() }
        return path
    }

    @Test func everyEndpointTheDocumentsNameIsInTheOpenAPIDocument() throws {
        let operations = try Self.openAPIOperations()
        #expect(operations.count > 20 && operations["/v1/groups/{fingerprint}"] == ["GET"])
        var wrong: [String] = []
        var checked = 0
        for file in Self.documents {
            for mention in Self.mentions(in: try Self.read(file), file: file) where mention.path.hasPrefix("/v1") {
                checked += 1
                guard let template = Self.template(for: mention.path, in: operations) else {
                    wrong.append("\(file): \(mention.path) is not in openapi/openapi.yaml")
                    continue
                }
                if let method = mention.method, operations[template]?.contains(method) != true {
                    wrong.append("\(file): \(method) \(mention.path) — openapi/openapi.yaml has \(template) only for \(operations[template]!.sorted())")
                }
            }
        }
        #expect(checked > 50, "the scan found only \(checked) endpoint mentions")
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "; "))")
    }

    @Test func everyOperationOfTheOpenAPIDocumentIsInTheAPIGuide() throws {
        let operations = try Self.openAPIOperations()
        let guide = try Self.read("docs/api.md")
        var documented: Set<String> = []
        for mention in Self.mentions(in: guide, file: "docs/api.md") {
            guard let method = mention.method, let template = Self.template(for: mention.path, in: operations) else { continue }
            documented.insert("\(method) \(template)")
        }
        var missing: [String] = []
        for (path, methods) in operations {
            for method in methods {
                let described = path.hasPrefix("/v1") ? documented.contains("\(method) \(path)") : guide.contains("`\(method) \(path)`")
                if !described { missing.append("\(method) \(path)") }
            }
        }
        #expect(missing.isEmpty, "docs/api.md does not describe: \(missing.sorted().joined(separator: ", "))")
    }

    @Test func theEndpointCheckTellsRealPathsFromMadeUpOnes() throws {
        let operations = try Self.openAPIOperations()
        #expect(Self.template(for: "/v1/groups/9c1e5f0a2b7d4e11/resolve", in: operations) == "/v1/groups/{fingerprint}/resolve")
        #expect(Self.template(for: "/v1/insights/{id}", in: operations) == "/v1/insights/{id}")
        #expect(Self.template(for: "/v1/incidents", in: operations) == nil)
        #expect(Self.template(for: "/v1/groups/x/merge", in: operations) == nil)
        let mentions = Self.mentions(in: "Call `DELETE /v1/insights/{id}`.\n\n```sh\ncurl -sS -X PUT \\\n  \"$FAULTLINE/v1/api-keys/3\"\n```\n",
                                     file: "x")
        #expect(Set(mentions) == [Mention(file: "x", method: "DELETE", path: "/v1/insights/{id}"),
                                  Mention(file: "x", method: "PUT", path: "/v1/api-keys/3"),
                                  Mention(file: "x", method: nil, path: "/v1/api-keys/3")])
    }

    // MARK: (c) links

    /// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
    static func anchor(_ heading: String) -> String {
        String(heading.lowercased().compactMap { character -> Character? in
            if character == " " { return "-" }
            if character.isLetter || character.isNumber || character == "-" || character == "_" { return character }
            return nil
        })
    }

    static func anchors(of markdown: String) -> Set<String> {
        var inCode = false
        var result: Set<String> = []
        for line in markdown.split(separator: "\n") {
            if line.hasPrefix("```") { inCode.toggle() }
            if !inCode, let match = line.wholeMatch(of: /#{1,6} +(.+?) *#*/) { result.insert(anchor(String(match.1))) }
        }
        return result
    }

    @Test func everyRelativeLinkPointsToAnExistingFileAndHeading() throws {
        var broken: [String] = []
        var checked = 0
        for file in Self.documents {
            let text = try Self.read(file)
            let folder = (file as NSString).deletingLastPathComponent
            for match in text.matches(of: /\]\(([^)\s]+)\)/) {
                let target = String(match.1)
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("mailto:") { continue }
                checked += 1
                let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let relative = parts[0].isEmpty ? file : (folder.isEmpty ? parts[0] : folder + "/" + parts[0])
                let resolved = Self.root.appendingPathComponent(relative).standardizedFileURL
                guard FileManager.default.fileExists(atPath: resolved.path) else {
                    broken.append("\(file): \(target) (no file \(relative))")
                    continue
                }
                if parts.count == 2, resolved.pathExtension == "md" {
                    let anchors = Self.anchors(of: try String(contentsOf: resolved, encoding: .utf8))
                    if !anchors.contains(parts[1]) { broken.append("\(file): \(target) (no heading #\(parts[1]))") }
                }
            }
        }
        #expect(checked > 20, "the scan found only \(checked) relative links")
        #expect(broken.isEmpty, "broken links: \(broken.joined(separator: "; "))")
    }

    @Test func anchorsAreMadeAsGitHubMakesThem() {
        #expect(Self.anchor("Messages land in errors.dlq") == "messages-land-in-errorsdlq")
        #expect(Self.anchor("401/403 from the API") == "401403-from-the-api")
        #expect(Self.anchors(of: "# A\n```\n# not a heading\n```\n## Webhooks fail, or the circuit is open\n")
                == ["a", "webhooks-fail-or-the-circuit-is-open"])
    }

    // MARK: (d) metrics

    /// The metric names the documentation uses are the code's (FaultlineMetrics.catalog), and
    /// docs/operations.md lists every one of them with its type and labels.
    @Test func everyMetricTheDocumentsNameExists() throws {
        let catalog = Dictionary(uniqueKeysWithValues: FaultlineMetrics.catalog.map { ($0.name, $0) })
        var unknown: [String] = []
        var seen = 0
        for file in ["README.md", "docs/operations.md", "docs/troubleshooting.md", "docs/deploy.md"] {
            for match in try Self.read(file).matches(of: /faultline_[a-z0-9_]+/) {
                var name = String(match.output)
                for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) && catalog[name] == nil {
                    name.removeLast(suffix.count)
                }
                // The migrations' bookkeeping table shares the prefix.
                if name == Migrator.table { continue }
                seen += 1
                if catalog[name] == nil { unknown.append("\(file): \(name)") }
            }
        }
        #expect(seen >= 12, "the scan found only \(seen) metric names")
        #expect(unknown.isEmpty, "metrics the code does not export: \(unknown.joined(separator: "; "))")

        let operations = try Self.read("docs/operations.md")
        for metric in FaultlineMetrics.catalog {
            let row = operations.split(separator: "\n").first { $0.hasPrefix("| `\(metric.name)` |") }
            #expect(row != nil, "docs/operations.md does not list \(metric.name)")
            guard let row else { continue }
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(cells.count >= 3 && cells[1] == metric.kind.rawValue, "\(metric.name): documented as \(cells.count > 1 ? cells[1] : "?")")
            for label in metric.labels {
                #expect(cells.count >= 3 && cells[2].contains("`\(label)`"), "\(metric.name): label \(label) not documented")
            }
        }
    }
}
