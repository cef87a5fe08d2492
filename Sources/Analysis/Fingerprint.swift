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
    private static let wildcardBytes: [UInt8] = Array("<*>".utf8)

    /// Works on UTF-8 bytes: separators and quotes are ASCII, and everything else is part of a
    /// token, so multi-byte characters need no decoding (the hot path of ingest).
    public static func mask(_ message: String) -> String {
        var message = message
        return message.withUTF8 { input -> String in
            var output: [UInt8] = []
            output.reserveCapacity(input.count)
            var tokenStart = -1
            var index = 0
            while index < input.count {
                let byte = input[index]
                if isQuote(byte) && tokenStart < 0 {
                    // A quoted value: everything up to the matching quote is one variable.
                    if let close = input[(index + 1)...].firstIndex(of: byte) {
                        output.append(byte)
                        appendWildcard(&output)
                        output.append(byte)
                        index = close + 1
                        continue
                    }
                    output.append(byte)  // unterminated: keep as text
                    index += 1
                    continue
                }
                if isSeparator(byte) {
                    if tokenStart >= 0 {
                        flush(input, tokenStart, index, into: &output)
                        tokenStart = -1
                    }
                    output.append(byte == 9 || byte == 10 || byte == 13 ? 32 : byte)
                } else if tokenStart < 0 {
                    tokenStart = index
                }
                index += 1
            }
            if tokenStart >= 0 { flush(input, tokenStart, input.count, into: &output) }
            return String(decoding: output, as: UTF8.self)
        }
    }

    private static func isQuote(_ byte: UInt8) -> Bool { byte == 0x27 || byte == 0x22 || byte == 0x60 }

    private static func isSeparator(_ byte: UInt8) -> Bool {
        switch byte {
        case 32, 9, 10, 13, UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "["),
            UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "="), UInt8(ascii: "<"), UInt8(ascii: ">"):
            return true
        default:
            return false
        }
    }

    /// Appends a wildcard unless the output already ends in one joined by a space or by
    /// `: . - /` (so `<*> <*>` and `<*>:<*>` fold into one, and the number of variable tokens
    /// does not split a group).
    private static func appendWildcard(_ output: inout [UInt8]) {
        if output.count >= 4, output[output.count - 4..<output.count - 1].elementsEqual(wildcardBytes),
            [32, UInt8(ascii: ":"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "/")].contains(output[output.count - 1])
        {
            output.removeLast()
            return
        }
        output.append(contentsOf: wildcardBytes)
    }

    private static func flush(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into output: inout [UInt8]) {
        // Sentence punctuation after the token stays out of the decision.
        var coreEnd = end
        while coreEnd > start, [UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "!"), UInt8(ascii: "?")].contains(input[coreEnd - 1]) {
            coreEnd -= 1
        }
        let core = UnsafeBufferPointer(rebasing: input[start..<coreEnd])
        if isVariable(core) {
            appendWildcard(&output)
        } else {
            output.append(contentsOf: core)
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: input[coreEnd..<end]))
    }

    /// Whether a token is a value rather than a word of the message.
    static func isVariable(_ token: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = token.first else { return false }
        let count = token.count
        func has(_ needle: String) -> Bool {
            let n = Array(needle.utf8)
            guard count >= n.count else { return false }
            for i in 0...(count - n.count) where token[i] == n[0] && token[i..<i + n.count].elementsEqual(n) { return true }
            return false
        }
        func starts(_ prefix: String) -> Bool { token.starts(with: prefix.utf8) }
        if has("://") { return true }  // URL
        if first == UInt8(ascii: "/") && count > 1 { return true }  // path
        if starts("~/") || starts("./") || starts("../") { return true }
        if count > 2 && token[1] == UInt8(ascii: ":") && token[2] == UInt8(ascii: "\\") { return true }  // C:\path
        if token.contains(UInt8(ascii: "@")) && token.contains(UInt8(ascii: ".")) { return true }  // e-mail
        var digits = 0
        var hexLetters = 0
        for byte in token {
            switch byte {
            case 48...57: digits += 1
            case 97...102, 65...70: hexLetters += 1
            default: break
            }
        }
        if digits == 0 { return false }
        // Numbers, IPs, hex ids, UUIDs, durations and sizes (250ms, 10MB, 42%), versions.
        if digits >= 3 { return true }
        if Double(count) * 0.3 <= Double(digits) { return true }
        if digits + hexLetters == count && count >= 6 { return true }
        return false
    }
}

/// The stable identity of a group of errors: service, error type, masked message and the
/// normalised top in-app frames. The same on every replica and after every restart.
public struct Fingerprint: Sendable, Hashable {
    /// 16 hex digits.
    public let value: String
    /// The masked message the group is known by.
    public let template: String
    /// The normalised top in-app frames (`a|b|c`), empty when there are none.
    public let frames: String

    public static let frameCount = 3

    public init(service: String, errorType: String?, message: String, frames: [StackFrame]) {
        let template = TokenMasker.mask(message)
        let topFrames = frames.filter(\.inApp).prefix(Self.frameCount).map { frame in
            // Line numbers move with every release; lambda and generated suffixes vary.
            TokenMasker.mask(frame.function ?? frame.file ?? "?")
        }.joined(separator: "|")
        self.template = template
        self.frames = topFrames
        self.value = StableHash.hex64([service, errorType ?? "", template, topFrames].joined(separator: "\u{1F}"))
    }

    public init(_ event: ErrorEvent) {
        self.init(service: event.service, errorType: event.errorType, message: event.message, frames: event.frames)
    }
}
