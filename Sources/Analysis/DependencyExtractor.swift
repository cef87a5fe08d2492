/// Finds the peer an error message is about: `timeout calling payments-db:5432` → `payments-db`,
/// `connection refused to payments.internal` → `payments.internal`, `upstream payments timed out`
/// → `payments`, `Post "http://payments:8080/charge": EOF` → `payments`.
///
/// Heuristics, in order: the host of the first URL; else the first name after a word that
/// introduces a peer (`calling`, `connect to`, `dial tcp`, `lookup`, `upstream`, `ENOTFOUND`, …),
/// where any name is accepted; else the first host-looking token (dotted name, IP, `name:port`,
/// kebab-case name) after a preposition (`to`, `from`, `at`, …). Ports and paths are dropped and
/// the result is lowercased. Class names, source files, numbers and timestamps are not peers.
public enum DependencyExtractor {
    public static func extract(from message: String) -> String? {
        if let host = urlHost(message) { return host }
        let raw = message.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        let tokens = raw.map { trimmed(String($0)) }
        let lower = tokens.map { $0.lowercased() }
        var weakCandidate: String?
        var index = 0
        while index < tokens.count {
            if let length = strongTrigger(lower, at: index) {
                var next = index + length
                var skipped = 0
                while next < tokens.count, fillers.contains(lower[next]) || lower[next].isEmpty, skipped < 3 {
                    next += 1
                    skipped += 1
                }
                if next < tokens.count, !stopWords.contains(lower[next]), strongTrigger(lower, at: next) == nil,
                    let name = peerName(tokens[next], bareAllowed: true)
                {
                    return name
                }
                index += length
                continue
            }
            if weakCandidate == nil, weakTriggers.contains(lower[index]), index + 1 < tokens.count {
                weakCandidate = peerName(tokens[index + 1], bareAllowed: false)
            }
            index += 1
        }
        return weakCandidate
    }

    /// Phrases after which the next name is the peer, whatever it looks like.
    private static let strongTriggers: [[String]] = [
        ["connect", "to"], ["connecting", "to"], ["connection", "to"], ["talking", "to"], ["request", "to"],
        ["requests", "to"], ["calls", "to"], ["call", "to"], ["resolve", "host"], ["calling"], ["connect"],
        ["connecting"], ["dial"], ["dialing"], ["lookup"], ["resolve"], ["resolving"], ["upstream"], ["reach"],
        ["reaching"], ["contacting"], ["enotfound"], ["econnrefused"], ["econnreset"], ["etimedout"], ["eai_again"],
    ]
    /// Words after which only a host-looking token is taken.
    private static let weakTriggers: Set<String> = ["to", "from", "at", "on", "via", "for", "with", "refused", "->", "peer", "host", "server"]
    /// Skipped between a trigger and the name.
    private static let fillers: Set<String> = [
        "the", "a", "an", "to", "host", "service", "server", "tcp", "udp", "http", "https", "grpc", "dial", "remote",
        "econnrefused", "econnreset", "etimedout", "enotfound", "eai_again",
    ]
    /// Words that end the search after a trigger: the message does not name a peer there.
    private static let stopWords: Set<String> = [
        "error", "errors", "failed", "failure", "timeout", "timed", "connection", "connect", "request", "requests",
        "refused", "reset", "or", "and", "while", "after", "before", "in", "of", "with", "by", "from", "on", "at",
        "is", "was", "has", "database", "db", "endpoint", "backend", "peer", "pool", "socket", "api", "it", "this",
        "downstream", "upstream", "no", "not", "unavailable", "healthy",
    ]
    private static let sourceExtensions: Set<String> = [
        "go", "py", "java", "kt", "js", "ts", "rb", "rs", "swift", "cs", "c", "h", "cc", "cpp", "php", "scala", "ex",
        "exs", "erl", "class", "jar", "json", "yaml", "yml", "xml", "log", "txt", "conf", "cfg", "ini", "sql", "so",
    ]

    private static func strongTrigger(_ lower: [String], at index: Int) -> Int? {
        for phrase in strongTriggers where index + phrase.count <= lower.count
            && lower[index..<(index + phrase.count)].elementsEqual(phrase)
        {
            return phrase.count
        }
        // java.net.UnknownHostException: payments.internal
        return lower[index].hasSuffix("unknownhostexception") ? 1 : nil
    }

    /// Drops quotes, brackets and sentence punctuation around a token.
    private static func trimmed(_ token: String) -> String {
        let edge: Set<Character> = ["\"", "'", "`", "(", ")", "[", "]", "{", "}", "<", ">", ",", ";", ":", "."]
        var text = Substring(token)
        while let first = text.first, edge.contains(first) { text = text.dropFirst() }
        while let last = text.last, edge.contains(last) { text = text.dropLast() }
        return String(text)
    }

    /// The host of a `scheme://host…` URL in the message.
    private static func urlHost(_ message: String) -> String? {
        guard let range = message.range(of: "://") else { return nil }
        let rest = message[range.upperBound...]
        var host = rest.prefix { !"/?#'\"` )]>,;".contains($0) }
        if let at = host.lastIndex(of: "@") { host = host[host.index(after: at)...] }  // user:password@
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        return host.isEmpty ? nil : host.lowercased()
    }

    /// The peer named by a token (port and path dropped), or nil when the token is not a name:
    /// with `bareAllowed` false it must look like a host.
    private static func peerName(_ token: String, bareAllowed: Bool) -> String? {
        var text = Substring(token)
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }  // host/10.0.0.7:8080
        var hasPort = false
        if let colon = text.lastIndex(of: ":") {
            let port = text[text.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber) else { return nil }
            hasPort = true
            text = text[..<colon]
        }
        while text.last == "." { text = text.dropLast() }
        guard let first = text.first, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") })
        else { return nil }
        let segments = text.split(separator: ".", omittingEmptySubsequences: false)
        let isIP = segments.count == 4 && segments.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }
        if isIP { return String(text) }
        // Numbers, versions, timestamps and ids are not names.
        guard first.isLetter, segments.allSatisfy({ !$0.isEmpty }) else { return nil }
        // Java/Kotlin class names (java.net.ConnectException) and source files are not hosts.
        if segments.count > 1, segments[0].allSatisfy({ !$0.isUppercase }),
            segments.dropFirst().contains(where: { $0.first?.isUppercase == true && $0.contains(where: \.isLowercase) })
        {
            return nil
        }
        if segments.count > 1, let last = segments.last, sourceExtensions.contains(last.lowercased()) { return nil }
        let name = text.lowercased()
        let hostLike = segments.count > 1 || hasPort || (name.contains("-") && !name.hasSuffix("-"))
        if !hostLike && !bareAllowed { return nil }
        if stopWords.contains(name) || fillers.contains(name) { return nil }
        return name
    }
}
