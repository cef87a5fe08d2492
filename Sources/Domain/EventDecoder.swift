import Foundation

/// Why a message cannot be ingested, in words a person can act on.
public struct DecodeError: Error, Equatable, CustomStringConvertible, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Where a message came from; derived event ids are made from it.
public struct MessageOrigin: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The `content-type` header, if any.
    public var contentType: String?

    public init(topic: String, partition: Int32, offset: Int64, contentType: String? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.contentType = contentType
    }
}

/// Bounds on what one message may hold.
public struct DecodeLimits: Sendable {
    public var maxMessageBytes = 1 << 20
    public var maxEventsPerMessage = 10_000
    public var maxNestingDepth = 32
    /// Longer messages and stack traces are cut (and marked), not refused.
    public var maxMessageLength = 32 * 1024
    public var maxStacktraceLength = 64 * 1024
    public var maxFieldLength = 256
    /// Events older than this are refused (their partition may already be dropped).
    public var maxAge: Duration = .seconds(30 * 86_400)
    /// Events further in the future than this are refused (a broken clock).
    public var maxFuture: Duration = .seconds(86_400)
    /// Records below this severity without an exception are skipped (OTLP and CLEF carry
    /// ordinary logs too).
    public var minimumSeverity: Severity = .warning
    /// Environment of events that name none.
    public var defaultEnvironment = "production"

    public init() {}
}

/// What one message held.
public struct DecodedMessage: Sendable {
    public var format: EventFormat
    public var events: [ErrorEvent]
    /// Log records below the minimum severity, skipped on purpose.
    public var skipped: Int
}

/// Decodes one Kafka message into error events: native JSON, OTLP/JSON logs or Serilog CLEF,
/// taken from the content-type header when present, else recognised from the content. A value
/// in Confluent Schema Registry's wire format (magic byte 0 and a 4-byte schema id) is
/// accepted too. Either every event of a message is valid or the message is refused whole, so
/// that a replay from the dead-letter topic cannot store half of it twice.
public struct EventDecoder: Sendable {
    public var limits: DecodeLimits

    public init(limits: DecodeLimits = DecodeLimits()) {
        self.limits = limits
    }

    /// - Throws: ``DecodeError`` saying what is wrong with the message.
    public func decode(_ value: [UInt8], origin: MessageOrigin, now: Date = Date()) throws(DecodeError) -> DecodedMessage {
        do {
            return try decodeUnchecked(value, origin: origin, now: now)
        } catch let error as DecodeError {
            throw error
        } catch {
            throw DecodeError("\(error)")
        }
    }

    private func decodeUnchecked(_ value: [UInt8], origin: MessageOrigin, now: Date) throws -> DecodedMessage {
        guard !value.isEmpty else { throw DecodeError("empty message") }
        guard value.count <= limits.maxMessageBytes else {
            throw DecodeError("message is \(value.count) bytes, more than the limit of \(limits.maxMessageBytes)")
        }
        var bytes = value[...]
        if bytes.first == 0 {
            guard bytes.count > 5 else { throw DecodeError("Schema Registry framing without a payload") }
            bytes = bytes.dropFirst(5)
        }
        guard bytes.withUnsafeBufferPointer(isValidUTF8) else {
            throw DecodeError("not valid UTF-8 text (binary data?)")
        }
        let hinted = try format(fromContentType: origin.contentType)
        let documents = try parseDocuments(bytes)
        let format = hinted ?? detect(documents[0])
        var context = Context(origin: origin, now: now, limits: limits, index: 0)
        var events: [ErrorEvent] = []
        var skipped = 0
        for document in documents {
            switch format {
            case .native:
                if let array = document.arrayValue {
                    for element in array {
                        events.append(try decodeNative(element, &context))
                        try checkCount(events.count)
                    }
                } else {
                    events.append(try decodeNative(document, &context))
                }
            case .otlp:
                try decodeOTLP(document, &context, into: &events, skipped: &skipped)
            case .clef:
                if let event = try decodeCLEF(document, &context) { events.append(event) } else { skipped += 1 }
            }
            try checkCount(events.count)
        }
        if events.isEmpty && skipped == 0 { throw DecodeError("the message holds no events") }
        return DecodedMessage(format: format, events: events, skipped: skipped)
    }

    private func checkCount(_ count: Int) throws {
        if count > limits.maxEventsPerMessage {
            throw DecodeError("more than \(limits.maxEventsPerMessage) events in one message")
        }
    }

    private func format(fromContentType contentType: String?) throws -> EventFormat? {
        guard let contentType = contentType?.lowercased() else { return nil }
        if contentType.contains("protobuf") {
            throw DecodeError("OTLP protobuf is not accepted; configure the Kafka exporter with encoding otlp_json")
        }
        if contentType.contains("clef") || contentType.contains("serilog") { return .clef }
        if contentType.contains("otlp") || contentType.contains("opentelemetry") { return .otlp }
        if contentType.contains("faultline") { return .native }
        if contentType.contains("json") || contentType.hasPrefix("text/plain") { return nil }  // recognise by content
        throw DecodeError("content-type \(contentType) is not accepted (JSON only)")
    }

    /// One JSON document, or several separated by newlines (CLEF files, NDJSON).
    private func parseDocuments(_ bytes: ArraySlice<UInt8>) throws -> [JSONValue] {
        let whole: Result<JSONValue, JSONParser.Failure> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONParser.Failure) in try JSONParser.parse(buffer, maxDepth: limits.maxNestingDepth) }
        }
        switch whole {
        case .success(let document): return [document]
        case .failure(let failure) where failure.reason.hasPrefix("JSON nested deeper"): throw DecodeError(failure.reason)
        case .failure(let failure):
            let lines = bytes.split(separator: UInt8(ascii: "\n")).filter { line in
                line.contains { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\t") }
            }
            guard lines.count > 1 else { throw DecodeError(jsonErrorReason(bytes, failure)) }
            var documents: [JSONValue] = []
            for (number, line) in lines.enumerated() {
                do {
                    documents.append(try JSONParser.parse(line, maxDepth: limits.maxNestingDepth))
                } catch {
                    throw DecodeError("line \(number + 1): \(jsonErrorReason(line, error))")
                }
                try checkCount(documents.count)
            }
            return documents
        }
    }

    private func jsonErrorReason(_ bytes: ArraySlice<UInt8>, _ failure: JSONParser.Failure) -> String {
        let first = bytes.first { ![9, 10, 13, 32].contains($0) }
        guard let first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else { return "not JSON" }
        if failure.reason.hasPrefix("JSON nested") { return failure.reason }
        return "malformed or truncated JSON (\(failure.reason))"
    }

    private func detect(_ document: JSONValue) -> EventFormat {
        let object = document.objectValue != nil ? document : document.arrayValue?.first
        guard let object, object.objectValue != nil else { return .native }
        if object["resourceLogs"] != nil { return .otlp }
        if object["@t"] != nil || object["@mt"] != nil || object["@m"] != nil { return .clef }
        return .native
    }
}

// MARK: - Shared field handling

struct Context {
    let origin: MessageOrigin
    let now: Date
    let limits: DecodeLimits
    /// Position of the next event in the message, for derived ids and error messages.
    var index: Int

    mutating func next() -> Int {
        defer { index += 1 }
        return index
    }

    func derivedID(_ index: Int) -> UUID {
        StableHash.uuid("\(origin.topic)/\(origin.partition)/\(origin.offset)/\(index)")
    }

    func prefix(_ index: Int) -> String { index == 0 ? "" : "event \(index + 1): " }

    func checkTime(_ date: Date, _ field: String, _ index: Int) throws -> Date {
        let age = now.timeIntervalSince(date)
        guard age.isFinite else { throw DecodeError("\(prefix(index))\(field) is not a finite time") }
        if age > Double(limits.maxAge.components.seconds) {
            throw DecodeError("\(prefix(index))\(field) \(iso(date)) is older than the accepted \(limits.maxAge.components.seconds / 86_400) days")
        }
        if -age > Double(limits.maxFuture.components.seconds) {
            throw DecodeError("\(prefix(index))\(field) \(iso(date)) is more than \(limits.maxFuture.components.seconds / 3600) hours in the future")
        }
        return date
    }

    func iso(_ date: Date) -> String { RFC3339.format(date) }

    /// A bounded identifier-like field (service, environment, version…).
    func field(_ value: String?, _ name: String, _ index: Int) throws -> String? {
        guard let value else { return nil }
        // Most values need no trimming: check the ends before paying for it.
        let utf8 = value.utf8
        let trimmed = (utf8.first.map { $0 > 32 } ?? false) && (utf8.last.map { $0 > 32 } ?? false)
            ? value : value.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return nil }
        guard trimmed.utf8.count <= limits.maxFieldLength else {
            throw DecodeError("\(prefix(index))\(name) is longer than \(limits.maxFieldLength) bytes")
        }
        guard !hasControlBytes(trimmed) else {
            throw DecodeError("\(prefix(index))\(name) contains control characters")
        }
        return trimmed
    }

    func cut(_ text: String, _ limit: Int) -> String {
        text.utf8.count > limit ? text.prefix(utf8Bytes: limit) + "…[truncated]" : text
    }

    /// Text fields cannot hold NUL (PostgreSQL text cannot store it).
    func text(_ text: String) -> String {
        text.replacingNUL
    }
}

/// Typed access to a JSON object with precise errors.
struct Fields {
    let members: [(key: String, value: JSONValue)]
    let prefix: String
    /// Positions of the keys of a large object (the parser has made keys unique), so that a
    /// message with 60,000 keys costs a hash per lookup instead of a scan.
    private let positions: [String: Int]?

    init(_ value: JSONValue, prefix: String, what: String) throws {
        guard let members = value.objectValue else { throw DecodeError("\(prefix)\(what) is not a JSON object") }
        self.members = members
        self.prefix = prefix
        positions = members.count > 16
            ? Dictionary(members.enumerated().map { ($0.element.key, $0.offset) }) { first, _ in first } : nil
    }

    subscript(key: String) -> JSONValue? {
        let found = positions.map { $0[key].map { members[$0].value } } ?? scan(for: key)
        guard let value = found, !value.isNull else { return nil }
        return value
    }

    /// By index: the members are compared in place, not copied one by one.
    private func scan(for key: String) -> JSONValue? {
        // Lengths first: an inline read, where `==` of different keys is a call. Keys are thus
        // matched code unit by code unit (RFC 8259, 8.3): the keys looked up are ASCII, and a
        // string canonically equal to an ASCII one but written otherwise ("\u212A" for "K") is
        // longer in UTF-8.
        let count = key.utf8.count
        for index in members.indices where members[index].key.utf8.count == count && members[index].key == key {
            return members[index].value
        }
        return nil
    }

    func string(_ key: String) throws -> String? {
        guard let value = self[key] else { return nil }
        guard case .string(let string) = value else { throw DecodeError("\(prefix)\(key) must be a string, not \(value.typeName)") }
        return string
    }

    func required(_ key: String) throws -> String {
        guard let value = try string(key), value.utf8.contains(where: { $0 > 32 }) else {
            throw DecodeError("\(prefix)missing required field \(key)")
        }
        return value
    }

    /// A string, or a number written as one (error codes).
    func stringOrNumber(_ key: String) throws -> String? {
        switch self[key] {
        case nil: return nil
        case .string(let string)?, .number(let string)?: return string
        case let value?: throw DecodeError("\(prefix)\(key) must be a string or a number, not \(value.typeName)")
        }
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = self[key] else { return nil }
        guard case .number(let text) = value, let number = Int(text), range.contains(number) else {
            throw DecodeError("\(prefix)\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }
}

/// Compact JSON of an object with its keys sorted, or nil when it is empty.
func jsonText(_ members: [(key: String, value: JSONValue)]) -> String? {
    guard !members.isEmpty else { return nil }
    return JSONValue.object(members.sorted { $0.key < $1.key }).text
}

/// Whether `text` holds a byte below 0x20 or 0x7F (DEL), eight bytes at a time (``ByteScan``).
func hasControlBytes(_ text: String) -> Bool {
    var text = text
    return text.withUTF8 { bytes in
        var index = 0
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index + 8 <= bytes.count {
                let chunk = ByteScan.load(raw, index)
                if ByteScan.below(chunk, 0x20) | ByteScan.equal(chunk, 0x7F) != 0 { return true }
                index += 8
            }
        }
        while index < bytes.count {
            if bytes[index] < 0x20 || bytes[index] == 0x7F { return true }
            index += 1
        }
        return false
    }
}
