import Foundation
import HTTPClient
import Posix
#if canImport(Glibc)
import Glibc
#endif
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
            // What the name resolved to is not told.
            #expect(!error.message.contains("127.0.0.1") && !error.message.contains("::1"), "\(error)")
        }
    }

    /// The check made before a subscription is stored: literal and resolved addresses, and
    /// names that do not resolve; the refusal never names the address.
    @Test func webhookTargetsAreCheckedAsThisMachineResolvesThem() {
        #expect(WebhookTarget.refusal(url: "http://localhost:9/hook", allowPrivate: false)?.code == .refusedAddress)
        #expect(WebhookTarget.refusal(url: "http://10.1.2.3/hook", allowPrivate: false)?.code == .refusedAddress)
        #expect(WebhookTarget.refusal(url: "http://[::1]:8080/hook", allowPrivate: false)?.code == .refusedAddress)
        #expect(WebhookTarget.refusal(url: "http://[64:ff9b::a00:1]/hook", allowPrivate: false)?.code == .refusedAddress)
        #expect(WebhookTarget.refusal(url: "https://8.8.8.8/hook", allowPrivate: false) == nil)
        #expect(WebhookTarget.refusal(url: "http://localhost:9/hook", allowPrivate: true) == nil)
        #expect(WebhookTarget.refusal(url: "http://no-such-host.invalid/hook", allowPrivate: false)?.code == .connect)
        #expect(WebhookTarget.refusal(url: "ftp://example.com/x", allowPrivate: false)?.code == .invalidURL)
        let refusal = WebhookTarget.refusal(url: "http://localhost:9/hook", allowPrivate: false)
        #expect(refusal.map { !$0.message.contains("127.0.0.1") } == true)
    }

    /// A configured proxy (tinyproxy, a real one) carries the request: its answer comes back
    /// and its log shows the request. Through it, a private target is still refused unless
    /// allowed, before the proxy is contacted.
    @Test func aConfiguredProxyCarriesRequestsAndTheTargetIsStillChecked() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-proxy-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try Loopback.freePort()
        try """
            Port \(port)
            Listen 127.0.0.1
            Timeout 10
            LogFile "\(directory)/proxy.log"
            LogLevel Info
            MaxClients 20
            Allow 127.0.0.1
            """.write(toFile: "\(directory)/proxy.conf", atomically: true, encoding: .utf8)
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/tinyproxy")
        proxy.arguments = ["-d", "-c", "\(directory)/proxy.conf"]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        try proxy.run()
        defer { kill(proxy.processIdentifier, SIGKILL); proxy.waitUntilExit() }
        var configuration = HTTPClientConfiguration()
        configuration.proxy = "http://127.0.0.1:\(port)"
        configuration.totalTimeout = .seconds(5)
        // Refused before the proxy is asked.
        let checked = try CurlClient(configuration: configuration)
        do {
            _ = try checked.post(url: "http://localhost:9/refused", headers: [], body: [])
            Issue.record("expected a refusal")
        } catch {
            #expect(error.code == .refusedAddress, "\(error)")
        }
        // Allowed: the request reaches a receiver on loopback (Python's http.server, which
        // answers a POST with 501) through the proxy.
        let receiverPort = try Loopback.freePort()
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.1", String(receiverPort)]
        receiver.standardOutput = FileHandle.nullDevice
        receiver.standardError = FileHandle.nullDevice
        try receiver.run()
        defer { kill(receiver.processIdentifier, SIGKILL); receiver.waitUntilExit() }
        configuration.allowPrivateAddresses = true
        let allowed = try CurlClient(configuration: configuration)
        var response: HTTPResponse?
        var failure: HTTPClientError?
        for _ in 0..<50 where response == nil {
            do {
                let answer = try allowed.post(url: "http://127.0.0.1:\(receiverPort)/through", headers: [], body: Array("{}".utf8))
                // 502/503: the proxy is up, the receiver still starting.
                if answer.status == 501 { response = answer } else { usleep(100_000) }
            } catch {
                failure = error
                usleep(100_000)  // the proxy is still starting
            }
        }
        #expect(response?.status == 501, "\(String(describing: response)) \(String(describing: failure))")
        let log = (try? String(contentsOfFile: "\(directory)/proxy.log", encoding: .utf8)) ?? ""
        #expect(log.contains("127.0.0.1:\(receiverPort)/through"), "\(log)")
        #expect(!log.contains("/refused"), "\(log)")
    }
}
