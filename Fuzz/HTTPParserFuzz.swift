// libFuzzer entry point for HTTPRequestParser; built by scripts/fuzz-http together with
// Sources/HTTPServer/HTTPParser.swift and HTTPHeaders.swift.

/// Small limits, so that random inputs reach every limit too.
let fuzzLimits = HTTPParserLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 8, maxBodyBytes: 512)

/// Feeds `pieces` in order, stopping after a failure as a connection would.
func parseAll(_ pieces: [ArraySlice<UInt8>]) -> [HTTPParserEvent] {
    var parser = HTTPRequestParser(limits: fuzzLimits)
    var events: [HTTPParserEvent] = []
    for piece in pieces {
        if parser.hasFailed { break }
        do {
            events += try parser.feed(Array(piece))
        } catch {
            fatalError("state error without misuse: \(error)")
        }
    }
    return events
}

/// Checks the shape of an event sequence: `(head body* end)* failure?`, no empty body,
/// no body above the limit.
func checkShape(_ events: [HTTPParserEvent]) {
    var inRequest = false
    var bodyBytes = 0
    for (index, event) in events.enumerated() {
        switch event {
        case .head:
            precondition(!inRequest, "head inside a request")
            inRequest = true
            bodyBytes = 0
        case .body(let bytes):
            precondition(inRequest, "body outside a request")
            precondition(!bytes.isEmpty, "empty body event")
            bodyBytes += bytes.count
            precondition(bodyBytes <= fuzzLimits.maxBodyBytes, "body over the limit")
        case .end:
            precondition(inRequest, "end outside a request")
            inRequest = false
        case .failure:
            precondition(index == events.count - 1, "events after a failure")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func httpParserFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = parseAll([input[...]])
    checkShape(whole)
    let expected = whole.joiningBodies()

    let split = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
    let halves = parseAll([input[..<split], input[split...]])
    checkShape(halves)
    precondition(halves.joiningBodies() == expected, "a split changed the outcome")

    if input.count <= 512 {
        let bytes = parseAll(input.indices.map { input[$0...$0] })
        precondition(bytes.joiningBodies() == expected, "byte-by-byte feeding changed the outcome")
    }

    var parser = HTTPRequestParser(limits: fuzzLimits)
    if (try? parser.feed(input)) != nil, parser.hasFailed {
        precondition((try? parser.feed([0x41])) == nil, "fed after a failure without an error")
    }
    return 0
}
