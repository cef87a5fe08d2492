/// Reads frames out of stack-trace text (Java, .NET, JavaScript, Python, Go) and writes frames
/// back as text. Frames that cannot be read are skipped: the text itself is always kept.
public enum StackTraceParser {
    static let libraryPrefixes = [
        "java.", "javax.", "jdk.", "sun.", "kotlin.", "scala.", "System.", "Microsoft.", "Npgsql.", "node:", "internal/",
        "runtime.", "net/http.", "reflect.", "org.springframework.", "io.netty.", "<frozen", "/usr/lib/python", "site-packages",
    ]

    public static func frames(in text: String, limit: Int = 200) -> [StackFrame] {
        var frames: [StackFrame] = []
        var lines = text.split(whereSeparator: \.isNewline).makeIterator()
        while let raw = lines.next(), frames.count < limit {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("at ") {
                frames.append(atFrame(String(line.dropFirst(3))))
            } else if line.hasPrefix("File \"") {
                frames.append(pythonFrame(line))
            } else if line.hasSuffix(")"), line.contains("("), !line.contains(" "), let next = lines.next() {
                // Go: "pkg.func(args)" then "\t/path/file.go:42 +0x1d"
                let location = next.trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) ?? ""
                let (file, lineNumber) = splitLine(location)
                let function = String(line[..<line.firstIndex(of: "(")!])
                frames.append(StackFrame(function: function, file: file, line: lineNumber, inApp: isApp(function) && isApp(file ?? "")))
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
    private static func atFrame(_ text: String) -> StackFrame {
        var function = text
        var location: String?
        if let range = text.range(of: " in ") {
            function = String(text[..<range.lowerBound])
            location = String(text[range.upperBound...]).replacingOccurrences(of: ":line ", with: ":")
        } else if text.hasSuffix(")"), let open = text.lastIndex(of: "(") {
            let inside = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
            function = String(text[..<open]).trimmingCharacters(in: .whitespaces)
            location = inside
        }
        // .NET keeps the parameter list on the function: drop it.
        if let paren = function.firstIndex(of: "("), function.hasSuffix(")") { function = String(function[..<paren]) }
        if function.isEmpty, let location { function = location }
        let (file, line) = location.map(splitLine) ?? (nil, nil)
        return StackFrame(function: function, file: file, line: line, inApp: isApp(function) && isApp(file ?? ""))
    }

    /// Python `File "/app/x.py", line 12, in handler`.
    private static func pythonFrame(_ line: String) -> StackFrame {
        let parts = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let file = parts.first.map { String($0.dropFirst(6).dropLast()) }
        let number = parts.count > 1 ? Int(parts[1].replacingOccurrences(of: "line ", with: "")) : nil
        let function = parts.count > 2 ? String(parts[2].dropFirst(3)) : nil
        return StackFrame(function: function, file: file, line: number, inApp: isApp(file ?? ""))
    }

    /// `file.js:10:5` → (`file.js`, 10); `Y.java:42` → (`Y.java`, 42).
    private static func splitLine(_ location: String) -> (String?, Int?) {
        var parts = location.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var line: Int?
        while parts.count > 1, let number = Int(parts.last!) {
            line = number
            parts.removeLast()
        }
        let file = parts.joined(separator: ":")
        return (file.isEmpty ? nil : file, line)
    }

    static func isApp(_ name: String) -> Bool {
        !libraryPrefixes.contains { name.hasPrefix($0) || name.contains("/" + $0) }
    }
}
