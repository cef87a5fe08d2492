/// Reads frames out of stack-trace text (Java, .NET, JavaScript, Python, Go) and writes frames
/// back as text. Frames that cannot be read are skipped: the text itself is always kept.
/// Works on UTF-8 bytes: it runs for every ingested event.
public enum StackTraceParser {
    static let libraryPrefixes = [
        "java.", "javax.", "jdk.", "sun.", "kotlin.", "scala.", "System.", "Microsoft.", "Npgsql.", "node:", "internal/",
        "runtime.", "net/http.", "reflect.", "org.springframework.", "io.netty.", "<frozen", "/usr/lib/python", "site-packages",
    ].map { Array($0.utf8) }

    public static func frames(in text: String, limit: Int = 200) -> [StackFrame] {
        var frames: [StackFrame] = []
        let lines = Array(text.utf8).split(separator: 10).map { trim($0) }
        var index = 0
        while index < lines.count && frames.count < limit {
            let line = lines[index]
            index += 1
            if line.starts(with: "at ".utf8) {
                frames.append(atFrame(line.dropFirst(3)))
            } else if line.starts(with: "File \"".utf8) {
                frames.append(pythonFrame(line))
            } else if line.last == UInt8(ascii: ")"), let open = line.firstIndex(of: UInt8(ascii: "(")), !line.contains(32),
                index < lines.count
            {
                // Go: "pkg.func(args)" then "/path/file.go:42 +0x1d"
                let next = lines[index]
                index += 1
                let location = next.split(separator: 32).first ?? []
                let (file, lineNumber) = splitLine(location)
                let function = line[line.startIndex..<open]
                frames.append(StackFrame(function: string(function), file: file, line: lineNumber,
                                         inApp: isApp(function) && isApp(location)))
            }
        }
        return frames
    }

    /// `function (file:line)` lines, one per frame.
    public static func render(_ frames: [StackFrame]) -> String {
        frames.map { frame in
            var text = "  at \(frame.function ?? "?")"
            if let file = frame.file { text += " (\(file)\(frame.line.map { ":\($0)" } ?? ""))" }
            return text
        }.joined(separator: "\n")
    }

    /// Java `com.x.Y.m(Y.java:42)`, .NET `N.C.M(String s) in /src/C.cs:line 42`, JS `f (/app/x.js:10:5)`.
    private static func atFrame(_ text: ArraySlice<UInt8>) -> StackFrame {
        var function = text
        var location: ArraySlice<UInt8>?
        if let range = find(Array(" in ".utf8), in: text) {
            function = text[text.startIndex..<range]
            var rest = Array(text[(range + 4)...])
            if let line = find(Array(":line ".utf8), in: rest[...]) { rest.replaceSubrange(line..<line + 6, with: [UInt8(ascii: ":")]) }
            location = rest[...]
        } else if text.last == UInt8(ascii: ")"), let open = text.lastIndex(of: UInt8(ascii: "(")) {
            location = text[(open + 1)..<(text.endIndex - 1)]
            function = trim(text[text.startIndex..<open])
        }
        // .NET keeps the parameter list on the function: drop it.
        if function.last == UInt8(ascii: ")"), let paren = function.firstIndex(of: UInt8(ascii: "(")) {
            function = function[function.startIndex..<paren]
        }
        if function.isEmpty, let location { function = location }
        let (file, line) = location.map(splitLine) ?? (nil, nil)
        return StackFrame(function: string(function), file: file, line: line, inApp: isApp(function) && isApp(location ?? []))
    }

    /// Python `File "/app/x.py", line 12, in handler`.
    private static func pythonFrame(_ line: ArraySlice<UInt8>) -> StackFrame {
        let parts = line.split(separator: UInt8(ascii: ",")).map { trim($0) }
        let file = parts.first.map { $0.dropFirst(6).dropLast() }
        let number = parts.count > 1 ? Int(string(parts[1].drop { $0 < 48 || $0 > 57 })) : nil
        let function = parts.count > 2 ? string(parts[2].dropFirst(3)) : nil
        return StackFrame(function: function, file: file.map(string), line: number, inApp: isApp(file ?? []))
    }

    /// `file.js:10:5` → (`file.js`, 10); `Y.java:42` → (`Y.java`, 42).
    private static func splitLine(_ location: ArraySlice<UInt8>) -> (String?, Int?) {
        var end = location.endIndex
        var line: Int?
        while let colon = location[location.startIndex..<end].lastIndex(of: UInt8(ascii: ":")),
            let number = Int(string(location[(colon + 1)..<end]))
        {
            line = number
            end = colon
        }
        let file = location[location.startIndex..<end]
        return (file.isEmpty ? nil : string(file), line)
    }

    static func isApp(_ name: ArraySlice<UInt8>) -> Bool {
        !libraryPrefixes.contains { prefix in
            name.starts(with: prefix) || find([UInt8(ascii: "/")] + prefix, in: name) != nil
        }
    }

    private static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard needle.count <= haystack.count, let first = needle.first else { return nil }
        var i = haystack.startIndex
        while i <= haystack.endIndex - needle.count {
            if haystack[i] == first && haystack[i..<i + needle.count].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    private static func trim(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == 32 || first == 9 || first == 13 { slice = slice.dropFirst() }
        while let last = slice.last, last == 32 || last == 9 || last == 13 { slice = slice.dropLast() }
        return slice
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
}
