// Standard library only: this file is also compiled into the parser fuzz target.

/// An HTTP protocol version.
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// The limits a ``HTTPRequestParser`` enforces; each one, when exceeded, fails the request with
/// its own status code.
public struct HTTPParserLimits: Sendable, Equatable {
    /// Longest request line, without its CRLF (414 beyond).
    public var maxRequestLineBytes: Int = 8192
    /// Most bytes in the header section, line endings included (431 beyond); trailers too.
    public var maxHeaderBytes: Int = 65536
    /// Most header fields (431 beyond); trailers too.
    public var maxHeaderCount: Int = 100
    /// Longest request body, after chunked decoding (413 beyond).
    public var maxBodyBytes: Int = 1 << 20

    public init(
        maxRequestLineBytes: Int = 8192, maxHeaderBytes: Int = 65536,
        maxHeaderCount: Int = 100, maxBodyBytes: Int = 1 << 20
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Why a request could not be parsed; each case maps to the status of the response that
/// ends the connection.
public enum HTTPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The bytes are not HTTP/1.x (400); the text says what was wrong and is safe to send back.
    case malformed(String)
    /// 414.
    case requestLineTooLong
    /// 431: the header section (or trailer section) is larger than the limit.
    case headersTooLarge
    /// 431: more header fields than the limit.
    case tooManyHeaders
    /// 413.
    case bodyTooLarge
    /// 501: a transfer coding other than `chunked`.
    case unsupportedTransferEncoding
    /// 505: a well-formed version other than 1.0 and 1.1 (an HTTP/2 preface included).
    case unsupportedVersion
    /// 417: an `Expect` other than `100-continue`.
    case expectationFailed

    /// The status code of the response to send before closing.
    public var status: Int {
        switch self {
        case .malformed: 400
        case .requestLineTooLong: 414
        case .headersTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferEncoding: 501
        case .unsupportedVersion: 505
        case .expectationFailed: 417
        }
    }

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed request: \(reason)"
        case .requestLineTooLong: "request line too long"
        case .headersTooLarge: "header section too large"
        case .tooManyHeaders: "too many header fields"
        case .bodyTooLarge: "request body too large"
        case .unsupportedTransferEncoding: "unsupported transfer encoding"
        case .unsupportedVersion: "unsupported HTTP version"
        case .expectationFailed: "unsupported expectation"
        }
    }
}

/// A transition the parser cannot make: fed after it failed, or an internal inconsistency.
/// Never the client's fault; the connection should be closed.
public struct HTTPParserStateError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
}

/// How the body of a request is delimited.
public enum HTTPBodyFraming: Sendable, Hashable {
    case none
    case contentLength(Int)
    case chunked
}

/// The request line and header fields of a request, checked and interpreted.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request target exactly as sent (origin form `/path?query`, absolute form, or `*`).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// Whether the connection may carry another request after this one.
    public var keepAlive: Bool
    /// `Expect: 100-continue` was sent (HTTP/1.1 only).
    public var expectsContinue: Bool
    public var framing: HTTPBodyFraming

    /// Whether a body follows the head.
    public var hasBody: Bool {
        switch framing {
        case .none: false
        case .contentLength(let length): length > 0
        case .chunked: true
        }
    }
}

/// What the parser found in the bytes it was fed.
public enum HTTPParserEvent: Sendable, Equatable {
    /// A request's head; `body` events and one `end` follow.
    case head(HTTPRequestHead)
    /// Some bytes of the body (chunked framing already removed). Never empty.
    case body([UInt8])
    /// The request is complete; the next bytes start another one.
    case end(trailers: HTTPHeaders)
    /// The request is invalid; the parser takes no more input. Send `error.status`, then close.
    case failure(HTTPParseError)
}

/// An incremental HTTP/1.1 request parser: bytes in, events out, no I/O.
///
/// Bytes may arrive split anywhere; feeding a buffer whole or in pieces gives the same events
/// (body bytes may come in different pieces). Pipelined requests in one buffer give one
/// `head … end` sequence each.
///
/// ```swift
/// var parser = HTTPRequestParser()
/// for event in try parser.feed(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)) { … }
/// ```
public struct HTTPRequestParser: Sendable {
    enum State: Sendable {
        case requestLine
        case headerLines
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailerLines
        case failed
    }

    public let limits: HTTPParserLimits
    private var state: State = .requestLine
    /// The line being collected (line-oriented states), without its LF.
    private var line: [UInt8] = []
    /// Bytes of empty lines skipped before a request line (tolerated, but counted).
    private var skippedBytes = 0
    private var sectionBytes = 0
    private var fields: [(String, String)] = []
    private var requestLine: (method: String, target: String, version: HTTPVersion)?
    private var bodyBytes = 0

    /// Longest chunk-size line (with extensions) accepted.
    static let maxChunkLineBytes = 4096

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Whether bytes of a request have been received but its head is not complete yet.
    public var isReadingHead: Bool {
        switch state {
        case .requestLine: !line.isEmpty || skippedBytes > 0
        case .headerLines: true
        default: false
        }
    }

    /// Whether a head was parsed and its body (or trailers) is still coming.
    public var isReadingBody: Bool {
        switch state {
        case .body, .chunkSize, .chunkData, .chunkDataCR, .chunkDataLF, .trailerLines: true
        case .requestLine, .headerLines, .failed: false
        }
    }

    /// Whether the parser has failed and takes no more input.
    public var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// Parses `bytes`, continuing where the previous call stopped.
    ///
    /// - Returns: the events in order; after a `.failure` there are none.
    /// - Throws: ``HTTPParserStateError`` when fed after a failure.
    public mutating func feed(_ bytes: [UInt8]) throws -> [HTTPParserEvent] {
        try bytes.withUnsafeBufferPointer { try feed($0) }
    }

    /// Parses `bytes`, continuing where the previous call stopped.
    public mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>) throws -> [HTTPParserEvent] {
        if case .failed = state {
            throw HTTPParserStateError(description: "fed after a failure")
        }
        var events: [HTTPParserEvent] = []
        var index = 0
        let count = bytes.count
        while index < count {
            switch state {
            case .failed:
                return events

            case .requestLine, .headerLines, .chunkSize, .trailerLines:
                // Collect up to the next LF.
                var end = index
                while end < count, bytes[end] != 0x0A { end += 1 }
                line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))
                if let error = lineLimitError(complete: end < count) {
                    fail(error, &events)
                    return events
                }
                guard end < count else { return events }
                index = end + 1
                try endOfLine(&events)

            case .body(let remaining):
                guard remaining > 0 else {
                    throw HTTPParserStateError(description: "body state with nothing remaining")
                }
                let take = min(remaining, count - index)
                events.append(.body(Array(UnsafeBufferPointer(rebasing: bytes[index..<index + take]))))
                index += take
                if take == remaining {
                    events.append(.end(trailers: HTTPHeaders()))
                    resetForNextRequest()
                } else {
                    state = .body(remaining: remaining - take)
                }

            case .chunkData(let remaining):
                guard remaining > 0 else {
                    throw HTTPParserStateError(description: "chunk state with nothing remaining")
                }
                let take = min(remaining, count - index)
                events.append(.body(Array(UnsafeBufferPointer(rebasing: bytes[index..<index + take]))))
                index += take
                state = take == remaining ? .chunkDataCR : .chunkData(remaining: remaining - take)

            case .chunkDataCR:
                switch bytes[index] {
                case 0x0D: state = .chunkDataLF
                default:
                    fail(.malformed("chunk data not followed by CRLF"), &events)
                    return events
                }
                index += 1

            case .chunkDataLF:
                guard bytes[index] == 0x0A else {
                    fail(.malformed("chunk data not followed by CRLF"), &events)
                    return events
                }
                state = .chunkSize
                index += 1
            }
        }
        return events
    }

    // MARK: - Lines

    /// The limit the line being collected breaks, if any. `complete` says its LF was seen; an
    /// incomplete line is judged by what it already holds, so the outcome never depends on
    /// where the input was split.
    private func lineLimitError(complete: Bool) -> HTTPParseError? {
        switch state {
        case .requestLine:
            // One byte of slack: a CR that belongs to the line ending.
            if line.count > limits.maxRequestLineBytes + 1 { return .requestLineTooLong }
            if complete, contentLength(of: line) > limits.maxRequestLineBytes { return .requestLineTooLong }
            return nil
        case .headerLines, .trailerLines:
            // Section bytes count the LF too.
            let total = sectionBytes + line.count + (complete ? 1 : 0)
            return total > limits.maxHeaderBytes ? .headersTooLarge : nil
        case .chunkSize:
            return line.count > Self.maxChunkLineBytes + 1 ? .malformed("chunk size line too long") : nil
        default:
            return nil
        }
    }

    private func contentLength(of line: [UInt8]) -> Int {
        line.last == 0x0D ? line.count - 1 : line.count
    }

    private mutating func endOfLine(_ events: inout [HTTPParserEvent]) throws {
        let rawCount = line.count + 1
        // Every line ends in CRLF. A bare LF is refused: servers and proxies that split lines
        // differently disagree on where a request ends (request smuggling).
        guard line.last == 0x0D else {
            fail(.malformed("bare LF: lines must end with CRLF"), &events)
            return
        }
        line.removeLast()
        if line.contains(0x0D) {
            fail(.malformed("bare CR"), &events)
            return
        }
        defer { line.removeAll(keepingCapacity: true) }
        switch state {
        case .requestLine:
            if line.isEmpty {
                skippedBytes += rawCount
                if skippedBytes > limits.maxRequestLineBytes {
                    fail(.malformed("too many empty lines"), &events)
                }
                return
            }
            switch parseRequestLine(line) {
            case .success(let parsed):
                requestLine = parsed
                state = .headerLines
                sectionBytes = 0
            case .failure(let error):
                fail(error, &events)
            }

        case .headerLines:
            sectionBytes += rawCount
            if line.isEmpty {
                endOfHead(&events)
                return
            }
            if let error = addField(line) { fail(error, &events) }

        case .trailerLines:
            sectionBytes += rawCount
            if line.isEmpty {
                events.append(.end(trailers: HTTPHeaders(fields)))
                resetForNextRequest()
                return
            }
            if let error = addField(line) { fail(error, &events) }

        case .chunkSize:
            switch parseChunkSize(line) {
            case .failure(let error):
                fail(error, &events)
            case .success(0):
                state = .trailerLines
                sectionBytes = 0
                fields.removeAll()
            case .success(let size):
                if size > limits.maxBodyBytes - bodyBytes {
                    fail(.bodyTooLarge, &events)
                    return
                }
                bodyBytes += size
                state = .chunkData(remaining: size)
            }

        default:
            throw HTTPParserStateError(description: "line ended in a state without lines")
        }
    }

    private mutating func fail(_ error: HTTPParseError, _ events: inout [HTTPParserEvent]) {
        events.append(.failure(error))
        state = .failed
        line = []
        fields = []
    }

    private mutating func resetForNextRequest() {
        state = .requestLine
        line.removeAll(keepingCapacity: true)
        skippedBytes = 0
        sectionBytes = 0
        fields.removeAll(keepingCapacity: true)
        requestLine = nil
        bodyBytes = 0
    }

    // MARK: - Request line

    private func parseRequestLine(
        _ line: [UInt8]
    ) -> Result<(method: String, target: String, version: HTTPVersion), HTTPParseError> {
        let parts = line.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformed("request line")) }
        let method = parts[0], target = parts[1], version = parts[2]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else {
            return .failure(.malformed("method"))
        }
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(.malformed("request target"))
        }
        // HTTP-version = "HTTP/" DIGIT "." DIGIT
        let v = Array(version)
        guard v.count == 8, v[0] == 0x48, v[1] == 0x54, v[2] == 0x54, v[3] == 0x50, v[4] == 0x2F,
              isDigit(v[5]), v[6] == 0x2E, isDigit(v[7])
        else {
            return .failure(.malformed("HTTP version"))
        }
        let parsedVersion = HTTPVersion(major: Int(v[5] - 0x30), minor: Int(v[7] - 0x30))
        guard parsedVersion == .http1_1 || parsedVersion == .http1_0 else {
            return .failure(.unsupportedVersion)
        }
        let targetString = String(decoding: target, as: UTF8.self)
        guard targetString.hasPrefix("/") || targetString == "*" || isAbsoluteHTTPURI(target) else {
            return .failure(.malformed("request target"))
        }
        return .success((String(decoding: method, as: UTF8.self), targetString, parsedVersion))
    }

    private func isAbsoluteHTTPURI(_ target: ArraySlice<UInt8>) -> Bool {
        let lower = String(decoding: target.prefix(8).map(asciiLower), as: UTF8.self)
        return lower.hasPrefix("http://") || lower.hasPrefix("https://")
    }

    // MARK: - Header fields

    private mutating func addField(_ line: [UInt8]) -> HTTPParseError? {
        if line.first == 0x20 || line.first == 0x09 {
            return .malformed("obsolete line folding")
        }
        guard let colon = line.firstIndex(of: 0x3A) else { return .malformed("header field without colon") }
        let name = line[..<colon]
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { return .malformed("header field name") }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        let value = line[start..<end]
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            return .malformed("control character in header field value")
        }
        guard fields.count < limits.maxHeaderCount else { return .tooManyHeaders }
        fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        return nil
    }

    private mutating func endOfHead(_ events: inout [HTTPParserEvent]) {
        guard let requestLine else {
            fail(.malformed("head without request line"), &events)
            return
        }
        let headers = HTTPHeaders(fields)
        fields.removeAll(keepingCapacity: true)
        switch interpret(requestLine, headers) {
        case .failure(let error):
            fail(error, &events)
        case .success(let head):
            events.append(.head(head))
            switch head.framing {
            case .none, .contentLength(0):
                events.append(.end(trailers: HTTPHeaders()))
                resetForNextRequest()
            case .contentLength(let length):
                state = .body(remaining: length)
            case .chunked:
                state = .chunkSize
            }
        }
    }

    private func interpret(
        _ requestLine: (method: String, target: String, version: HTTPVersion), _ headers: HTTPHeaders
    ) -> Result<HTTPRequestHead, HTTPParseError> {
        let version = requestLine.version
        let hosts = headers.values(for: "host")
        if hosts.count > 1 || (version == .http1_1 && hosts.isEmpty) {
            return .failure(.malformed("a request needs exactly one Host"))
        }

        var framing = HTTPBodyFraming.none
        let transferCodings = headers.tokens(for: "transfer-encoding")
        let lengths = headers.values(for: "content-length")
        if !transferCodings.isEmpty {
            if !lengths.isEmpty {
                return .failure(.malformed("both Content-Length and Transfer-Encoding"))
            }
            if version == .http1_0 {
                return .failure(.malformed("Transfer-Encoding in an HTTP/1.0 request"))
            }
            if transferCodings.contains("") { return .failure(.malformed("empty transfer coding")) }
            if transferCodings.contains(where: { $0 != "chunked" }) {
                return .failure(.unsupportedTransferEncoding)
            }
            if transferCodings.count != 1 { return .failure(.malformed("chunked applied twice")) }
            framing = .chunked
        } else if !lengths.isEmpty {
            var length: Int?
            for value in lengths {
                for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let digits = trimmingOWS(Substring(part)).utf8
                    guard !digits.isEmpty, digits.allSatisfy(isDigit) else {
                        return .failure(.malformed("Content-Length"))
                    }
                    // Longer than any limit can be: too large, and no overflow to check.
                    guard digits.count <= 18 else { return .failure(.bodyTooLarge) }
                    let parsed = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                    if let length, length != parsed {
                        return .failure(.malformed("conflicting Content-Length values"))
                    }
                    length = parsed
                }
            }
            guard let length else { return .failure(.malformed("Content-Length")) }
            if length > limits.maxBodyBytes { return .failure(.bodyTooLarge) }
            framing = .contentLength(length)
        }

        var expectsContinue = false
        // RFC 9110 §10.1.1: a server must ignore 100-continue in an HTTP/1.0 request.
        if version == .http1_1 {
            for expectation in headers.values(for: "expect") {
                guard asciiLowercased(trimmingOWS(Substring(expectation))) == "100-continue" else {
                    return .failure(.expectationFailed)
                }
                expectsContinue = true
            }
        }

        let connection = headers.tokens(for: "connection")
        let keepAlive =
            version == .http1_1
            ? !connection.contains("close")
            : connection.contains("keep-alive") && !connection.contains("close")

        return .success(
            HTTPRequestHead(
                method: requestLine.method, target: requestLine.target, version: version,
                headers: headers, keepAlive: keepAlive, expectsContinue: expectsContinue,
                framing: framing))
    }

    // MARK: - Chunked

    private func parseChunkSize(_ line: [UInt8]) -> Result<Int, HTTPParseError> {
        var size = 0
        var index = 0
        while index < line.count, let digit = hexValue(line[index]) {
            // 15 hex digits always fit; a sixteenth could overflow.
            guard index < 15 else { return .failure(.malformed("chunk size overflow")) }
            size = size << 4 | digit
            index += 1
        }
        guard index > 0 else { return .failure(.malformed("chunk size")) }
        while index < line.count, line[index] == 0x20 || line[index] == 0x09 { index += 1 }
        if index < line.count {
            guard line[index] == 0x3B else { return .failure(.malformed("chunk size")) }
            // Chunk extensions are allowed and ignored; only control characters are refused.
            guard line[index...].allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return .failure(.malformed("chunk extension"))
            }
        }
        return .success(size)
    }
}

@inline(__always)
func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

@inline(__always)
func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case 0x30...0x39: Int(byte - 0x30)
    case 0x41...0x46: Int(byte - 0x41 + 10)
    case 0x61...0x66: Int(byte - 0x61 + 10)
    default: nil
    }
}

/// RFC 9110 token characters: letters, digits and ``!#$%&'*+-.^_`|~``.
@inline(__always)
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
    case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
    default: false
    }
}

extension Array where Element == HTTPParserEvent {
    /// The same events with adjacent body pieces joined: how a body is cut into events depends
    /// only on how its bytes arrived.
    public func joiningBodies() -> [HTTPParserEvent] {
        var result: [HTTPParserEvent] = []
        for event in self {
            if case .body(let more) = event, case .body(let previous)? = result.last {
                result[result.count - 1] = .body(previous + more)
            } else {
                result.append(event)
            }
        }
        return result
    }
}
