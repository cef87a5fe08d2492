import Testing

@testable import HTTPServer

@Suite("Router, headers and requests")
struct RouterTests {
    func router() -> Router {
        var router = Router()
        router.add("GET", "/v1/issues") { _ in .text("list") }
        router.add("POST", "/v1/issues") { request in .text("created \(request.bodyText)", status: 201) }
        router.add("GET", "/v1/issues/{id}") { request in .text("issue \(request.pathParameters["id"] ?? "?")") }
        router.add("DELETE", "/v1/issues/{id}/comments/{comment}") { request in
            .text("\(request.pathParameters["id"]!)/\(request.pathParameters["comment"]!)")
        }
        return router
    }

    @Test func routesByMethodAndPath() async {
        let handler = router().handler
        #expect(await handler(HTTPRequest(method: "GET", target: "/v1/issues")).bodyText == "list")
        let created = await handler(HTTPRequest(method: "POST", target: "/v1/issues", body: Array("x".utf8)))
        #expect(created.status == 201 && created.bodyText == "created x")
        #expect(await handler(HTTPRequest(method: "GET", target: "/v1/issues/a%20b?x=1")).bodyText == "issue a b")
        #expect(await handler(HTTPRequest(method: "DELETE", target: "/v1/issues/7/comments/9")).bodyText == "7/9")
    }

    @Test func unknownPathIs404() async {
        let handler = router().handler
        #expect(await handler(HTTPRequest(method: "GET", target: "/v2/issues")).status == 404)
        #expect(await handler(HTTPRequest(method: "GET", target: "/v1/issues/")).status == 404)
        #expect(await handler(HTTPRequest(method: "GET", target: "/v1/issues/1/2")).status == 404)
    }

    @Test func otherMethodIs405WithAllow() async {
        let handler = router().handler
        let response = await handler(HTTPRequest(method: "PATCH", target: "/v1/issues"))
        #expect(response.status == 405)
        #expect(response.headers["Allow"] == "GET, HEAD, POST")
        let other = await handler(HTTPRequest(method: "GET", target: "/v1/issues/1/comments/2"))
        #expect(other.status == 405)
        #expect(other.headers["allow"] == "DELETE")
    }

    @Test func headFallsBackToGet() async {
        let handler = router().handler
        let response = await handler(HTTPRequest(method: "HEAD", target: "/v1/issues/5"))
        #expect(response.status == 200)
        #expect(response.bodyText == "issue 5")
    }

    @Test func requestTargetParts() {
        let request = HTTPRequest(method: "GET", target: "/a%2Fb/c?x=1&y=a+b%21&x=2&flag")
        #expect(request.path == "/a%2Fb/c")
        #expect(request.decodedPath == "/a/b/c")
        #expect(request.queryValue("x") == "1")
        #expect(request.queryValue("y") == "a b!")
        #expect(request.queryValue("flag") == "")
        #expect(request.query.map(\.name) == ["x", "y", "x", "flag"])
        #expect(HTTPRequest(method: "GET", target: "http://host:8080/p?q=1").path == "/p")
        #expect(HTTPRequest(method: "GET", target: "/%zz").decodedPath == nil)
    }

    @Test func headersAreCaseInsensitiveAndOrdered() {
        var headers: HTTPHeaders = ["A": "1", "b": "2", "a": "3"]
        #expect(headers["a"] == "1")
        #expect(headers.values(for: "A") == ["1", "3"])
        headers.set(name: "A", value: "x")
        #expect(headers.fields.map(\.name) == ["A", "b"])
        #expect(headers["a"] == "x")
        headers.add(name: "C", value: "4")
        headers.remove(name: "B")
        #expect(headers.fields.map(\.name) == ["A", "C"])
        headers["c"] = nil
        #expect(!headers.contains("C"))
        #expect(HTTPHeaders([("Connection", "Keep-Alive, Upgrade")]).tokens(for: "connection") == ["keep-alive", "upgrade"])
    }
}

extension HTTPResponse {
    var bodyText: String { String(decoding: body, as: UTF8.self) }
}
