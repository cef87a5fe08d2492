@testable import Domain
import Foundation
import Testing

/// Messages as real producer libraries write them, and traces as real runtimes print them.
///
/// The files in Fixtures/ come from Fixtures/generate.py, which runs the OpenTelemetry Python
/// SDK with its OTLP/JSON file exporter, seqlog (capturing what it POSTs to Seq), javac/java and
/// node; the .NET and Go traces are typed by hand after those runtimes' formats (no runtime
/// here) and say so in their names. Every record was written at 2026-11-22T04:50:32.123456Z.
@Suite struct ProducerFixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let writtenAt = Date(timeIntervalSince1970: 1_795_323_032.123456)
    static let now = writtenAt.addingTimeInterval(60)

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static func text(_ name: String) throws -> String {
        try #require(String(validating: try bytes(name), as: UTF8.self), "\(name) is UTF-8")
    }

    static func decode(_ bytes: [UInt8], contentType: String? = nil) throws -> DecodedMessage {
        try EventDecoder().decode(bytes, origin: MessageOrigin(topic: "logs", partition: 0, offset: 7, contentType: contentType), now: now)
    }

    // MARK: - OpenTelemetry Python SDK → OTLP/JSON

    @Test func otlpExportOfThePythonSDK() throws {
        let message = try Self.decode(try Self.bytes("otlp-python-logs.json"))
        #expect(message.format == .otlp)
        #expect(message.skipped == 1, "the INFO record is an ordinary log")
        #expect(message.events.count == 2)
        let error = try #require(message.events.first)
        #expect(error.service == "checkout" && error.environment == "staging" && error.version == "1.8.3")
        #expect(error.severity == .error)
        // The SDK writes the class's bare name; the traceback's last line says checkout.orders.PaymentError.
        #expect(error.errorType == "PaymentError")
        #expect(error.message == "order o-1001 has no customer to charge")
        #expect(abs(error.timestamp.timeIntervalSince(Self.writtenAt)) < 0.001)
        #expect(error.traceID == nil && error.spanID == nil, "no span was active")
        #expect(error.stacktrace?.hasPrefix("Traceback (most recent call last):\n") == true)
        // Innermost first: the raise of the final exception, then its caller, then the cause's frames.
        #expect(error.frames.map(\.function) == ["charge", "handle", "customer_of", "charge"])
        #expect(error.frames.first == StackFrame(function: "charge", file: "/srv/checkout/checkout/orders.py", line: 19))
        #expect(error.frames.map(\.line) == [19, 25, 12, 17])
        let attributes = try #require(error.attributesJSON)
        #expect(attributes.contains(#""code.function.name":"handle""#) && attributes.contains(#""code.line.number":27"#))
        #expect(!attributes.contains("exception."), "exception.* become fields, not attributes")

        let warning = message.events[1]
        #expect(warning.severity == .warning && warning.errorType == nil)
        #expect(warning.message == "payment provider answered in 5012 ms")
        #expect(warning.service == "checkout" && warning.frames.isEmpty && warning.stacktrace == nil)
    }

    @Test func otlpRecordWithoutExceptionTypeTakesItFromTheTrace() throws {
        // Some producers send exception.stacktrace alone: the type then comes from the trace.
        let original = try Self.text("otlp-python-logs.json")
        let withoutType = original.replacingOccurrences(of: #"{"key":"exception.type","value":{"stringValue":"PaymentError"}},"#, with: "")
        #expect(withoutType != original)
        let event = try #require(try Self.decode(Array(withoutType.utf8)).events.first)
        #expect(event.errorType == "checkout.orders.PaymentError")
        #expect(event.message == "order o-1001 has no customer to charge")
    }

    // MARK: - seqlog → CLEF

    @Test func clefAsSeqlogPostsIt() throws {
        let bytes = try Self.bytes("clef-seqlog.clef")
        #expect(bytes.contains(13), "seqlog joins events with CRLF")
        let message = try Self.decode(bytes, contentType: "application/vnd.serilog.clef")
        #expect(message.format == .clef)
        #expect(message.skipped == 1, "@l INFO without @x is an ordinary log")
        #expect(message.events.count == 2)
        let error = try #require(message.events.first)
        #expect(error.service == "billing" && error.environment == "production" && error.version == "2026.11.3")
        #expect(error.severity == .error, "@l is Python's ERROR")
        #expect(error.errorType == "KeyError", "the type is the last line of the Python traceback in @x")
        #expect(error.message == "Invoice inv-2026-0042 could not be sent")
        #expect(error.host == "billing-7c9f")
        #expect(abs(error.timestamp.timeIntervalSince(Self.writtenAt)) < 0.001, "@t is local time with +01:00")
        #expect(error.frames.first == StackFrame(function: "customer_of", file: "/srv/billing/billing/invoices.py", line: 10))
        #expect(error.frames.map(\.function) == ["customer_of", "render", "send_invoice"])
        #expect(error.frames.map(\.inApp) == [true, false, true], "site-packages is a library")
        let attributes = try #require(error.attributesJSON)
        #expect(attributes.contains(#""InvoiceId":"inv-2026-0042""#) && attributes.contains(#""LoggerName":"billing.invoices""#))

        let warning = message.events[1]
        #expect(warning.severity == .warning, "@l is Python's WARNING")
        #expect(warning.errorType == nil && warning.message == "Mail relay answered in 5012 ms")
        #expect(warning.service == "billing" && warning.version == "2026.11.3")
    }

    @Test func clefIsRecognisedWithoutAContentType() throws {
        let message = try Self.decode(try Self.bytes("clef-seqlog.clef"))
        #expect(message.format == .clef && message.events.count == 2 && message.skipped == 1)
    }

    // MARK: - Native events carrying a runtime's trace as text

    @Test(arguments: [
        ("trace-java.txt", "java.lang.IllegalStateException"),
        ("trace-node.txt", "TypeError"),
        ("trace-dotnet.handwritten.txt", "System.InvalidOperationException"),
        ("trace-go.handwritten.txt", "runtime.Error"),
    ])
    func nativeEventWithoutErrorTypeTakesItFromTheTrace(file: String, type: String) throws {
        let trace = try Self.text(file)
        let event: [String: Any] = [
            "timestamp": "2026-11-22T04:50:32Z", "service": "orders", "message": "request failed", "stacktrace": trace,
        ]
        let json = try JSONSerialization.data(withJSONObject: event)
        let decoded = try #require(try Self.decode(Array(json)).events.first)
        #expect(decoded.errorType == type)
        #expect(decoded.frames == StackTraceParser.frames(in: trace))
        #expect(!decoded.frames.isEmpty)
    }

    // MARK: - Traces, runtime by runtime

    @Test func java() throws {
        let trace = try Self.text("trace-java.txt")
        let error = try #require(StackTraceParser.errorType(in: trace))
        #expect(error.type == "java.lang.IllegalStateException", "the thrown type, not the Caused by root")
        #expect(error.message == "order o-1001 cannot be charged")
        let frames = StackTraceParser.frames(in: trace)
        #expect(frames.count == 7)
        #expect(frames.first == StackFrame(function: "com.shop.orders.OrderService.charge", file: "OrderService.java", line: 12))
        #expect(frames[2] == StackFrame(function: "java.lang.NumberFormatException.forInputString", module: "java.base",
                                        file: "NumberFormatException.java", line: 67, inApp: false))
        #expect(frames.map(\.inApp) == [true, true, false, false, false, true, true])
    }

    @Test func node() throws {
        let trace = try Self.text("trace-node.txt")
        let error = try #require(StackTraceParser.errorType(in: trace))
        #expect(error.type == "TypeError" && error.message == "Cannot read properties of undefined (reading 'id')")
        let frames = StackTraceParser.frames(in: trace)
        #expect(frames.first == StackFrame(function: "customerId", file: "/tmp/faultline-fixtures/shop/orders.js", line: 4))
        #expect(frames[1] == StackFrame(function: "Array.map", inApp: false), "a V8 builtin: (<anonymous>) is no file")
        #expect(frames[3].function == "Object.<anonymous>" && frames[3].line == 12 && frames[3].inApp)
        #expect(frames[4] == StackFrame(function: "Module._compile", file: "node:internal/modules/cjs/loader", line: 1521, inApp: false))
        #expect(frames.contains { $0.function == "Function.executeUserEntryPoint" }, "[as runMain] is dropped")
        #expect(frames.last == StackFrame(function: nil, file: "node:internal/main/run_main_module", line: 28, inApp: false))
        #expect(frames.filter(\.inApp).count == 3)

        let async = try Self.text("trace-node-async.txt")
        #expect(StackTraceParser.errorType(in: async)?.type == "TypeError")
        #expect(StackTraceParser.frames(in: async) == [
            StackFrame(function: "loadCustomer", file: "/tmp/faultline-fixtures/shop/handler.js", line: 5),
            StackFrame(function: "handle", file: "/tmp/faultline-fixtures/shop/handler.js", line: 9),
        ])
    }

    @Test func python() throws {
        let otlp = try Self.text("otlp-python-logs.json")
        let document = try JSONParser.parse(Array(otlp.utf8))
        let record = try #require(document["resourceLogs"]?.arrayValue?.first?["scopeLogs"]?.arrayValue?.first?["logRecords"]?.arrayValue?[1])
        let attribute = record["attributes"]?.arrayValue?.first { $0["key"]?.stringValue == "exception.stacktrace" }
        let chained = try #require(attribute?["value"]?["stringValue"]?.stringValue)
        #expect(chained.contains("The above exception was the direct cause of the following exception:"))
        let error = try #require(StackTraceParser.errorType(in: chained))
        #expect(error.type == "checkout.orders.PaymentError", "the last exception of the chain")
        #expect(error.message == "order o-1001 has no customer to charge")
        #expect(StackTraceParser.frames(in: chained).first == StackFrame(function: "charge", file: "/srv/checkout/checkout/orders.py", line: 19))

        #expect(StackTraceParser.errorType(in: "Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in f\n    d[k]\nbuiltins.KeyError: 'k'\n")?.type == "KeyError")
        let during = """
            Traceback (most recent call last):
              File "/app/x.py", line 2, in <module>
                {}["a"]
            KeyError: 'a'

            During handling of the above exception, another exception occurred:

            Traceback (most recent call last):
              File "/app/x.py", line 4, in <module>
                1 / 0
                ~~^~~
            ZeroDivisionError: division by zero
            """
        #expect(StackTraceParser.errorType(in: during).map { [$0.type, $0.message ?? ""] } == ["ZeroDivisionError", "division by zero"])
        #expect(StackTraceParser.frames(in: during).map(\.line) == [4, 2])
        #expect(StackTraceParser.errorType(in: "Traceback (most recent call last):\n  File \"/app/x.py\", line 1, in f\nStopIteration")?.type == "StopIteration")
    }

    @Test func dotnet() throws {
        let trace = try Self.text("trace-dotnet.handwritten.txt")
        let error = try #require(StackTraceParser.errorType(in: trace))
        #expect(error.type == "System.InvalidOperationException", "the outer exception, not the ---> inner ones")
        #expect(error.message == "Could not charge order o-1001")
        let frames = StackTraceParser.frames(in: trace)
        #expect(frames.count == 6)
        #expect(frames.first == StackFrame(function: "System.Net.Sockets.Socket.AwaitableSocketAsyncEventArgs.ThrowException", inApp: false),
                "a parameter list is not a file")
        #expect(frames.first(where: \.inApp) == StackFrame(function: "Shop.Payments.PaymentClient.ChargeAsync", file: "/src/Shop.Payments/PaymentClient.cs", line: 57))
        #expect(frames.last == StackFrame(function: "Shop.Orders.OrdersController.Post", file: "/src/Shop.Orders/OrdersController.cs", line: 24))

        #expect(StackTraceParser.errorType(in: "Unhandled exception. System.Net.Sockets.SocketException (111): Connection refused\n   at X.Y()")
            .map { [$0.type, $0.message ?? ""] } == ["System.Net.Sockets.SocketException", "Connection refused"])
        #expect(StackTraceParser.errorType(in: "System.InvalidOperationException: outer ---> System.Exception: inner\n   at X.Y()")?.message == "outer")
    }

    @Test func go() throws {
        let trace = try Self.text("trace-go.handwritten.txt")
        let error = try #require(StackTraceParser.errorType(in: trace))
        #expect(error.type == "runtime.Error" && error.message == "index out of range [5] with length 3")
        let frames = StackTraceParser.frames(in: trace)
        #expect(frames == [
            StackFrame(function: "main.lineItem", file: "/src/shop/orders.go", line: 21),
            StackFrame(function: "main.(*Worker).process", file: "/src/shop/orders.go", line: 34),
            StackFrame(function: "github.com/acme/queue.(*Consumer).Run", file: "/root/go/pkg/mod/github.com/acme/queue@v1.4.2/consumer.go",
                       line: 88, inApp: false),
        ])
        #expect(StackTraceParser.errorType(in: "panic: order o-1 has no lines\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:9 +0x25")
            .map { [$0.type, $0.message ?? ""] } == ["panic", "order o-1 has no lines"])
        #expect(StackTraceParser.errorType(in: "fatal error: concurrent map writes\n")?.type == "fatal error")
        // An application's own internal/ packages are in-app.
        #expect(StackTraceParser.frames(in: "github.com/me/app/internal/orders.Handle()\n\t/src/app/internal/orders/handle.go:9 +0x25").first?.inApp == true)
    }

    @Test func firstLinesThatNameNoType() {
        #expect(StackTraceParser.errorType(in: "") == nil)
        #expect(StackTraceParser.errorType(in: "Something went wrong while charging\n  at x (/a.js:1:1)") == nil)
        #expect(StackTraceParser.errorType(in: "ERROR--NoException\nStack (most recent call last):\n  File \"/a.py\", line 1, in f") == nil)
        #expect(StackTraceParser.errorType(in: "java.lang.NullPointerException\n\tat com.x.Y.m(Y.java:3)")?.type == "java.lang.NullPointerException")
        #expect(StackTraceParser.errorType(in: "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers\n    at f (/a.js:1:1)")?.type == "Error [ERR_HTTP_HEADERS_SENT]")
        #expect(StackTraceParser.errorType(in: "Exception in thread \"main\" java.lang.IllegalStateException: boom\n\tat M.main(M.java:3)")?.type
            == "java.lang.IllegalStateException")
        #expect(StackTraceParser.errorType(in: String(repeating: "A", count: 300) + ": too long a type") == nil)
    }

    @Test func largeTracesStayLinear() {
        // 64 KiB to 1 MiB of each shape: about a second in a debug build; a quadratic step would take minutes.
        let java = "java.lang.IllegalStateException: x\n" + String(repeating: "\tat com.x.Y.m(Y.java:1)\n", count: 20_000)
        let python = "Traceback (most recent call last):\n" + String(repeating: "  File \"/a.py\", line 1, in f\n    f()\n", count: 20_000) + "RecursionError: maximum recursion depth exceeded"
        let noNewline = String(repeating: "x", count: 1 << 20)
        let colons = String(repeating: ":", count: 1 << 20)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(StackTraceParser.errorType(in: java)?.type == "java.lang.IllegalStateException")
            #expect(StackTraceParser.frames(in: java).count == 200)
            #expect(StackTraceParser.errorType(in: python)?.type == "RecursionError")
            #expect(StackTraceParser.frames(in: python).count == 200)
            #expect(StackTraceParser.errorType(in: noNewline) == nil)
            #expect(StackTraceParser.errorType(in: colons) == nil)
            #expect(StackTraceParser.frames(in: noNewline).isEmpty && StackTraceParser.frames(in: colons).isEmpty)
        }
        #expect(elapsed < .seconds(15))
    }
}
