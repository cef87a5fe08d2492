#if canImport(Glibc)
import Glibc
#endif

/// Reads frames and the error type out of stack-trace text (Java and Kotlin, .NET, JavaScript,
/// Python, Go) and writes frames back as text. Frames that cannot be read are skipped: the text
/// itself is always kept. Works on UTF-8 bytes, in time linear in the text: it runs for every
/// ingested event, on traces of up to 64 KiB and more.
///
/// Frames come innermost first, the order Java, .NET, V8 and Go print them; Python's tracebacks
/// ("most recent call last") are turned round to match, so the first frames of an event are the
/// ones nearest the error whatever the runtime (the fingerprint keeps the first in-app frames).
public enum StackTraceParser {
    /// The most frames an event keeps: the top ones are those that matter.
    public static let maximumFrames = 200
    /// Function, module and file names are cut to this many bytes.
    public static let maximumNameBytes = 1024

    static let libraryPrefixes = [
        "java.", "javax.", "jdk.", "sun.", "kotlin.", "kotlinx.", "scala.", "System.", "Microsoft.", "Npgsql.", "node:",
        "internal/", "node_modules/", "<anonymous>", "runtime.", "net/http.", "reflect.", "org.springframework.", "io.netty.", "<frozen",
        "/usr/lib/python", "lib/python", "site-packages", "/usr/local/go/", "pkg/mod/",
    ].map { Array($0.utf8) }
    /// The same prefixes after a `/`: found anywhere in a path (`/app/node_modules/x.js`). Not
    /// `internal/`: Node's own modules start with it, but Go applications keep their packages
    /// in `…/internal/…`.
    static let librarySegments = libraryPrefixes.filter { !$0.elementsEqual("internal/".utf8) }.map { [UInt8(ascii: "/")] + $0 }

    /// The frames of a trace, innermost first, at most `limit` of them.
    public static func frames(in text: String, limit: Int = maximumFrames) -> [StackFrame] {
        guard limit > 0 else { return [] }
        var frames: [StackFrame] = []
        // Python prints the outermost call first: its frames are collected apart and turned round.
        var python: [StackFrame] = []
        let lines = Self.lines(Array(text.utf8))
        var index = 0
        // Every line is looked at, even past `limit` frames: Python frames found later come first.
        while index < lines.count {
            let line = lines[index]
            index += 1
            if line.starts(with: "File \"".utf8) {
                python.append(pythonFrame(line))
                // Only the innermost `limit` count: keep the newest, in amortised constant time.
                if python.count - limit >= limit { python.removeFirst(python.count - limit) }
            } else if frames.count >= limit {
                continue
            } else if line.starts(with: "at ".utf8) {
                frames.append(atFrame(line.dropFirst(3)))
            } else if index < lines.count, let frame = goFrame(line, location: lines[index]) {
                frames.append(frame)
                index += 1
            }
        }
        if python.isEmpty { return frames }
        return Array((python.reversed() + frames).prefix(limit))
    }

    /// The non-empty lines of `bytes`, each trimmed (`split(separator: 10).map(trim)`, with
    /// the line ends found by `memchr`).
    static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            while start < buffer.count {
                let end = memchr(base + start, 10, buffer.count - start).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? buffer.count
                if end > start { lines.append(trim(bytes[start..<end])) }
                start = end + 1
            }
        }
        return lines
    }

    /// `function (file:line)` lines, one per frame.
    public static func render(_ frames: [StackFrame]) -> String {
        frames.map { frame in
            var text = "  at \(frame.function ?? "?")"
            if let file = frame.file { text += " (\(file)\(frame.line.map { ":\($0)" } ?? ""))" }
            return text
        }.joined(separator: "\n")
    }

    /// The type and message of the error a trace reports, or nil when the text names none.
    ///
    /// - Python: the exception line after the last `Traceback (most recent call last):`, so
    ///   the last exception of a chain ("During handling…", "The above exception…"):
    ///   `KeyError: 'customer'` → (`KeyError`, `'customer'`). `builtins.` is dropped, as
    ///   Python's own traceback drops it.
    /// - Java and Kotlin: the first line, the type thrown (not its `Caused by:` root):
    ///   `java.lang.IllegalStateException: msg`, also after `Exception in thread "main" `.
    /// - .NET: the first line, the outer exception; the message stops at ` ---> ` (an inner
    ///   exception on the same line) and a native error code is dropped from the type
    ///   (`System.Net.Sockets.SocketException (111): …` → `System.Net.Sockets.SocketException`).
    ///   `Unhandled exception. ` before it is skipped.
    /// - JavaScript: the first line, `TypeError: Cannot read properties of undefined (reading 'x')`;
    ///   Node's error codes stay in the type (`Error [ERR_HTTP_HEADERS_SENT]`).
    /// - Go: `panic: runtime error: index out of range [5] with length 3` → (`runtime.Error`,
    ///   `index out of range [5] with length 3`): every panic the runtime itself raises
    ///   implements the `runtime.Error` interface and is printed with the prefix
    ///   `runtime error: `, while the concrete type (`runtime.boundsError`) is not printed.
    ///   Other panics give (`panic`, the value as printed); `fatal error: concurrent map writes`
    ///   gives (`fatal error`, `concurrent map writes`).
    ///
    /// A message is the rest of the type's line (a multi-line message gives its first line).
    /// Only the first line that is not empty is read (Python aside). A type is at most 200 bytes
    /// with no spaces or control characters (only Node's code above adds one); a first line
    /// without a message counts only when a frame follows it, so that an ordinary line of text
    /// is not taken for a type.
    public static func errorType(in text: String) -> (type: String, message: String?)? {
        let bytes = Array(text.utf8)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        // The first lines, for every runtime but Python, and the last Python traceback header.
        var afterTraceback: Int?
        for (position, byte) in bytes.enumerated() where byte == 10 {
            if lines.count < headerLines { lines.append(trimEnd(bytes[start..<position])) }
            if bytes[start..<position].starts(with: tracebackHeader) { afterTraceback = position + 1 }
            start = position + 1
        }
        if start < bytes.count {
            if lines.count < headerLines { lines.append(trimEnd(bytes[start...])) }
            if bytes[start...].starts(with: tracebackHeader) { afterTraceback = bytes.count }
        }
        if let afterTraceback { return pythonError(bytes[afterTraceback...]) }

        let header = lines.map { trim($0) }.filter { !$0.isEmpty }
        guard var line = header.first else { return nil }
        if let go = goPanic(line) { return go }
        for prefix in uncaughtPrefixes where line.starts(with: prefix) { line = line.dropFirst(prefix.count) }
        if line.starts(with: javaThreadPrefix), let close = line.dropFirst(javaThreadPrefix.count).firstIndex(of: UInt8(ascii: "\"")) {
            line = trim(line[(close + 1)...])
        }
        guard let (type, message) = typeLine(line) else { return nil }
        if let message { return (type, cut(message, at: Pattern.inner)) }
        return header.count > 1 && isFrameLine(header[1]) ? (type, nil) : nil
    }

    // MARK: - Error types

    private static let headerLines = 8
    private static let tracebackHeader = Array("Traceback (most recent call last):".utf8)
    private static let javaThreadPrefix = Array("Exception in thread \"".utf8)
    private static let uncaughtPrefixes = ["Unhandled exception. ", "Unhandled Exception: ", "Uncaught "].map { Array($0.utf8) }
    private static let maximumTypeBytes = 200

    /// The first line after the last traceback header that is not indented: frames, source
    /// lines and `^^^^` markers are.
    private static func pythonError(_ rest: ArraySlice<UInt8>) -> (type: String, message: String?)? {
        for line in rest.split(separator: 10) {
            let line = trimEnd(line)
            guard let first = line.first, first != 32, first != 9 else { continue }
            guard let (type, message) = typeLine(line) else { return nil }
            let builtins = "builtins."
            return (type.hasPrefix(builtins) && type.count > builtins.count ? String(type.dropFirst(builtins.count)) : type, message)
        }
        return nil
    }

    /// Go's `panic: …` and `fatal error: …` lines.
    private static func goPanic(_ line: ArraySlice<UInt8>) -> (type: String, message: String?)? {
        let runtimeError = Array("runtime error: ".utf8)
        let fatal = Array("fatal error: ".utf8)
        let panic = Array("panic: ".utf8)
        if line.starts(with: fatal) { return ("fatal error", nonEmpty(line.dropFirst(fatal.count))) }
        guard line.starts(with: panic) else { return nil }
        var value = line.dropFirst(panic.count)
        // A panic raised again after recover: "panic: x [recovered]" (Go 1.23: "[recovered, repanicked]").
        if value.last == UInt8(ascii: "]"), let open = find(Pattern.recovered, in: value) { value = value[..<open] }
        if value.starts(with: runtimeError) { return ("runtime.Error", nonEmpty(value.dropFirst(runtimeError.count))) }
        return ("panic", nonEmpty(value))
    }

    /// `Type: message`, or `Type` alone (with no message).
    private static func typeLine(_ line: ArraySlice<UInt8>) -> (type: String, message: String?)? {
        // The type ends at the first ": " (or a ':' ending the line); "::" and "C:\" do not end it.
        var end = line.endIndex
        var message: ArraySlice<UInt8>?
        var i = line.startIndex
        while i < line.endIndex {
            if line[i] == UInt8(ascii: ":") {
                let next = i + 1
                if next == line.endIndex {
                    end = i
                    break
                }
                if line[next] == 32 {
                    end = i
                    message = line[(next + 1)...]
                    break
                }
            }
            if i - line.startIndex > maximumTypeBytes + 16 { return nil }
            i += 1
        }
        var head = line[line.startIndex..<end]
        var suffix = ""
        // Node's `Error [ERR_X]` keeps its code; .NET's `SocketException (111)` drops its number.
        if head.last == UInt8(ascii: "]"), let open = head.lastIndex(of: UInt8(ascii: "[")), open > head.startIndex,
            head[open - 1] == 32, head[(open + 1)..<(head.endIndex - 1)].allSatisfy(isCodeByte), open + 1 < head.endIndex - 1
        {
            suffix = " " + string(head[open...])
            head = head[head.startIndex..<(open - 1)]
        } else if head.last == UInt8(ascii: ")"), let open = head.lastIndex(of: UInt8(ascii: "(")), open > head.startIndex,
            head[open - 1] == 32, head[(open + 1)..<(head.endIndex - 1)].allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "-") })
        {
            head = head[head.startIndex..<(open - 1)]
        }
        guard isTypeName(head) else { return nil }
        return (string(head) + suffix, message.flatMap(nonEmpty))
    }

    private static func isTypeName(_ name: ArraySlice<UInt8>) -> Bool {
        guard let first = name.first, name.count <= maximumTypeBytes else { return false }
        let isLetter = (first | 0x20) >= UInt8(ascii: "a") && (first | 0x20) <= UInt8(ascii: "z")
        guard isLetter || first == UInt8(ascii: "_") || first == UInt8(ascii: "$") || first >= 0x80 else { return false }
        return name.allSatisfy { byte in
            byte > 32 && byte != 0x7F && !"\"'(),;={}[]".utf8.contains(byte)
        }
    }

    private static func isCodeByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || isDigit(byte) || byte == UInt8(ascii: "_")
    }

    private static func isFrameLine(_ line: ArraySlice<UInt8>) -> Bool {
        line.starts(with: "at ".utf8) || line.starts(with: "File \"".utf8)
    }

    private static func cut(_ text: String, at marker: [UInt8]) -> String? {
        let bytes = Array(text.utf8)
        guard let position = find(marker, in: bytes[...]) else { return text }
        return nonEmpty(bytes[..<position])
    }

    private static func nonEmpty(_ bytes: ArraySlice<UInt8>) -> String? {
        let trimmed = trim(bytes)
        return trimmed.isEmpty ? nil : string(trimmed)
    }

    // MARK: - Frames

    /// Java `com.x.Y.m(Y.java:42)` (Java 9+: `java.base/java.lang.X.m(X.java:1)`), .NET
    /// `N.C.M(String s) in /src/C.cs:line 42`, V8 `f (/app/x.js:10:5)`, `async f (…)`,
    /// `/app/x.js:10:5` (an anonymous function).
    private static func atFrame(_ text: ArraySlice<UInt8>) -> StackFrame {
        var function: ArraySlice<UInt8>? = text
        var location: ArraySlice<UInt8>?
        if let range = find(Pattern.in, in: text) {
            function = text[text.startIndex..<range]
            var rest = Array(text[(range + 4)...])
            if let line = find(Pattern.line, in: rest[...]) { rest.replaceSubrange(line..<line + 6, with: [UInt8(ascii: ":")]) }
            location = rest[...]
        } else if text.last == UInt8(ascii: ")"), let open = text.lastIndex(of: UInt8(ascii: "(")) {
            location = text[(open + 1)..<(text.endIndex - 1)]
            function = trim(text[text.startIndex..<open])
        } else if !text.contains(32), splitLine(text).1 != nil {
            // V8 writes a frame of an anonymous function as its location alone.
            location = text
            function = nil
        }
        var module: ArraySlice<UInt8>?
        if var name = function {
            if name.starts(with: "async ".utf8) { name = name.dropFirst(6) }
            // V8's `Function.executeUserEntryPoint [as runMain]`: the name it was called by.
            if name.last == UInt8(ascii: "]"), let alias = find(Pattern.alias, in: name) { name = name[name.startIndex..<alias] }
            // .NET keeps the parameter list on the function: drop it.
            if name.last == UInt8(ascii: ")"), let paren = name.firstIndex(of: UInt8(ascii: "(")) {
                name = name[name.startIndex..<paren]
            }
            // Java 9+: `[class loader/][module[@version]]/class.method` before a bare file name.
            if let slash = name.lastIndex(of: UInt8(ascii: "/")), !name.contains(32),
                let location, !location.contains(UInt8(ascii: "/")), !location.contains(UInt8(ascii: "\\"))
            {
                var prefix = name[name.startIndex..<slash]
                while prefix.last == UInt8(ascii: "/") { prefix = prefix.dropLast() }
                if let loader = prefix.lastIndex(of: UInt8(ascii: "/")) { prefix = prefix[(loader + 1)...] }
                module = prefix.isEmpty ? nil : prefix
                name = name[(slash + 1)...]
            }
            function = name
        }
        let (file, line) = location.map(splitLine) ?? (nil, nil)
        // `(Native Method)`, `(Unknown Source)`, `(<anonymous>)`, `(index 0)`, a .NET parameter list.
        let isFile = line != nil || (file.map { !$0.isEmpty && !$0.contains(" ") && !$0.hasPrefix("<") } ?? false)
        return StackFrame(function: function.flatMap { $0.isEmpty ? nil : string($0) }, module: module.map(string),
                          file: isFile ? file : nil, line: line,
                          inApp: isApp(function ?? []) && isApp(module ?? []) && isApp(location ?? []))
    }

    /// Python `File "/app/x.py", line 12, in handler`.
    private static func pythonFrame(_ line: ArraySlice<UInt8>) -> StackFrame {
        let body = line.dropFirst(6)
        guard let quote = find(Pattern.pythonLine, in: body) else {
            let file = body.last == UInt8(ascii: "\"") ? body.dropLast() : body
            return StackFrame(function: nil, file: string(file), inApp: isApp(file))
        }
        let file = body[body.startIndex..<quote]
        let rest = body[(quote + 8)...]
        let digits = rest.prefix(while: isDigit)
        var function: String?
        let after = rest[digits.endIndex...]
        if after.starts(with: ", in ".utf8) { function = nonEmpty(after.dropFirst(5)) }
        return StackFrame(function: function, file: string(file), line: Int(string(digits)), inApp: isApp(file))
    }

    /// Go: `pkg.func(args)` or `pkg.(*T).m(…)`, then `/path/file.go:42 +0x1d` on the next line.
    private static func goFrame(_ line: ArraySlice<UInt8>, location next: ArraySlice<UInt8>) -> StackFrame? {
        guard line.last == UInt8(ascii: ")"), let open = line.lastIndex(of: UInt8(ascii: "(")), open > line.startIndex else { return nil }
        let function = line[line.startIndex..<open]
        guard !function.contains(32) else { return nil }
        let location = next.split(separator: 32).first ?? []
        let (file, lineNumber) = splitLine(location)
        guard let file, lineNumber != nil, file.hasSuffix(".go") || file.hasSuffix(".s") else { return nil }
        let builtin = function.elementsEqual("panic".utf8)
        return StackFrame(function: string(function), file: file, line: lineNumber,
                          inApp: !builtin && isApp(function) && isApp(location))
    }

    /// `file.js:10:5` → (`file.js`, 10); `Y.java:42` → (`Y.java`, 42).
    private static func splitLine(_ location: ArraySlice<UInt8>) -> (String?, Int?) {
        var end = location.endIndex
        var line: Int?
        while let colon = location[location.startIndex..<end].lastIndex(of: UInt8(ascii: ":")),
            colon + 1 < end, location[(colon + 1)..<end].allSatisfy(isDigit),
            let number = Int(string(location[(colon + 1)..<end]))
        {
            line = number
            end = colon
        }
        let file = location[location.startIndex..<end]
        return (file.isEmpty ? nil : string(file), line)
    }

    /// Whether no library prefix starts the name and none follows a `/` in it (`librarySegments`).
    static func isApp(_ name: ArraySlice<UInt8>) -> Bool {
        // One pass: the prefixes are tried at the start and after each `/`, only those with the
        // byte found there as their first (a frame name is tested for every frame of a trace).
        let byFirstByte = libraryPrefixesByFirstByte
        return name.withUnsafeBufferPointer { bytes in
            func libraryPrefix(at start: Int, segment: Bool) -> Bool {
                guard start < bytes.count else { return false }
                for prefix in byFirstByte[Int(bytes[start])] where !(segment && prefix.isInternal) {
                    let end = start + prefix.bytes.count
                    if end <= bytes.count && UnsafeBufferPointer(rebasing: bytes[start..<end]).elementsEqual(prefix.bytes) {
                        return true
                    }
                }
                return false
            }
            if libraryPrefix(at: 0, segment: false) { return false }
            for index in bytes.indices where bytes[index] == UInt8(ascii: "/") && libraryPrefix(at: index + 1, segment: true) {
                return false
            }
            return true
        }
    }

    /// `libraryPrefixes` by their first byte; `isInternal` marks `internal/`, which is no segment.
    static let libraryPrefixesByFirstByte: [[(bytes: [UInt8], isInternal: Bool)]] = {
        var table = [[(bytes: [UInt8], isInternal: Bool)]](repeating: [], count: 256)
        for prefix in libraryPrefixes {
            table[Int(prefix[0])].append((prefix, prefix.elementsEqual("internal/".utf8)))
        }
        return table
    }()

    /// Where `needle` first occurs in `haystack`: candidates found by `memchr` on its first
    /// byte, checked by `memcmp`.
    /// The byte patterns looked for, made once (a frame is read for every frame of every event).
    private enum Pattern {
        static let `in` = Array(" in ".utf8)
        static let line = Array(":line ".utf8)
        static let alias = Array(" [as ".utf8)
        static let pythonLine = Array("\", line ".utf8)
        static let inner = Array(" ---> ".utf8)
        static let recovered = Array(" [recovered".utf8)
    }

    private static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard !needle.isEmpty, needle.count <= haystack.count else { return nil }
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n -> Int? in
                guard let hay = h.baseAddress, let pin = n.baseAddress else { return nil }
                let last = h.count - n.count
                var offset = 0
                while offset <= last {
                    guard let hit = memchr(hay + offset, Int32(pin[0]), last - offset + 1) else { return nil }
                    offset = UnsafeRawPointer(hit) - UnsafeRawPointer(hay)
                    if memcmp(hay + offset, pin, n.count) == 0 { return haystack.startIndex + offset }
                    offset += 1
                }
                return nil
            }
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    private static func trim(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == 32 || first == 9 || first == 13 { slice = slice.dropFirst() }
        while let last = slice.last, last == 32 || last == 9 || last == 13 { slice = slice.dropLast() }
        return slice
    }

    private static func trimEnd(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let last = slice.last, last == 32 || last == 9 || last == 13 { slice = slice.dropLast() }
        return slice
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
}
