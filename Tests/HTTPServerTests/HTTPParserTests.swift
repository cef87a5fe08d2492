import Testing

@testable import HTTPServer

/// Parses `bytes` whole, split at every position and one byte at a time; every way must give
/// the same events (body events joined). Returns the events of the whole parse.
func parseEverySplit(
    _ bytes: [UInt8], limits: HTTPParserLimits = HTTPParserLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> [HTTPParserEvent] {
    let whole = (feed([bytes[...]], limits)).joiningBodies()
    for split in 0...bytes.count {
        let pieces = (feed([bytes[..<split], bytes[split...]], limits)).joiningBodies()
        #expect(pieces == whole, "split at \(split)", sourceLocation: sourceLocation)
        if pieces != whole { break }
    }
    let single = (feed(bytes.indices.map { bytes[$0...$0] }, limits)).joiningBodies()
    #expect(single == whole, "one byte at a time", sourceLocation: sourceLocation)
    return whole
}

func parseEverySplit(
    _ text: String, limits: HTTPParserLimits = HTTPParserLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> [HTTPParserEvent] {
    parseEverySplit(Array(text.utf8), limits: limits, sourceLocation: sourceLocation)
}

func feed(_ pieces: [ArraySlice<UInt8>], _ limits: HTTPParserLimits) -> [HTTPParserEvent] {
    var parser = HTTPRequestParser(limits: limits)
    var events: [HTTPParserEvent] = []
    for piece in pieces where !parser.hasFailed {
        do {
            events += try parser.feed(Array(piece))
        } catch {
            Issue.record("state error: \(error)")
        }
    }
    return events
}

func heads(_ events: [HTTPParserEvent]) -> [HTTPRequestHead] {
    events.compactMap { if case .head(let head) = $0 { head } else { nil } }
}

func failure(_ events: [HTTPParserEvent]) -> HTTPParseError? {
    if case .failure(let error)? = events.last { error } else { nil }
}

@Suite("HTTP request parser")
struct HTTPParserTests {
    @Test func simpleGet() throws {
        let events = parseEverySplit("GET /v1/insights?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n")
        #expect(events.count == 2)
        let head = try #require(heads(events).first)
        #expect(head.method == "GET")
        #expect(head.target == "/v1/insights?x=1")
        #expect(head.version == .http1_1)
        #expect(head.headers["host"] == "example")
        #expect(head.headers["ACCEPT"] == "*/*")
        #expect(head.keepAlive)
        #expect(!head.expectsContinue)
        #expect(head.framing == .none)
        #expect(events.last == .end(trailers: HTTPHeaders()))
    }

    @Test func contentLengthBody() {
        let events = parseEverySplit("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world")
        #expect(heads(events).first?.framing == .contentLength(11))
        #expect(events.dropFirst().first == .body(Array("hello world".utf8)))
        #expect(events.last == .end(trailers: HTTPHeaders()))
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() {
        let request = "POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nDigest: abc\r\nX-Other: 1\r\n\r\n"
        let events = parseEverySplit(request)
        #expect(heads(events).first?.framing == .chunked)
        #expect(events.count == 3)
        #expect(events[1] == .body(Array("hello 0123456789".utf8)))
        #expect(events[2] == .end(trailers: ["Digest": "abc", "X-Other": "1"]))
    }

    @Test func chunkedWithUppercaseHex() {
        let events = parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n1A\r\n" + String(repeating: "z", count: 26) + "\r\n0\r\n\r\n")
        #expect(events[1] == .body(Array(repeating: UInt8(ascii: "z"), count: 26)))
        #expect(events.last == .end(trailers: HTTPHeaders()))
    }

    /// Lines end in CRLF only: a bare LF anywhere (request line, header, chunk size, after chunk
    /// data, trailer, the empty line) is refused.
    @Test(arguments: [
        "GET / HTTP/1.1\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\n",
        "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX: y\n\r\n",
    ])
    func bareLFIsRefused(request: String) {
        let events = parseEverySplit(request)
        guard case .failure(let error)? = events.last else {
            Issue.record("accepted: \(events)")
            return
        }
        #expect(error.status == 400, "\(error)")
    }

    @Test func pipelinedRequestsInOneBuffer() {
        let request = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
            + "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
            + "DELETE /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        let events = parseEverySplit(request)
        #expect(heads(events).map(\.target) == ["/a", "/b", "/c", "/d"])
        #expect(heads(events).map(\.keepAlive) == [true, true, true, false])
        #expect(events.filter { if case .end = $0 { true } else { false } }.count == 4)
        #expect(events.contains(.body(Array("xyz".utf8))))
        #expect(events.contains(.body(Array("ok".utf8))))
    }

    @Test func connectionPersistenceRules() {
        let events = parseEverySplit(
            "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
                + "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(heads(events).map(\.keepAlive) == [false, true, false, true])
        #expect(heads(events).map(\.version) == [.http1_0, .http1_0, .http1_1, .http1_1])
    }

    @Test func expectContinue() {
        let events = parseEverySplit(
            "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok"
                + "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
        #expect(heads(events).map(\.expectsContinue) == [true, false])
    }

    @Test func otherExpectationIs417() {
        let events = parseEverySplit("PUT / HTTP/1.1\r\nHost: h\r\nExpect: something\r\nContent-Length: 2\r\n\r\nok")
        #expect(failure(events) == .expectationFailed)
        #expect(failure(events)?.status == 417)
    }

    @Test func leadingEmptyLinesAbsoluteFormAndAsterisk() {
        let events = parseEverySplit("\r\n\r\nGET http://h/p?q=1 HTTP/1.1\r\nHost: h\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(heads(events).map(\.target) == ["http://h/p?q=1", "*"])
    }

    @Test func headerValuesAreTrimmedAndOrderKept() {
        let events = parseEverySplit("GET / HTTP/1.1\r\nHost: h\r\nX-A:  one \t\r\nx-a: two\r\nX-Empty:\r\n\r\n")
        let headers = heads(events)[0].headers
        #expect(headers.values(for: "X-A") == ["one", "two"])
        #expect(headers["x-empty"] == "")
        #expect(headers.fields.map(\.name) == ["Host", "X-A", "x-a", "X-Empty"])
    }

    @Test func goodRequestBeforeABadOneIsKept() {
        let events = parseEverySplit("GET /ok HTTP/1.1\r\nHost: h\r\n\r\nBROKEN\r\n\r\n")
        #expect(heads(events).map(\.target) == ["/ok"])
        #expect(failure(events)?.status == 400)
    }

    @Test func feedingAfterFailureThrows() throws {
        var parser = HTTPRequestParser()
        let events = try parser.feed(Array("NOT HTTP\r\n".utf8))
        #expect(failure(events)?.status == 400)
        #expect(parser.hasFailed)
        #expect(throws: HTTPParserStateError.self) { try parser.feed(Array("more".utf8)) }
    }

    @Test func progressFlags() throws {
        var parser = HTTPRequestParser()
        #expect(!parser.isReadingHead && !parser.isReadingBody)
        _ = try parser.feed(Array("G".utf8))
        #expect(parser.isReadingHead)
        _ = try parser.feed(Array("ET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n".utf8))
        #expect(!parser.isReadingHead && parser.isReadingBody)
        _ = try parser.feed(Array("ab".utf8))
        #expect(!parser.isReadingHead && !parser.isReadingBody)
    }

    // MARK: - Limits

    @Test func requestLineLimitIsExact() {
        let limits = HTTPParserLimits(maxRequestLineBytes: 64)
        let fits = "GET /" + String(repeating: "a", count: 64 - 14) + " HTTP/1.1"
        #expect(fits.utf8.count == 64)
        #expect(failure(parseEverySplit(fits + "\r\nHost: h\r\n\r\n", limits: limits)) == nil)
        let over = "GET /" + String(repeating: "a", count: 64 - 13) + " HTTP/1.1"
        #expect(failure(parseEverySplit(over + "\r\nHost: h\r\n\r\n", limits: limits)) == .requestLineTooLong)
        // Never terminated: the limit is seen without waiting for the line end.
        #expect(failure(parseEverySplit("GET /" + String(repeating: "a", count: 100), limits: limits)) == .requestLineTooLong)
    }

    @Test func defaultRequestLineLimitIs414() {
        let events = feed([Array(("GET /" + String(repeating: "a", count: 8200) + " HTTP/1.1\r\n").utf8)[...]], HTTPParserLimits())
        #expect(failure(events)?.status == 414)
    }

    @Test func headerBytesLimit() {
        let limits = HTTPParserLimits(maxHeaderBytes: 64)
        let header = "Host: h\r\nX-Pad: " + String(repeating: "p", count: 60) + "\r\n\r\n"
        let events = parseEverySplit("GET / HTTP/1.1\r\n" + header, limits: limits)
        #expect(failure(events) == .headersTooLarge)
        #expect(failure(events)?.status == 431)
        // Exactly at the limit passes: the section is the fields plus the empty line.
        let exact = "Host: h\r\nX-Pad: " + String(repeating: "p", count: 64 - 9 - 9 - 2) + "\r\n\r\n"
        #expect(exact.utf8.count == 64)
        #expect(failure(parseEverySplit("GET / HTTP/1.1\r\n" + exact, limits: limits)) == nil)
    }

    @Test func defaultHeaderBytesLimitIs431() {
        let big = "GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "X-Pad: " + String(repeating: "p", count: 1000) + "\r\n", count: 66)
        #expect(failure(feed([Array(big.utf8)[...]], HTTPParserLimits()))?.status == 431)
    }

    @Test func headerCountLimit() {
        let fields = (1..<100).map { "X-\($0): v\r\n" }.joined()
        #expect(failure(parseEverySplit("GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n")) == nil)
        let events = parseEverySplit("GET / HTTP/1.1\r\nHost: h\r\n" + fields + "X-101: v\r\n\r\n")
        #expect(failure(events) == .tooManyHeaders)
        #expect(failure(events)?.status == 431)
    }

    @Test func trailersCountAgainstTheHeaderLimits() {
        let limits = HTTPParserLimits(maxHeaderCount: 2)
        let events = parseEverySplit(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits)
        #expect(failure(events) == .tooManyHeaders)
    }

    @Test func contentLengthOverLimitIs413BeforeTheBody() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let events = parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: limits)
        #expect(events == [.failure(.bodyTooLarge)])
        #expect(failure(parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits)) == nil)
        let huge = parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n")
        #expect(failure(huge)?.status == 413)
    }

    @Test func chunkedOverLimitIs413() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let events = parseEverySplit(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n", limits: limits)
        #expect(failure(events) == .bodyTooLarge)
        #expect(events.contains(.body(Array("012345".utf8))))
    }

    // MARK: - Malformed input

    @Test(arguments: [
        ("GET /\r\n\r\n", 400),
        ("GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400),
        ("GET / http/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/11\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        ("GET / HTTP/0.9\r\n\r\n", 505),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        ("GET nopath HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET /\u{7f} HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: b\rc\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: b\u{1}c\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", 400),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n", 413),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rx", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;a\u{1}\r\n", 400),
    ])
    func malformed(request: String, status: Int) {
        let events = parseEverySplit(request)
        #expect(failure(events)?.status == status, "\(request.debugDescription)")
    }
}
