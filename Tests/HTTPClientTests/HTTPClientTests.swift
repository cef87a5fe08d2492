import HTTPClient
import Testing

@Suite struct HTTPClientUnitTests {
    @Test(arguments: [
        ("10.1.2.3", true), ("172.16.0.1", true), ("172.31.255.255", true), ("172.32.0.1", false), ("192.168.1.1", true),
        ("127.0.0.1", true), ("169.254.169.254", true), ("100.64.0.1", true), ("0.0.0.0", true), ("224.0.0.1", true),
        ("8.8.8.8", false), ("1.1.1.1", false), ("::1", true), ("::", true), ("fe80::1", true), ("fd00::1", true),
        ("fc12::1", true), ("::ffff:10.0.0.1", true), ("::ffff:8.8.8.8", false), ("64:ff9b::a00:1", true),
        ("2001:4860:4860::8888", false), ("ff02::1", true),
        ("64:ff9b::808:808", false), ("64:ff9b::7f00:1", true), ("64:ff9b:1::808:808", true),
        ("2002:a00:1::1", true), ("2002:7f00:1::", true), ("2002:808:808::1", false), ("2002:a9fe:a9fe::", true),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", true), ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", false),
        ("2001:db8::1", true),
    ])
    func privateAddresses(address: String, isPrivate: Bool) throws {
        let parsed = try #require(NetworkAddress(address))
        #expect(parsed.isPrivate == isPrivate, "\(address)")
    }

    /// RFC 4231, test case 2.
    @Test func hmacSHA256MatchesTheRFCVector() {
        let mac = HMACSHA256.hex(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// Known answers made by another implementation (Python's hmac over "<t>.<body>"), so that
    /// a change to both signing and verifying (say, signing the body alone) cannot pass.
    @Test(arguments: [
        ("whsec_test", 1_764_650_000, Array(#"{"id":1}"#.utf8),
         "t=1764650000,v1=46358969740cc2fcd14aa4976303308c23e7ead2235558c63cdff9672a71ce28"),
        ("s3crét", 1, [],
         "t=1,v1=d6e00b74f109daf694b479272517d6a3b053b8b3cbcd7c6e6accf1a889bfdb65"),
        ("k", 1_764_650_000, Array("café ☃\n".utf8),
         "t=1764650000,v1=4fd260f8965546d846a86c0cbed9ab6dbeaef8a9b8e37aaea26f8dba7553d7f0"),
    ] as [(String, Int, [UInt8], String)])
    func signatureHeadersMatchKnownAnswers(secret: String, timestamp: Int, body: [UInt8], header: String) {
        #expect(WebhookSignature.header(secret: secret, timestamp: timestamp, body: body) == header)
        #expect(WebhookSignature.verify(header: header, secret: secret, body: body, now: timestamp))
    }

    @Test func signaturesVerifyWithinTheReplayWindowOnly() {
        let body = Array(#"{"a":1}"#.utf8)
        let header = WebhookSignature.header(secret: "s3cret", timestamp: 1_700_000_000, body: body)
        #expect(header.hasPrefix("t=1700000000,v1=") && header.count == "t=1700000000,v1=".count + 64)
        #expect(WebhookSignature.verify(header: header, secret: "s3cret", body: body, now: 1_700_000_100))
        #expect(!WebhookSignature.verify(header: header, secret: "s3cret", body: body, now: 1_700_000_301))
        #expect(!WebhookSignature.verify(header: header, secret: "other", body: body, now: 1_700_000_000))
        #expect(!WebhookSignature.verify(header: header, secret: "s3cret", body: body + [32], now: 1_700_000_000))
    }

    @Test func onlyHTTPAndHTTPSAreAccepted() throws {
        let client = try CurlClient(configuration: .init())
        for url in ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com", "not a url"] {
            #expect(throws: HTTPClientError.self) { try client.post(url: url, headers: [], body: []) }
        }
    }

    @Test func aLoopbackReceiverIsRefusedByDefault() throws {
        let client = try CurlClient(configuration: .init())
        do {
            _ = try client.post(url: "http://localhost:9/hook", headers: [], body: [])
            Issue.record("expected a refusal")
        } catch {
            #expect(error.code == .refusedAddress, "\(error)")
        }
    }
}
