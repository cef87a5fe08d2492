import Domain

/// Masks the variable parts of a message: numbers, hex, UUIDs, IP addresses, URLs, paths,
/// e-mail addresses, quoted values and durations become `<*>`.
///
/// ```swift
/// TokenMasker.mask("Timeout after 30s calling 10.0.0.7:5432 for order 'A-991'")
/// // "Timeout after <*> calling <*> for order '<*>'"
/// ```
public enum TokenMasker {
    public static let wildcard = "<*>"

    public static func mask(_ message: String) -> String {
        var output = ""
        output.reserveCapacity(message.utf8.count)
        var token = ""
        var quote: Character?
        for character in message {
            if let open = quote {
                if character == open {
                    output += wildcard
                    output.append(character)
                    quote = nil
                }
                continue
            }
            if character == "'" || character == "\"" || character == "`", token.isEmpty {
                flush(&token, into: &output)
                output.append(character)
                quote = character
            } else if character.isWhitespace || character == "," || character == ";" || character == "(" || character == ")"
                || character == "[" || character == "]" || character == "{" || character == "}" || character == "=" || character == "<"
                || character == ">"
            {
                flush(&token, into: &output)
                output.append(character.isWhitespace ? " " : character)
            } else {
                token.append(character)
            }
        }
        if let quote { output.append(String(quote)); output += token }  // unterminated quote: keep as text
        flush(&token, into: &output)
        return collapse(output)
    }

    private static func flush(_ token: inout String, into output: inout String) {
        guard !token.isEmpty else { return }
        // Keep sentence punctuation around the token out of the decision.
        var core = Substring(token)
        var trailing = ""
        while let last = core.last, last == "." || last == ":" || last == "!" || last == "?" {
            trailing = String(last) + trailing
            core = core.dropLast()
        }
        output += isVariable(core) ? wildcard : String(core)
        output += trailing
        token = ""
    }

    /// Whether a token is a value rather than a word of the message.
    static func isVariable(_ token: Substring) -> Bool {
        guard !token.isEmpty else { return false }
        if token.contains("://") { return true }  // URL
        if token.first == "/" && token.count > 1 { return true }  // path
        if token.hasPrefix("~/") || token.hasPrefix("./") || token.hasPrefix("../") { return true }
        if token.count > 2, token.dropFirst().hasPrefix(":\\") { return true }  // C:\path
        if token.contains("@") && token.contains(".") { return true }  // e-mail
        var digits = 0
        var hexLetters = 0
        var others = 0
        for scalar in token.unicodeScalars {
            switch scalar {
            case "0"..."9": digits += 1
            case "a"..."f", "A"..."F": hexLetters += 1
            case ".", ":", "-", "_", "+", "%", "/", "#", "x": others += 1
            default: others += 1
            }
        }
        if digits == 0 { return false }
        // Numbers, IPs, hex ids, UUIDs, durations and sizes (250ms, 10MB, 42%), versions.
        if digits >= 3 { return true }
        if Double(token.count) * 0.3 <= Double(digits) { return true }
        if digits + hexLetters == token.count && token.count >= 6 { return true }
        return false
    }

    /// Adjacent wildcards (`<*> <*>`, `<*>:<*>`) fold into one so that the number of variable
    /// tokens does not split a group.
    private static func collapse(_ text: String) -> String {
        var result = text
        for pattern in ["<*> <*>", "<*>:<*>", "<*>.<*>", "<*>-<*>", "<*>/<*>"] {
            while result.contains(pattern) { result = result.replacingOccurrences(of: pattern, with: wildcard) }
        }
        return result
    }
}

/// The stable identity of a group of errors: service, error type, masked message and the
/// normalised top in-app frames. The same on every replica and after every restart.
public struct Fingerprint: Sendable, Hashable {
    /// 16 hex digits.
    public let value: String
    /// The masked message the group is known by.
    public let template: String

    public static let frameCount = 3

    public init(service: String, errorType: String?, message: String, frames: [StackFrame]) {
        let template = TokenMasker.mask(message)
        let topFrames = frames.filter(\.inApp).prefix(Self.frameCount).map { frame in
            // Line numbers move with every release; lambda and generated suffixes vary.
            TokenMasker.mask(frame.function ?? frame.file ?? "?")
        }
        self.template = template
        self.value = StableHash.hex64(
            [service, errorType ?? "", template, topFrames.joined(separator: "|")].joined(separator: "\u{1F}"))
    }

    public init(_ event: ErrorEvent) {
        self.init(service: event.service, errorType: event.errorType, message: event.message, frames: event.frames)
    }
}
