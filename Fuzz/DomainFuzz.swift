// libFuzzer entry point for everything that reads Kafka message content: the event decoder and
// the parsers, maskers and miners of Sources/Domain and Sources/Analysis. scripts/fuzz (through
// scripts/lib/fuzz.sh) compiles it with Analysis's files into one module, FaultlineFuzz, linked
// with Domain built as a module of its own, as in the package: both modules have an internal
// type `Fields`, and Analysis imports Domain. So the targets use public API only.
//
// One binary, several targets: FAULTLINE_FUZZ_TARGET (read once, at start) picks one of
// `FuzzTarget`. Each target checks properties that must hold for any input; a violated one ends
// the run with `fatalError("[name] …")`, which libFuzzer reports as a crash and saves the input.
// FAULTLINE_FUZZ_ALLOW=name,name turns named checks off, to keep fuzzing past a known finding
// until it is fixed (Swift runtime traps cannot be turned off).

import Domain
import Foundation

enum FuzzTarget: String, CaseIterable {
    case decoder, json, stacktrace, rfc3339, deployment, masking, templates, semver
}

let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["FAULTLINE_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("FAULTLINE_FUZZ_TARGET must be one of \(names) (got \"\(name)\")\n".utf8))
        exit(2)
    }
    return target
}()

let allowedChecks: Set<String> = Set(
    (ProcessInfo.processInfo.environment["FAULTLINE_FUZZ_ALLOW"] ?? "").split(separator: ",").map { String($0) })

/// A property every input must keep; `name` is what FAULTLINE_FUZZ_ALLOW lists.
@inline(__always)
func check(_ name: StaticString, _ condition: @autoclosure () -> Bool, _ detail: @autoclosure () -> String) {
    if !condition() && !allowedChecks.contains("\(name)") { fatalError("[\(name)] \(detail())") }
}

/// A description short enough for a crash report.
func shown(_ text: String?) -> String {
    guard let text else { return "nil" }
    let short = text.utf8.count > 200 ? String(decoding: Array(text.utf8.prefix(200)), as: UTF8.self) + "…" : text
    return "\(short.debugDescription) (\(text.utf8.count) bytes)"
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    _ = fuzzTarget  // an unknown target stops here, before fuzzing, not as a crash
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func domainFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    switch fuzzTarget {
    case .decoder: fuzzDecoder(input)
    case .json: fuzzJSON(input)
    case .stacktrace: fuzzStackTrace(input)
    case .rfc3339: fuzzRFC3339(input)
    case .deployment: fuzzDeployment(input)
    case .masking: fuzzMasking(input)
    case .templates: fuzzTemplates(input)
    case .semver: fuzzSemVer(input)
    }
    return 0
}

/// Lines of `input` as text (invalid UTF-8 repaired, as any String the product holds would be).
func lines(_ input: ArraySlice<UInt8>, max: Int = .max) -> [String] {
    input.split(separator: 10, maxSplits: max - 1, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}

// MARK: - decoder

/// The decoder's clock: seeds carry times from the days before it.
let fuzzNow = Date(timeIntervalSince1970: 1_795_348_800)  // 2026-11-22T12:00:00Z

/// Small limits, so that inputs of a few hundred bytes reach every one of them.
let smallLimits: DecodeLimits = {
    var limits = DecodeLimits()
    limits.maxMessageBytes = 8192
    limits.maxEventsPerMessage = 4
    limits.maxNestingDepth = 10
    limits.maxMessageLength = 48
    limits.maxStacktraceLength = 96
    limits.maxFieldLength = 16
    limits.minimumSeverity = .error
    limits.defaultEnvironment = "env"
    return limits
}()
let decoders = [EventDecoder(limits: DecodeLimits()), EventDecoder(limits: smallLimits)]

/// The input's first line (at most 64 bytes before its newline) is the content-type header, an
/// empty line no header; the rest is the message value. Without a newline in the first 65 bytes
/// the whole input is the value, without a header.
func fuzzDecoder(_ input: [UInt8]) {
    var contentType: String?
    var value = input[...]
    if let newline = input.prefix(65).firstIndex(of: 10) {
        let header = input[..<newline]
        // Ingest reads the header with KafkaHeader.stringValue: nil unless valid UTF-8.
        contentType = header.isEmpty ? nil : String(validating: header, as: UTF8.self)
        value = input[(newline + 1)...]
    }
    let origin = MessageOrigin(topic: "errors", partition: 3, offset: 42, contentType: contentType)
    for decoder in decoders {
        let decoded: DecodedMessage
        do {
            decoded = try decoder.decode(Array(value), origin: origin, now: fuzzNow)
        } catch {
            check("decode-error-reason", !error.reason.isEmpty, "a refusal without a reason")
            continue
        }
        checkDecoded(decoded, decoder.limits, contentType: contentType)
    }
}

func checkDecoded(_ decoded: DecodedMessage, _ limits: DecodeLimits, contentType: String?) {
    check("event-count", !decoded.events.isEmpty || decoded.skipped > 0, "accepted a message with no events")
    check("event-count", decoded.events.count <= limits.maxEventsPerMessage,
          "\(decoded.events.count) events, limit \(limits.maxEventsPerMessage)")
    let type = contentType?.lowercased() ?? ""
    if type.contains("clef") || type.contains("serilog") {
        check("format-hint", decoded.format == .clef, "content-type \(type) decoded as \(decoded.format)")
    } else if type.contains("otlp") || type.contains("opentelemetry") {
        check("format-hint", decoded.format == .otlp, "content-type \(type) decoded as \(decoded.format)")
    }
    for event in decoded.events {
        checkEvent(event, limits)
        check("event-format", event.format == decoded.format, "a \(event.format) event in a \(decoded.format) message")
        checkFingerprint(Fingerprint(event), fromDecodedEvent: true)
    }
}

func checkEvent(_ e: ErrorEvent, _ limits: DecodeLimits) {
    check("message-limit", e.message.utf8.count <= limits.maxMessageLength + 16,
          "message \(shown(e.message)) over the limit of \(limits.maxMessageLength)")
    check("message-empty", !e.message.isEmpty, "empty message")
    if let stacktrace = e.stacktrace {
        check("stacktrace-limit", stacktrace.utf8.count <= limits.maxStacktraceLength + 16,
              "stacktrace \(shown(stacktrace)) over the limit of \(limits.maxStacktraceLength)")
    }
    // Identifier-like fields: trimmed, bounded, no control characters, never empty.
    let fields: [(String, String?)] = [
        ("service", e.service), ("environment", e.environment), ("version", e.version), ("errorType", e.errorType),
        ("errorCode", e.errorCode), ("traceID", e.traceID), ("spanID", e.spanID), ("host", e.host), ("pod", e.pod),
        ("namespace", e.namespace), ("region", e.region),
    ]
    for (name, value) in fields {
        guard let value else { continue }
        check("field-limit", value.utf8.count <= limits.maxFieldLength,
              "\(name) \(shown(value)) over the limit of \(limits.maxFieldLength) (\(e.format))")
        check("field-control", !value.utf8.contains { $0 < 0x20 || $0 == 0x7F },
              "\(name) \(shown(value)) holds control characters (\(e.format))")
        check("field-empty", !value.isEmpty, "empty \(name) (\(e.format))")
    }
    // PostgreSQL text cannot hold NUL: COPY refuses the whole batch.
    for (name, value) in [("message", e.message), ("stacktrace", e.stacktrace), ("attributes", e.attributesJSON)] + fields {
        check("nul", !(value?.utf8.contains(0) ?? false), "\(name) \(shown(value)) holds NUL (\(e.format))")
    }
    if let attributes = e.attributesJSON {
        let parsed = try? JSONParser.parse(Array(attributes.utf8), maxDepth: 1000)
        check("attributes-json", parsed?.objectValue != nil, "attributes \(shown(attributes)) are not a JSON object")
    }
    if let status = e.httpStatus { check("http-status", (100...599).contains(status), "http status \(status)") }
    let age = fuzzNow.timeIntervalSince(e.timestamp)
    check("timestamp", age.isFinite && age <= Double(limits.maxAge.components.seconds)
          && -age <= Double(limits.maxFuture.components.seconds),
          "timestamp \(e.timestamp.timeIntervalSince1970) outside the accepted window")
}

/// - Parameter fromDecodedEvent: the decoder's events carry no NUL, and neither may what is
///   made of them; Fingerprint itself keeps what it is given.
func checkFingerprint(_ fingerprint: Fingerprint, fromDecodedEvent: Bool) {
    check("fingerprint-hex", fingerprint.value.utf8.count == 16 && fingerprint.value.utf8.allSatisfy {
        (48...57).contains($0) || (97...102).contains($0)
    }, "fingerprint \(shown(fingerprint.value))")
    guard fromDecodedEvent else { return }
    // groups.template and top_frames are PostgreSQL text too.
    check("nul", !fingerprint.template.utf8.contains(0), "template \(shown(fingerprint.template)) holds NUL")
    check("nul", !fingerprint.frames.utf8.contains(0), "top frames \(shown(fingerprint.frames)) hold NUL")
}

// MARK: - json

/// `text` writes NUL as U+FFFD on purpose (jsonb cannot hold it): compare with that applied.
func withoutNUL(_ value: JSONValue) -> JSONValue {
    func clean(_ s: String) -> String { s.replacingNUL }
    switch value {
    case .string(let s): return .string(clean(s))
    case .array(let items): return .array(items.map(withoutNUL))
    case .object(let members):
        // Cleaning can make two keys equal; the re-parse keeps the last value at the first place.
        var result: [(key: String, value: JSONValue)] = []
        for member in members {
            let key = clean(member.key)
            if let existing = result.firstIndex(where: { $0.key == key }) {
                result[existing].value = withoutNUL(member.value)
            } else {
                result.append((key, withoutNUL(member.value)))
            }
        }
        return .object(result)
    default: return value
    }
}

func fuzzJSON(_ input: [UInt8]) {
    let depth = 16
    let parsed = try? JSONParser.parse(input, maxDepth: depth)
    let viaBuffer = input.withUnsafeBufferPointer { try? JSONParser.parse($0, maxDepth: depth) }
    check("json-overloads", parsed == viaBuffer, "the two parse overloads disagree")
    guard let parsed else { return }
    let text = parsed.text
    let again: JSONValue
    do {
        again = try JSONParser.parse(Array(text.utf8), maxDepth: depth)
    } catch {
        fatalError("[json-roundtrip] \(shown(text)) does not re-parse: \(error.reason)")
    }
    check("json-roundtrip", again == withoutNUL(parsed), "\(shown(text)) re-parses to another value")
    // From the second writing on (NUL is gone then) the text is a fixed point.
    let third = try? JSONParser.parse(Array(again.text.utf8), maxDepth: depth)
    check("json-roundtrip", third == again && third?.text == again.text, "\(shown(again.text)) is not a fixed point")
}

// MARK: - stacktrace

func fuzzStackTrace(_ input: [UInt8]) {
    let text = String(decoding: input, as: UTF8.self)
    let frames = StackTraceParser.frames(in: text)
    check("frames-limit", frames.count <= 200, "\(frames.count) frames, limit 200")
    let first = StackTraceParser.frames(in: text, limit: 3)
    check("frames-prefix", first == Array(frames.prefix(3)), "a lower limit changed the first frames")
    let rendered = StackTraceParser.render(frames)
    let renderedLines = rendered.isEmpty ? 0 : rendered.utf8.split(separator: 10, omittingEmptySubsequences: false).count
    check("render-lines", renderedLines == frames.count, "\(frames.count) frames rendered as \(renderedLines) lines")
    _ = StackTraceParser.frames(in: rendered)
    checkFingerprint(Fingerprint(service: "s", errorType: nil, message: text, frames: frames), fromDecodedEvent: false)
}

// MARK: - rfc3339

func checkFormat(_ date: Date) {
    let text = RFC3339.format(date)
    let seconds = date.timeIntervalSince1970
    guard seconds.isFinite, seconds >= -62_167_219_200, seconds < 253_402_300_800 else { return }
    check("rfc3339-format", text.utf8.count == 24, "\(seconds) formatted as \(shown(text))")
    guard let back = RFC3339.parse(text) else { fatalError("[rfc3339-roundtrip] \(seconds) formatted as \(shown(text)), which does not parse") }
    let error = seconds - back.timeIntervalSince1970
    // Milliseconds, rounded down from seconds × 1000 as a double; the parse adds the fraction in
    // steps of its own. Far from 1970 each rounds to a double's step (30 µs in 9925).
    let slack = max(1e-6, 2 * seconds.magnitude.ulp)
    check("rfc3339-roundtrip", error > -slack && error < 0.001 + slack, "\(seconds) → \(text) → \(back.timeIntervalSince1970)")
}

func fuzzRFC3339(_ input: [UInt8]) {
    let text = String(decoding: input, as: UTF8.self)
    let strict = RFC3339.parse(text)
    let lenient = RFC3339.parse(text, zoneRequired: false)
    if let strict {
        check("rfc3339-lenient", lenient == strict, "\(shown(text)): \(strict.timeIntervalSince1970) strict, lenient \(lenient.map { "\($0.timeIntervalSince1970)" } ?? "nil")")
    }
    for date in [strict, lenient].compactMap({ $0 }) {
        check("rfc3339-finite", date.timeIntervalSince1970.isFinite, "\(shown(text)) parsed to \(date.timeIntervalSince1970)")
        checkFormat(date)
    }
    // Any Double at all, from the input's bytes: format is total (Fuzz/corpus/rfc3339/doubles-*
    // hold infinities, NaNs and the edges of the range).
    var offset = 0
    while offset + 8 <= input.count {
        var bits: UInt64 = 0
        for index in 0..<8 { bits |= UInt64(input[offset + index]) << (8 * UInt64(index)) }
        checkFormat(Date(timeIntervalSince1970: Double(bitPattern: bits)))
        offset += 8
    }
}

// MARK: - deployment

func fuzzDeployment(_ input: [UInt8]) {
    for maxFieldBytes in [DecodeLimits().maxFieldLength, 8] {
        guard let deployment = try? Deployment.decode(input, defaultEnvironment: "production", maxFieldBytes: maxFieldBytes) else {
            continue
        }
        let fields: [(String, String?)] = [
            ("service", deployment.service), ("version", deployment.version), ("commit", deployment.commit),
            ("region", deployment.region),
            ("environment", deployment.environment == "production" ? nil : deployment.environment),
        ]
        for (name, value) in fields {
            guard let value else { continue }
            check("field-limit", value.utf8.count <= maxFieldBytes, "\(name) \(shown(value)) over \(maxFieldBytes) bytes")
            check("field-control", !value.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "\(name) \(shown(value)) holds control characters")
            check("field-empty", !value.isEmpty, "empty \(name)")
        }
        check("deployment-time", deployment.startedAt.timeIntervalSince1970.isFinite, "started_at not finite")
        _ = RFC3339.format(deployment.startedAt)
    }
}

// MARK: - masking

/// Line 1 is the service, line 2 the error type (empty: none), the rest the message.
func fuzzMasking(_ input: [UInt8]) {
    let parts = lines(input[...], max: 3)
    let message = parts.count > 2 ? parts[2] : parts.last ?? ""
    let masked = TokenMasker.mask(message)
    // Scalar searches: Foundation's String.contains(String) folds grapheme clusters, and asked
    // once per word it made this check itself quadratic.
    let hadReplacement = message.unicodeScalars.contains("\u{FFFD}")
    check("mask-whitespace", !masked.utf8.contains { $0 == 9 || $0 == 10 || $0 == 13 }, "\(shown(masked)) keeps tabs or newlines")
    check("mask-utf8", hadReplacement || !masked.unicodeScalars.contains("\u{FFFD}"), "masking \(shown(message)) broke UTF-8: \(shown(masked))")
    for collapse in [true, false] {
        let words = TemplateMiner.maskedWords(message, collapseRuns: collapse)
        for word in words {
            check("masked-words", !word.isEmpty && !word.utf8.contains { [32, 9, 10, 13].contains($0) },
                  "masked word \(shown(word)) of \(shown(message))")
            check("mask-utf8", hadReplacement || !word.unicodeScalars.contains("\u{FFFD}"), "masked word \(shown(word)) broke UTF-8")
        }
    }
    let service = parts.first ?? ""
    let errorType = parts.count > 1 && !parts[1].isEmpty ? parts[1] : nil
    let frames = StackTraceParser.frames(in: message)
    let fingerprint = Fingerprint(service: service, errorType: errorType, message: message, frames: frames)
    checkFingerprint(fingerprint, fromDecodedEvent: false)
    check("fingerprint-template", fingerprint.template == masked, "the fingerprint's template is not the masked message")
    let again = Fingerprint(service: service, errorType: errorType, message: message, frames: frames)
    check("fingerprint-stable", again == fingerprint, "two fingerprints of one event differ")
}

// MARK: - templates

/// The first byte picks the configuration; every following line is a message.
func fuzzTemplates(_ input: [UInt8]) {
    guard let knobs = input.first else { return }
    let configuration = TemplateMiner.Configuration(
        similarityThreshold: [0.75, 0.4, 1.0, 0.0][Int(knobs & 3)], maskVariables: knobs & 4 == 0,
        collapseVariableRuns: knobs & 8 == 0, maxTemplatesPerLeaf: knobs & 16 == 0 ? 1000 : 2)
    let messages = lines(input.dropFirst(), max: 4000)
    var miner = TemplateMiner(configuration: configuration)
    var ids: [Int] = []
    for message in messages { ids.append(miner.add(message)) }
    let templates = miner.templates
    check("template-count", templates.count <= messages.count, "\(templates.count) templates from \(messages.count) messages")
    for id in ids {
        check("template-resolve", miner.template(id: miner.resolve(id)) != nil, "template \(id) (now \(miner.resolve(id))) is gone")
    }
    // A template never stops covering a message it took (unless retired from matching).
    let retiring = configuration.maxTemplatesPerLeaf < messages.count
    for message in messages {
        let matched = miner.match(message)
        check("template-match", retiring || matched != nil, "\(shown(message)) was learned but matches no template")
    }
    let restored = TemplateMiner(configuration: configuration, restoring: templates)
    for message in messages.prefix(64) { _ = restored.match(message) }
}

// MARK: - semver

/// Up to three lines, each a version string.
func fuzzSemVer(_ input: [UInt8]) {
    let texts = Array(lines(input[...], max: 4).prefix(3))
    let versions = texts.map { SemanticVersion($0) }
    for (text, version) in zip(texts, versions) {
        guard let version else { continue }
        guard let again = SemanticVersion(version.description) else {
            fatalError("[semver-roundtrip] \(shown(text)) → \(shown(version.description)), which does not parse")
        }
        check("semver-roundtrip", again == version && again.build == version.build,
              "\(shown(text)) → \(shown(version.description)) → \(shown(again.description))")
        check("semver-order", !(version < version), "\(shown(text)) < itself")
    }
    let parsed = versions.compactMap { $0 }
    for a in parsed {
        for b in parsed {
            let relations = [a < b, b < a, a == b].filter { $0 }.count
            check("semver-order", relations == 1, "\(a) and \(b): \(relations) of <, >, == hold")
            if a == b { check("semver-hash", a.hashValue == b.hashValue, "\(a) == \(b) with different hashes") }
            for c in parsed where a < b && b < c {
                check("semver-order", a < c, "\(a) < \(b) < \(c) but not \(a) < \(c)")
            }
        }
    }
    // Deployment times for some of the strings, so every branch of VersionOrder is taken.
    let deployedAt: (String) -> Date? = { text in
        let hash = StableHash.fnv1a64(text.utf8)
        return hash % 3 == 0 ? nil : Date(timeIntervalSince1970: Double(hash % 1000))
    }
    func opposite(_ order: ComparisonResult?) -> ComparisonResult? {
        switch order {
        case .orderedAscending?: .orderedDescending
        case .orderedDescending?: .orderedAscending
        default: order
        }
    }
    for a in texts {
        check("version-order", VersionOrder.compare(a, a, deployedAt: deployedAt) == .orderedSame, "\(shown(a)) is not itself")
        for b in texts {
            let ab = VersionOrder.compare(a, b, deployedAt: deployedAt)
            let ba = VersionOrder.compare(b, a, deployedAt: deployedAt)
            check("version-order", ab == opposite(ba), "\(shown(a)) vs \(shown(b)): \(String(describing: ab)), reversed \(String(describing: ba))")
        }
    }
}
