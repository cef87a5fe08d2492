import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes one JSON object per line to standard output:
/// `{"ts":"2026-11-22T04:50:32.123Z","level":"info","logger":"faultline","msg":"…",…metadata}`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "{\"ts\":\"\(LogTime.now())\",\"level\":\"\(event.level.rawValue)\",\"logger\":"
        JSON.appendString(label, to: &line)
        line += ",\"msg\":"
        JSON.appendString(event.message.description, to: &line)
        for (key, value) in merged(metadata, event) where !["ts", "level", "logger", "msg"].contains(key) {
            line += ","
            JSON.appendString(key, to: &line)
            line += ":"
            JSON.appendString(value.description, to: &line)
        }
        line += "}\n"
        StandardOutput.write(line)
    }
}

/// `2026-11-22T04:50:32.123Z level logger: message key=value` for people at a terminal.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let fields = merged(metadata, event).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        StandardOutput.write("\(LogTime.now()) \(event.level.rawValue) \(label): \(event.message)\(fields.isEmpty ? "" : " " + fields)\n")
    }
}

/// The handler's metadata with the event's laid over it (and its error, if any), sorted by key.
private func merged(_ handler: Logger.Metadata, _ event: LogEvent) -> [(key: String, value: Logger.Metadata.Value)] {
    var all = event.metadata.map { handler.merging($0) { $1 } } ?? handler
    if let error = event.error { all["error"] = "\(error)" }
    return all.sorted { $0.key < $1.key }
}

enum StandardOutput {
    private static let lock = Mutex(())
    /// Where log lines go: standard output unless ``Logging/bootstrap(format:level:file:)`` named a file.
    static let descriptor = Atomic<Int32>(1)

    /// One `write` per line, under a lock, so lines from threads never interleave.
    static func write(_ text: String) {
        lock.withLock { _ in
            var text = text
            text.withUTF8 { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(descriptor.load(ordering: .relaxed), buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 { if errno == EINTR { continue } else { return } }
                    offset += written
                }
            }
        }
    }
}

package enum LogTime {
    package static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = spec.tv_nsec / 1_000_000
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(millis, 3))Z"
    }
}

/// Minimal JSON string escaping for log lines.
enum JSON {
    static func appendString(_ string: String, to output: inout String) {
        output.append("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output.append("\\\"")
            case "\\": output.append("\\\\")
            case "\n": output.append("\\n")
            case "\r": output.append("\\r")
            case "\t": output.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: output.unicodeScalars.append(scalar)
            }
        }
        output.append("\"")
    }
}

/// Sets up swift-log once for the process; only `main` calls this.
public enum Logging {
    /// - Parameter file: append the log lines to this file instead of writing them to standard
    ///   output (the demo keeps its terminal for its own progress).
    /// - Throws: when the file cannot be opened.
    public static func bootstrap(format: FaultlineConfiguration.LogFormat, level: Logger.Level, file: String) throws {
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ToolError("cannot open the log file \(file): \(String(cString: strerror(errno)))")
        }
        StandardOutput.descriptor.store(fd, ordering: .relaxed)
        bootstrap(format: format, level: level)
    }

    public static func bootstrap(format: FaultlineConfiguration.LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .json: JSONLogHandler(label: label, level: level)
            case .text: TextLogHandler(label: label, level: level)
            }
        }
    }
}
