import Domain

// Masking: the variable parts of a message (numbers, ids, addresses, paths, quoted values…)
// become `<*>`. Two rule sets live here, each for its own use:
//
// - `TokenMasker` makes the masked message a group's fingerprint is computed from. Its rules
//   are frozen: a change would give every stored group a new fingerprint, so the same errors
//   would start new groups (and new-error insights) after an upgrade.
// - `TemplateMiner`'s masking splits a message into words for mining templates across groups;
//   it is tuned for accuracy on labelled data (docs: eval templates) and may change, since
//   templates are mined again from the groups.

/// Masks the variable parts of a message: numbers, hex, UUIDs, IP addresses, URLs, paths,
/// e-mail addresses, quoted values and durations become `<*>`.
///
/// ```swift
/// TokenMasker.mask("Timeout after 30s calling 10.0.0.7:5432 for order 'A-991'")
/// // "Timeout after <*> calling <*> for order '<*>'"
/// ```
public enum TokenMasker {
    public static let wildcard = "<*>"
    static let wildcardBytes: [UInt8] = Array("<*>".utf8)

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
            isWildcardJoiner(output[output.count - 1])
        {
            output.removeLast()
            return
        }
        output.append(contentsOf: wildcardBytes)
    }

    /// A space, `:`, `.`, `-` or `/`.
    private static func isWildcardJoiner(_ byte: UInt8) -> Bool {
        byte == 32 || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "/")
    }

    private static func flush(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into output: inout [UInt8]) {
        // Sentence punctuation (`.`, `:`, `!`, `?`) after the token stays out of the decision.
        var coreEnd = end
        while coreEnd > start {
            let byte = input[coreEnd - 1]
            guard byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "!") || byte == UInt8(ascii: "?") else { break }
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
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        if count >= 3 {  // URL: `://` anywhere
            for i in 0...(count - 3) where token[i] == UInt8(ascii: ":") && token[i + 1] == slash && token[i + 2] == slash { return true }
        }
        if first == slash && count > 1 { return true }  // path
        // `~/`, `./` and `../`
        if count >= 2 && (first == UInt8(ascii: "~") || first == dot) && token[1] == slash { return true }
        if count >= 3 && first == dot && token[1] == dot && token[2] == slash { return true }
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

extension TemplateMiner {
    static let wildcardBytes: [UInt8] = Array("<*>".utf8)

    /// Splits a message into words and masks values in each.
    public static func maskedWords(_ message: String, collapseRuns: Bool = true) -> [String] {
        var masked = MaskedMessage()
        mask(message, collapseRuns: collapseRuns, into: &masked)
        return masked.words
    }

    /// Masks `message` into `masked` (whose buffers are reused).
    static func mask(_ message: String, collapseRuns: Bool, into masked: inout MaskedMessage) {
        masked.ends.removeAll(keepingCapacity: true)
        masked.hashes.removeAll(keepingCapacity: true)
        // A native string's bytes in place; any other is made native first (a copy).
        let done: Void? = message.utf8.withContiguousStorageIfAvailable { mask($0, collapseRuns: collapseRuns, into: &masked) }
        if done == nil {
            var native = message
            native.withUTF8 { mask($0, collapseRuns: collapseRuns, into: &masked) }
        }
    }

    private static func mask(_ bytes: UnsafeBufferPointer<UInt8>, collapseRuns: Bool, into masked: inout MaskedMessage) {
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return }
        // A masked word is at most three times its length (`1` becomes `<*>`).
        let capacity = 3 * count + 8
        if masked.bytes.count < capacity {
            masked.bytes.append(contentsOf: repeatElement(0, count: capacity - masked.bytes.count))
        }
        var written = 0
        masked.bytes.withUnsafeMutableBufferPointer { buffer in
            let out = buffer.baseAddress!
            var previousWasWildcard = false
            var start = 0
            var index = 0
            let raw = UnsafeRawPointer(base)
            while index <= count {
                if index < count {
                    let byte = bytes[index]
                    if !(byte == 32 || byte == 9 || byte == 10 || byte == 13) {
                        index += 1
                        // Eight bytes at a time to the next byte below `!` (spaces, tabs,
                        // line ends and other control bytes).
                        while index + 8 <= count {
                            let below = ByteScan.below(ByteScan.load(raw, index), 0x21)
                            if below != 0 {
                                index += below.trailingZeroBitCount >> 3
                                break
                            }
                            index += 8
                        }
                        continue
                    }
                }
                if index > start {
                    let mark = written
                    maskWord(UnsafeBufferPointer(rebasing: bytes[start..<index]), into: out, at: &written)
                    let isWildcard = written - mark == 3 && out[mark] == 60 && out[mark + 1] == 42 && out[mark + 2] == 62
                    if isWildcard && previousWasWildcard && collapseRuns {
                        written = mark
                    } else {
                        previousWasWildcard = isWildcard
                        masked.ends.append(written)
                        // (The buffer holds 8 bytes beyond the longest output.)
                        masked.hashes.append(isWildcard ? wildcardHash : hashReadingPast(UnsafeRawPointer(out + mark), written - mark))
                    }
                }
                start = index + 1
                index += 1
            }
        }
        // Bytes past the last word are left as they are (words are found through `ends`), so
        // the buffer is not cleared and refilled for every message.
    }

    /// A 64-bit hash of `count` bytes, eight at a time (words are compared by this hash; a
    /// collision between two different words is vanishingly unlikely). Not persisted: it only
    /// has to agree within one process.
    @inline(__always) static func hash(_ raw: UnsafeRawPointer, _ count: Int) -> UInt64 {
        hash(raw, count, readingPast: false)
    }

    /// `hash(raw, count)`, reading the last partial chunk as one 8-byte load: up to 7 bytes
    /// past `count` must be readable (their values do not matter).
    @inline(__always) static func hashReadingPast(_ raw: UnsafeRawPointer, _ count: Int) -> UInt64 {
        hash(raw, count, readingPast: true)
    }

    @inline(__always) private static func hash(_ raw: UnsafeRawPointer, _ count: Int, readingPast: Bool) -> UInt64 {
        // Every chunk but the last is mixed in as it comes; the last (most words have only
        // one) goes straight into splitmix64's finaliser, a bijection with full avalanche.
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: count &+ 1)
        var index = 0
        while index + 8 < count {
            let chunk = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            h = (h ^ chunk) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            index += 8
        }
        if index < count {
            var chunk: UInt64 = 0
            if readingPast {
                let kept = UInt64(count - index) * 8
                let all = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                chunk = all & ((1 << kept) &- 1)  // (a shift by 64 gives 0: all eight kept)
            } else {
                var shift: UInt64 = 0
                while index < count {
                    chunk |= UInt64(raw.load(fromByteOffset: index, as: UInt8.self)) << shift
                    shift += 8
                    index += 1
                }
            }
            h ^= chunk
        }
        h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }

    static func hash(_ bytes: [UInt8], _ start: Int, _ end: Int) -> UInt64 {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return hash(UnsafeRawPointer(bitPattern: 1)!, 0) }
            return hash(base + start, end - start)
        }
    }

    static func hash(_ word: String) -> UInt64 {
        let bytes = Array(word.utf8)
        return hash(bytes, 0, bytes.count)
    }

    static let wildcardHash: UInt64 = hash("<*>")

    /// Whether `byte` is in the ASCII set given as two 64-bit masks (bytes 0-63, 64-127): one
    /// shift and test, where a `switch` over the characters compiled to a jump table whose
    /// indirect jumps were a quarter of the masking's time.
    @inline(__always) static func isIn(_ byte: UInt8, low: UInt64, high: UInt64) -> Bool {
        let mask = byte < 64 ? low : byte < 128 ? high : 0
        return (mask >> UInt64(byte & 63)) & 1 != 0
    }

    /// Delimiters between the pieces of a word: the first group (`,!;:=|"'[](){}<>`) separates
    /// keys, values and list items; the second (`.-+@#$%&`) the parts of dotted names, IPs,
    /// ranges and the like.
    @inline(__always) static func isMajorDelimiter(_ byte: UInt8) -> Bool {
        isIn(byte, low: 0x7C00_1386_0000_0000, high: 0x3800_0000_2800_0000)
    }

    @inline(__always) static func isMinorDelimiter(_ byte: UInt8) -> Bool {
        isIn(byte, low: 0x0000_6878_0000_0000, high: 0x0000_0000_0000_0001)
    }

    @inline(__always) static func isDelimiter(_ byte: UInt8) -> Bool {
        isMajorDelimiter(byte) || isMinorDelimiter(byte) || byte == UInt8(ascii: "/") || byte == 32
    }

    @inline(__always) private static func appendWildcard(_ out: UnsafeMutablePointer<UInt8>, _ written: inout Int) {
        out[written] = 60
        out[written + 1] = 42
        out[written + 2] = 62
        written += 3
    }

    @inline(__always) private static func append(_ bytes: UnsafeBufferPointer<UInt8>, _ out: UnsafeMutablePointer<UInt8>, _ written: inout Int) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        if count <= 16 {
            // Most parts are short: a loop beats a call to memmove.
            for index in 0..<count { out[written + index] = base[index] }
        } else {
            (out + written).update(from: base, count: count)
        }
        written += count
    }

    /// Masks the values in one whitespace-free word, appending the result to `out`.
    ///
    /// One pass over the bytes: a word is pieces between major delimiters, a piece is parts
    /// between minor ones. A part is a value when it starts with a digit, is at least 30%
    /// digits or has three, is a long hex string, or is `true`/`false`/`null`; a piece that
    /// starts with `/` is a path; a piece with a value and two or more minor delimiters is one
    /// value; after `scheme://` the rest of a URL, up to a closing bracket, quote or comma, is one.
    static func maskWord(_ word: UnsafeBufferPointer<UInt8>, into out: UnsafeMutablePointer<UInt8>, at written: inout Int) {
        let mark = written
        let n = word.count
        // Most words are letters only: they are values only as long hex strings or keywords,
        // and are otherwise copied whole, without the pass below.
        var lettersOnly = true, hexOnly = true
        for byte in word {
            let offset = (byte | 0x20) &- 97  // 0-25 for a letter of either case
            if offset >= 26 {
                lettersOnly = false
                break
            }
            if offset >= 6 { hexOnly = false }
        }
        if lettersOnly {
            if (hexOnly && n >= 8) || ((n == 4 || n == 5) && isKeywordValue(word)) {
                appendWildcard(out, &written)
            } else {
                append(word, out, &written)
            }
            return
        }
        var wildcards = 0
        // The current piece: where it starts in `out`, how many values and minor delimiters.
        var pieceMark = written
        var pieceValues = 0
        var pieceDelimiters = 0
        // The current part: where it starts in `word` and what it is made of.
        var partStart = 0
        var digits = 0
        var hex = true

        func endPart(_ end: Int) {
            let length = end - partStart
            guard length > 0 else { return }
            var value = false
            if digits > 0 {
                let first = word[partStart]
                value = (first >= 48 && first <= 57) || digits * 10 >= length * 3 || digits >= 3 || (hex && length >= 8)
            } else if hex && length >= 8 {
                value = true
            } else if length == 4 || length == 5 {
                value = isKeywordValue(UnsafeBufferPointer(rebasing: word[partStart..<end]))
            }
            if value {
                appendWildcard(out, &written)
                wildcards += 1
                pieceValues += 1
            } else {
                append(UnsafeBufferPointer(rebasing: word[partStart..<end]), out, &written)
            }
        }
        func endPiece() {
            // A compound with a value in it (`msra-sa-41`, `node-7.example.com`) is one value.
            if pieceValues > 0 && pieceDelimiters >= 2 {
                written = pieceMark
                appendWildcard(out, &written)
                wildcards += 1
            }
        }
        func startPart(_ index: Int) {
            partStart = index
            digits = 0
            hex = true
        }
        func startPiece(_ index: Int) {
            pieceMark = written
            pieceValues = 0
            pieceDelimiters = 0
            startPart(index)
        }

        var index = 0
        while index < n {
            // Letters, digits and other bytes only count, in a loop of their own; delimiters
            // (major, minor and `/`, which take in `:` for URLs) are dealt with below. (In one
            // loop with the tests below, the compiler made one jump table of them all: an
            // indirect jump per byte, a third of this function's time.)
            var byte = word[index]
            while !isIn(byte, low: 0x7C00_FBFE_0000_0000, high: 0x3800_0000_2800_0001) {
                if isDigit(byte) {
                    digits += 1
                } else if !((byte >= 97 && byte <= 102) || (byte >= 65 && byte <= 70)) {
                    hex = false
                }
                index += 1
                guard index < n else { break }
                byte = word[index]
            }
            guard index < n else { break }
            if index == partStart && written == pieceMark && byte == UInt8(ascii: "/") && index + 1 < n
                && !isMajorDelimiter(word[index + 1])
            {
                // An absolute path: one value up to the next major delimiter.
                var end = index + 1
                while end < n && !isMajorDelimiter(word[end]) { end += 1 }
                appendWildcard(out, &written)
                wildcards += 1
                index = end
                startPiece(index)
                continue
            }
            if byte == UInt8(ascii: ":") && index + 2 < n && word[index + 1] == UInt8(ascii: "/") && word[index + 2] == UInt8(ascii: "/")
                && index > partStart && isLetter(word[index - 1])
            {
                // A URL: keep the scheme, mask the rest.
                var schemeStart = index - 1
                while schemeStart > partStart && isLetter(word[schemeStart - 1]) { schemeStart -= 1 }
                endPart(schemeStart)
                endPiece()
                append(UnsafeBufferPointer(rebasing: word[schemeStart..<(index + 3)]), out, &written)
                appendWildcard(out, &written)
                wildcards += 1
                var end = index + 3
                while end < n && !isURLEnd(word[end]) { end += 1 }
                index = end
                startPiece(index)
                continue
            }
            if isMajorDelimiter(byte) || byte == UInt8(ascii: "/") {
                // (`/` inside a word separates pieces: `host-7/10.0.0.1` is two values.)
                endPart(index)
                endPiece()
                out[written] = byte
                written += 1
                startPiece(index + 1)
            } else if isMinorDelimiter(byte)
                && !(byte == UInt8(ascii: "-") && index + 1 < n && isDigit(word[index + 1])
                    && (index == partStart || !(isLetter(word[index - 1]) || isDigit(word[index - 1]))))
            {
                // (A `-` before a digit and after no letter or digit is a sign: `blk_-42`, `=-1`.)
                endPart(index)
                out[written] = byte
                written += 1
                // A run of delimiters (`instruction......0`) counts once.
                if index > partStart { pieceDelimiters += 1 }
                startPart(index + 1)
            } else if isDigit(byte) {
                digits += 1
            } else if !((byte >= 97 && byte <= 102) || (byte >= 65 && byte <= 70)) {
                hex = false
            }
            index += 1
        }
        endPart(n)
        endPiece()
        // Only a word with two values in it can fold.
        if wildcards >= 2 { written = fold(out, from: mark, to: written) }
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    @inline(__always) static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
    }

    /// `]`, `)`, `}`, `"`, `'`, `,` and `>` end a URL.
    @inline(__always) private static func isURLEnd(_ byte: UInt8) -> Bool {
        isIn(byte, low: 0x4000_1284_0000_0000, high: 0x2000_0000_2000_0000)
    }

    /// `true`, `false` and `null` in any case.
    private static func isKeywordValue(_ part: UnsafeBufferPointer<UInt8>) -> Bool {
        switch part.count {
        case 4: return equalsIgnoringCase(part, "true") || equalsIgnoringCase(part, "null")
        case 5: return equalsIgnoringCase(part, "false")
        default: return false
        }
    }

    private static func equalsIgnoringCase(_ part: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for index in 0..<part.count where (part[index] | 0x20) != w[index] { return false }
        return true
    }

    /// `<*>.<*>` and `<*><*>` become one `<*>` (a dotted or glued value is one value); works in
    /// place on `bytes[mark..<end]` and returns the new end.
    private static func fold(_ bytes: UnsafeMutablePointer<UInt8>, from mark: Int, to end: Int) -> Int {
        var write = mark
        var read = mark
        while read < end {
            bytes[write] = bytes[read]
            write += 1
            read += 1
            let n = write - mark
            if n >= 6, bytes[write - 1] == 62, bytes[write - 2] == 42, bytes[write - 3] == 60,
                bytes[write - 4] == 62, bytes[write - 5] == 42, bytes[write - 6] == 60
            {
                write -= 3
            } else if n >= 7, bytes[write - 1] == 62, bytes[write - 2] == 42, bytes[write - 3] == 60,
                bytes[write - 4] == UInt8(ascii: "."), bytes[write - 5] == 62, bytes[write - 6] == 42, bytes[write - 7] == 60
            {
                write -= 4
            }
        }
        return write
    }
}
