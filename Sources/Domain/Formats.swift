import Foundation

extension Context {
    /// Frames read from a text trace, with names cut to ``StackTraceParser/maximumNameBytes``.
    func frames(in text: String) -> [StackFrame] {
        var frames = StackTraceParser.frames(in: text)
        // In place, and only the names that change: most are short and hold no NUL.
        func bound(_ name: inout String?) {
            guard let value = name else { return }
            let bounded = self.text(cut(value, StackTraceParser.maximumNameBytes))
            if bounded.utf8.count != value.utf8.count || bounded != value { name = bounded }
        }
        for index in frames.indices {
            bound(&frames[index].function)
            bound(&frames[index].module)
            bound(&frames[index].file)
        }
        return frames
    }
}

// MARK: - Native JSON

extension EventDecoder {
    func decodeNative(_ value: JSONValue, _ context: inout Context) throws -> ErrorEvent {
        let index = context.next()
        let p = context.prefix(index)
        let f = try Fields(value, prefix: p, what: "event")
        let eventID: UUID
        if let text = try f.string("event_id") {
            guard let uuid = UUID(hyphenated: text) else { throw DecodeError("\(p)event_id \(quoted(text)) is not a UUID") }
            eventID = uuid
        } else {
            eventID = context.derivedID(index)
        }
        let timestampText = try f.required("timestamp")
        guard let timestamp = RFC3339.parse(timestampText) else {
            throw DecodeError("\(p)timestamp \(quoted(timestampText)) is not an RFC 3339 time such as 2026-11-22T04:50:32Z")
        }
        guard let service = try context.field(try f.required("service"), "service", index) else {
            throw DecodeError("\(p)missing required field service")
        }
        let severity: Severity
        if let name = try f.string("severity") {
            guard let parsed = Severity(name: name) else {
                throw DecodeError("\(p)severity \(quoted(name)) is not one of trace, debug, info, warning, error, fatal")
            }
            severity = parsed
        } else {
            severity = .error
        }
        let errorType = try context.field(try f.string("error_type"), "error_type", index)
        var message = try f.string("message") ?? ""
        if !message.utf8.contains(where: { $0 > 32 }) {
            guard let errorType else { throw DecodeError("\(p)missing required field message") }
            message = errorType
        }
        var stacktrace: String?
        var frames: [StackFrame] = []
        if let raw = f["stacktrace"] {
            if case .string(let text) = raw {
                stacktrace = text
                frames = context.frames(in: text)
            } else if let array = raw.arrayValue {
                // As many frames as a text trace gives (the top ones matter), names cut short.
                frames = try array.prefix(StackTraceParser.maximumFrames).enumerated().map { (n, element) throws in
                    let frame = try Fields(element, prefix: "\(p)stacktrace[\(n)].", what: "frame")
                    let name = { [context] (text: String?) in text.map { context.text(context.cut($0, StackTraceParser.maximumNameBytes)) } }
                    return StackFrame(
                        function: name(try frame.string("function")), module: name(try frame.string("module")),
                        file: name(try frame.string("file") ?? frame.string("filename")),
                        line: try frame.integer("line", in: 0...Int(Int32.max)),
                        inApp: frame["in_app"] != .bool(false))
                }
                stacktrace = StackTraceParser.render(frames)
            } else {
                throw DecodeError("\(p)stacktrace must be text or an array of frames, not \(raw.typeName)")
            }
        }
        var attributesJSON: String?
        if let raw = f["attributes"] {
            guard let object = raw.objectValue else { throw DecodeError("\(p)attributes must be an object, not \(raw.typeName)") }
            attributesJSON = jsonText(object)
        }
        return ErrorEvent(
            eventID: eventID,
            timestamp: try context.checkTime(timestamp, "timestamp", index),
            service: service,
            environment: try context.field(try f.string("environment"), "environment", index) ?? context.limits.defaultEnvironment,
            version: try context.field(try f.string("version"), "version", index),
            severity: severity,
            errorType: errorType ?? f["stacktrace"]?.stringValue.flatMap { try? context.field(StackTraceParser.errorType(in: $0)?.type, "error_type", index) },
            message: context.text(context.cut(message, context.limits.maxMessageLength)),
            stacktrace: stacktrace.map { context.text(context.cut($0, context.limits.maxStacktraceLength)) },
            frames: frames,
            errorCode: try context.field(try f.stringOrNumber("error_code"), "error_code", index),
            httpStatus: try f.integer("http_status", in: 100...599),
            traceID: try context.field(try f.string("trace_id"), "trace_id", index),
            spanID: try context.field(try f.string("span_id"), "span_id", index),
            host: try context.field(try f.string("host"), "host", index),
            pod: try context.field(try f.string("pod"), "pod", index),
            namespace: try context.field(try f.string("namespace"), "namespace", index),
            region: try context.field(try f.string("region"), "region", index),
            attributesJSON: attributesJSON.map(context.text), format: .native)
    }
}

func quoted(_ text: String) -> String {
    let short = text.count > 60 ? String(text.prefix(60)) + "…" : text
    return "\"\(short)\""
}

// MARK: - OpenTelemetry OTLP/JSON logs

extension EventDecoder {
    func decodeOTLP(_ document: JSONValue, _ context: inout Context, into events: inout [ErrorEvent], skipped: inout Int) throws {
        let root = try Fields(document, prefix: "", what: "OTLP message")
        guard let resourceLogs = root["resourceLogs"]?.arrayValue else {
            throw DecodeError("resourceLogs must be an array")
        }
        for (r, resourceLog) in resourceLogs.enumerated() {
            let rl = try Fields(resourceLog, prefix: "resourceLogs[\(r)].", what: "entry")
            let resource = try otlpAttributes(rl["resource"]?["attributes"], "resourceLogs[\(r)].resource")
            guard let scopeLogs = rl["scopeLogs"]?.arrayValue ?? rl["instrumentationLibraryLogs"]?.arrayValue else {
                throw DecodeError("resourceLogs[\(r)].scopeLogs must be an array")
            }
            for (s, scopeLog) in scopeLogs.enumerated() {
                let where_ = "resourceLogs[\(r)].scopeLogs[\(s)]"
                let sl = try Fields(scopeLog, prefix: where_ + ".", what: "entry")
                guard let records = sl["logRecords"]?.arrayValue else {
                    throw DecodeError("\(where_).logRecords must be an array")
                }
                for (n, record) in records.enumerated() {
                    if let event = try decodeOTLPRecord(record, resource: resource, path: "\(where_).logRecords[\(n)]", &context) {
                        events.append(event)
                        if events.count > limits.maxEventsPerMessage {
                            throw DecodeError("more than \(limits.maxEventsPerMessage) events in one message")
                        }
                    } else {
                        skipped += 1
                    }
                }
            }
        }
    }

    private func decodeOTLPRecord(_ value: JSONValue, resource: [String: JSONValue], path: String, _ context: inout Context) throws -> ErrorEvent? {
        let index = context.next()
        let p = path + ": "
        let f = try Fields(value, prefix: p, what: "log record")
        var attributes = try otlpAttributes(f["attributes"], path)
        let severity = try f.integer("severityNumber", in: 0...24).flatMap(Severity.init(otelNumber:))
            ?? (try f.string("severityText")).flatMap(Severity.init(name:)) ?? .info
        let exceptionType = attributes.removeValue(forKey: "exception.type").map(stringValue)
        let exceptionMessage = attributes.removeValue(forKey: "exception.message").map(stringValue)
        let exceptionStack = attributes.removeValue(forKey: "exception.stacktrace").map(stringValue)
        if severity < limits.minimumSeverity && exceptionType == nil && exceptionMessage == nil { return nil }

        guard let service = try context.field(resource["service.name"].map(stringValue), "service.name", index) else {
            throw DecodeError("\(p)the resource has no service.name attribute")
        }
        let time = try otlpTime(f, "timeUnixNano", p) ?? otlpTime(f, "observedTimeUnixNano", p)
        guard let time else { throw DecodeError("\(p)missing timeUnixNano and observedTimeUnixNano") }
        var body: String?
        if let raw = f["body"] { body = otlpValue(raw).map(stringValue) }
        guard let message = [exceptionMessage, body, exceptionType].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw DecodeError("\(p)has neither a body nor exception.message")
        }
        let eventID = (attributes.removeValue(forKey: "log.record.uid") ?? attributes.removeValue(forKey: "event.id"))
            .map(stringValue).flatMap(UUID.init(uuidString:)) ?? context.derivedID(index)
        let httpStatus = (attributes["http.response.status_code"] ?? attributes["http.status_code"])
            .flatMap { Int(stringValue($0)) }.flatMap { (100...599).contains($0) ? $0 : nil }
        return ErrorEvent(
            eventID: eventID, timestamp: try context.checkTime(time, "timeUnixNano", index), service: service,
            environment: try context.field((resource["deployment.environment.name"] ?? resource["deployment.environment"]).map(stringValue), "deployment.environment", index)
                ?? context.limits.defaultEnvironment,
            version: try context.field(resource["service.version"].map(stringValue), "service.version", index),
            severity: severity,
            errorType: try context.field(exceptionType, "exception.type", index)
                ?? exceptionStack.flatMap { try? context.field(StackTraceParser.errorType(in: $0)?.type, "exception.type", index) },
            message: context.text(context.cut(message, limits.maxMessageLength)),
            stacktrace: exceptionStack.map { context.text(context.cut($0, limits.maxStacktraceLength)) },
            frames: exceptionStack.map { context.frames(in: $0) } ?? [],
            errorCode: try context.field((attributes["error.code"] ?? attributes["error.type"]).map(stringValue), "error.code", index),
            httpStatus: httpStatus,
            traceID: try context.field(f.string("traceId"), "traceId", index),
            spanID: try context.field(f.string("spanId"), "spanId", index),
            host: try context.field((resource["host.name"] ?? resource["k8s.node.name"]).map(stringValue), "host.name", index),
            pod: try context.field(resource["k8s.pod.name"].map(stringValue), "k8s.pod.name", index),
            namespace: try context.field(resource["k8s.namespace.name"].map(stringValue), "k8s.namespace.name", index),
            region: try context.field(resource["cloud.region"].map(stringValue), "cloud.region", index),
            attributesJSON: jsonText(attributes.map { ($0.key, $0.value) }).map(context.text), format: .otlp)
    }

    /// OTLP's `[{"key": k, "value": {"stringValue": v}}]` as a plain dictionary.
    private func otlpAttributes(_ raw: JSONValue?, _ path: String) throws -> [String: JSONValue] {
        guard let raw, !raw.isNull else { return [:] }
        guard let list = raw.arrayValue else { throw DecodeError("\(path).attributes must be an array") }
        var result: [String: JSONValue] = [:]
        for (n, item) in list.enumerated() {
            guard let key = item["key"]?.stringValue else {
                throw DecodeError("\(path).attributes[\(n)] must be an object with a string key")
            }
            if let value = item["value"].flatMap(otlpValue) { result[key] = value }
        }
        return result
    }

    /// An OTLP AnyValue as plain JSON (`intValue` is a decimal string in OTLP/JSON).
    private func otlpValue(_ value: JSONValue) -> JSONValue? {
        if let string = value["stringValue"]?.stringValue { return .string(string) }
        if let bool = value["boolValue"] { return bool }
        if let int = value["intValue"] {
            // Written again, so that "004" or "+5" becomes JSON's 4 or 5.
            if case .string(let text) = int, let number = Int64(text) { return .number(String(number)) }
            return int
        }
        if let double = value["doubleValue"] { return double }
        if let array = value["arrayValue"]?["values"]?.arrayValue { return .array(array.compactMap(otlpValue)) }
        if let kv = value["kvlistValue"]?["values"]?.arrayValue {
            return .object(kv.compactMap { entry in
                guard let key = entry["key"]?.stringValue, let inner = entry["value"].flatMap(otlpValue) else { return nil }
                return (key, inner)
            })
        }
        return nil
    }

    /// Nanoseconds since the epoch, as OTLP/JSON writes them: a decimal string (or a number).
    private func otlpTime(_ f: Fields, _ key: String, _ p: String) throws -> Date? {
        guard let raw = f[key] else { return nil }
        let nanos: Double
        switch raw {
        case .string(let text) where UInt64(text) != nil: nanos = Double(UInt64(text)!)
        case .number(let text) where Double(text) != nil: nanos = Double(text)!
        default: throw DecodeError("\(p)\(key) must be nanoseconds since 1970 as a decimal string")
        }
        // A number can be anything JSON writes: 1e30, -5, 1e400 (infinite as a Double).
        guard nanos.isFinite, nanos >= 0, nanos < RFC3339.maximumSeconds * 1e9 else {
            throw DecodeError("\(p)\(key) \(quoted(stringValue(raw))) is not a time: nanoseconds since 1970 before the year 10000")
        }
        if nanos == 0 { return nil }
        return Date(timeIntervalSince1970: nanos / 1e9)
    }
}

func stringValue(_ value: JSONValue) -> String {
    switch value {
    case .string(let string): string
    case .number(let text): text
    case .bool(let bool): bool ? "true" : "false"
    case .null: "null"
    default: value.text
    }
}

// MARK: - Serilog CLEF

extension EventDecoder {
    static let clefServiceKeys = ["service", "Service", "ServiceName", "Application", "application", "service.name"]
    static let clefEnvironmentKeys = ["environment", "Environment", "EnvironmentName", "deployment.environment"]
    static let clefVersionKeys = ["version", "Version", "ServiceVersion", "ApplicationVersion", "service.version"]

    func decodeCLEF(_ value: JSONValue, _ context: inout Context) throws -> ErrorEvent? {
        let index = context.next()
        let p = context.prefix(index)
        let f = try Fields(value, prefix: p, what: "CLEF event")
        // CLEF leaves @l out for Information.
        let levelName = try f.string("@l") ?? "Information"
        guard let severity = Severity(name: levelName) else { throw DecodeError("\(p)@l \(quoted(levelName)) is not a Serilog level") }
        let exception = try f.string("@x")
        if severity < limits.minimumSeverity && exception == nil { return nil }

        let timeText = try f.required("@t")
        guard let time = RFC3339.parse(timeText) else { throw DecodeError("\(p)@t \(quoted(timeText)) is not an ISO 8601 time") }
        var properties = f.members.filter { !$0.key.hasPrefix("@") }
        let template = try f.string("@mt")
        let rendered = try f.string("@m") ?? template.map { render($0, properties, limit: limits.maxMessageLength) }
        func take(_ keys: [String]) throws -> String? {
            for key in keys {
                if let index = properties.firstIndex(where: { $0.key == key }) {
                    let value = properties.remove(at: index).value
                    if !value.isNull { return stringValue(value) }
                }
            }
            return nil
        }
        guard let service = try context.field(try take(Self.clefServiceKeys), "service", index) else {
            throw DecodeError("\(p)no service property (one of \(Self.clefServiceKeys.joined(separator: ", ")))")
        }
        guard let message = rendered else {
            throw DecodeError("\(p)has neither @m nor @mt")
        }
        // .NET writes "Type: message" first; a Python traceback (seqlog) names the type last.
        let firstLine = exception?.split(separator: "\n", maxSplits: 1).first.map(String.init)
        let exceptionType = exception.flatMap { try? context.field(StackTraceParser.errorType(in: $0)?.type, "exception type", index) }
        let eventID = try f.string("@i").flatMap(UUID.init(uuidString:)) ?? context.derivedID(index)
        let errorType = try take(["ExceptionType", "exception.type"]) ?? exceptionType
        let httpStatus = (properties.first { $0.key == "StatusCode" || $0.key == "http.status_code" }?.value)
            .flatMap { Int(stringValue($0)) }.flatMap { (100...599).contains($0) ? $0 : nil }
        return ErrorEvent(
            eventID: eventID, timestamp: try context.checkTime(time, "@t", index), service: service,
            environment: try context.field(try take(Self.clefEnvironmentKeys), "environment", index) ?? limits.defaultEnvironment,
            version: try context.field(try take(Self.clefVersionKeys), "version", index),
            severity: severity, errorType: try context.field(errorType, "exception type", index),
            message: context.text(context.cut(message.isEmpty ? (firstLine ?? "(empty)") : message, limits.maxMessageLength)),
            stacktrace: exception.map { context.text(context.cut($0, limits.maxStacktraceLength)) },
            frames: exception.map { context.frames(in: $0) } ?? [],
            errorCode: try context.field(try take(["ErrorCode", "error_code"]), "ErrorCode", index), httpStatus: httpStatus,
            traceID: try context.field(try f.string("@tr") ?? take(["TraceId"]), "@tr", index),
            spanID: try context.field(try f.string("@sp") ?? take(["SpanId"]), "@sp", index),
            host: try context.field(try take(["MachineName", "host"]), "MachineName", index),
            pod: try context.field(try take(["PodName", "pod"]), "pod", index),
            namespace: try context.field(try take(["Namespace", "namespace"]), "namespace", index),
            region: try context.field(try take(["Region", "region"]), "region", index),
            attributesJSON: jsonText(properties).map(context.text), format: .clef)
    }

    /// Renders a message template: `{Name}`, `{@Name}` and `{$Name}` become the property's value,
    /// `{{` and `}}` stand for braces, and a hole naming no property stays as written.
    ///
    /// Work and output are bounded by the input, not by the product of the two: each property
    /// is turned into text at most once, and rendering stops a little past `limit` bytes (the
    /// caller cuts and marks the message). Substituting whole values before the cut let a
    /// 109 KB message render 300 MB.
    func render(_ template: String, _ properties: [(key: String, value: JSONValue)], limit: Int) -> String {
        var values: [Substring: JSONValue] = [:]
        for property in properties where values[property.key[...]] == nil { values[property.key[...]] = property.value }
        var rendered: [Substring: String] = [:]
        var output: [UInt8] = []
        output.reserveCapacity(min(template.utf8.count, limit) + 16)
        let bytes = Array(template.utf8)
        var i = 0
        // The next `}` at or after a position, found once and reused: searching again for each
        // `{` of "{x{x{x…" with no `}` would be quadratic.
        var nextClose = -1
        func close(after position: Int) -> Int? {
            if nextClose < position {
                nextClose = bytes[position...].firstIndex(of: UInt8(ascii: "}")) ?? bytes.count
            }
            return nextClose < bytes.count ? nextClose : nil
        }
        func append<C: Collection<UInt8>>(_ piece: C) {
            let room = limit + 1 - output.count
            if room > 0 { output.append(contentsOf: piece.prefix(room)) }
        }
        while i < bytes.count && output.count <= limit {
            let byte = bytes[i]
            if byte == UInt8(ascii: "{") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "{") {
                output.append(byte)
                i += 2
            } else if byte == UInt8(ascii: "}") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "}") {
                output.append(byte)
                i += 2
            } else if byte == UInt8(ascii: "{"), let close = close(after: i + 1) {
                var nameStart = i + 1
                if nameStart < close && (bytes[nameStart] == UInt8(ascii: "@") || bytes[nameStart] == UInt8(ascii: "$")) { nameStart += 1 }
                let nameEnd = bytes[nameStart..<close].firstIndex { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ",") } ?? close
                let name = Substring(decoding: bytes[nameStart..<nameEnd], as: UTF8.self)
                if let text = rendered[name] {
                    append(text.utf8)
                } else if let value = values[name] {
                    let text = stringValue(value)
                    rendered[name] = text
                    append(text.utf8)
                } else {
                    append(bytes[i...close])
                }
                i = close + 1
            } else {
                // Plain text up to the next brace, or an unclosed `{` taken as written.
                let next = bytes[(i + 1)...].firstIndex { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") } ?? bytes.count
                append(bytes[i..<next])
                i = next
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
