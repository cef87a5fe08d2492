import Domain
import Testing

/// The stack-trace reader alone, on traces as each runtime prints them.
@Suite struct StackTraceParserTests {
    @Test func javaFramesInnermostFirstWithTheErrorTypeAndLibrariesMarked() throws {
        let trace = """
            java.lang.IllegalStateException: cart 42 is closed
            \tat com.shop.cart.CartService.checkout(CartService.java:88)
            \tat com.shop.api.CartController.post(CartController.java:31)
            \tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)
            Caused by: java.io.IOException: broken pipe
            \tat java.base/sun.nio.ch.SocketDispatcher.write(SocketDispatcher.java:62)
            """
        let error = try #require(StackTraceParser.errorType(in: trace))
        #expect(error.type == "java.lang.IllegalStateException" && error.message == "cart 42 is closed")
        let frames = StackTraceParser.frames(in: trace)
        #expect(frames.first?.function?.hasSuffix("CartService.checkout") == true)
        #expect(frames.first?.file == "CartService.java" && frames.first?.line == 88 && frames.first?.inApp == true)
        #expect(frames.contains { $0.function?.contains("springframework") == true && !$0.inApp }, "\(frames)")
    }

    @Test func pythonTracebacksAreTurnedRoundToPutTheInnermostFrameFirst() throws {
        let trace = """
            Traceback (most recent call last):
              File "/app/orders/api.py", line 12, in create
                return service.place(order)
              File "/app/orders/service.py", line 40, in place
                raise ValueError("sku 9 out of stock")
            ValueError: sku 9 out of stock
            """
        #expect(StackTraceParser.errorType(in: trace)?.type == "ValueError")
        let frames = StackTraceParser.frames(in: trace)
        #expect(frames.map(\.function) == ["place", "create"])
        #expect(frames.first?.file == "/app/orders/service.py" && frames.first?.line == 40)
    }

    @Test func goNodeAndDotNetTracesGiveTheirFrames() {
        let go = """
            panic: runtime error: index out of range [3] with length 3

            goroutine 1 [running]:
            main.lookup(...)
            \t/app/cmd/server/main.go:27 +0x1d
            main.main()
            \t/app/cmd/server/main.go:12 +0x25
            """
        #expect(StackTraceParser.frames(in: go).first.map { ($0.function, $0.line) } ?? (nil, nil) == ("main.lookup", 27))
        let node = """
            TypeError: Cannot read properties of undefined (reading 'id')
                at getUser (/app/src/users.js:14:22)
                at /app/node_modules/express/lib/router/layer.js:95:5
            """
        let nodeFrames = StackTraceParser.frames(in: node)
        #expect(nodeFrames.first?.function == "getUser" && nodeFrames.first?.line == 14 && nodeFrames.first?.inApp == true)
        #expect(nodeFrames.last?.inApp == false, "node_modules is a library")
        #expect(StackTraceParser.errorType(in: node)?.type == "TypeError")
        let dotnet = """
            System.InvalidOperationException: Sequence contains no elements
               at System.Linq.ThrowHelper.ThrowNoElementsException()
               at Shop.Orders.OrderService.Place(Order order) in /src/Orders/OrderService.cs:line 57
            """
        let dotnetFrames = StackTraceParser.frames(in: dotnet)
        #expect(dotnetFrames.last?.line == 57 && dotnetFrames.last?.file == "/src/Orders/OrderService.cs")
        #expect(dotnetFrames.first?.inApp == false, "System.* is the runtime")
    }

    @Test func framesAreBoundedAndRenderedOnePerLine() {
        let deep = "java.lang.StackOverflowError\n" + (0..<5_000).map { "\tat a.B.f\($0)(B.java:\($0))" }.joined(separator: "\n")
        let frames = StackTraceParser.frames(in: deep)
        #expect(frames.count == StackTraceParser.maximumFrames)
        #expect(StackTraceParser.frames(in: deep, limit: 3).count == 3)
        let rendered = StackTraceParser.render(Array(frames.prefix(2)))
        #expect(rendered.split(separator: "\n").count == 2 && rendered.contains("B.java:1"), "\(rendered)")
        #expect(StackTraceParser.frames(in: "").isEmpty && StackTraceParser.errorType(in: "") == nil)
        #expect(StackTraceParser.frames(in: "just a message, no trace").isEmpty)
    }
}
