import Analysis
import Testing

@Suite struct DependencyExtractorTests {
    @Test(arguments: [
        ("timeout calling payments-db:5432", "payments-db"),
        ("connection refused to payments.internal", "payments.internal"),
        ("upstream payments timed out", "payments"),
        ("Timeout after 30s calling 10.0.0.7:5432", "10.0.0.7"),
        ("dial tcp 10.1.2.3:50051: connect: connection refused", "10.1.2.3"),
        ("rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 10.1.2.3:50051: i/o timeout\"", "10.1.2.3"),
        ("dial tcp: lookup payments on 10.0.0.2:53: no such host", "payments"),
        ("Post \"http://inventory:8080/v1/reserve\": context deadline exceeded", "inventory"),
        ("Get https://user:pw@auth.example.com/token: EOF", "auth.example.com"),
        ("connect ECONNREFUSED 10.0.0.7:6379", "10.0.0.7"),
        ("getaddrinfo ENOTFOUND payments.internal", "payments.internal"),
        ("java.net.UnknownHostException: payments.internal: Name or service not known", "payments.internal"),
        ("Connect to payments.internal:443 [payments.internal/10.0.0.7] failed: Connection refused", "payments.internal"),
        ("Connection refused: payments.internal/10.0.0.7:8080", "payments.internal"),
        ("Could not resolve host: Payments.Internal", "payments.internal"),
        ("failed to connect to payments-db port 5432: Connection refused", "payments-db"),
        ("HTTP 503 from inventory-svc", "inventory-svc"),
        ("Error calling the ledger service: deadline exceeded", "ledger"),
    ])
    func findsThePeer(message: String, expected: String) {
        #expect(DependencyExtractor.extract(from: message) == expected)
    }

    @Test(arguments: [
        "java.net.SocketTimeoutException: Read timed out",
        "Timed out waiting for connection from pool",
        "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        "no healthy upstream",
        "java.lang.OutOfMemoryError: Java heap space",
        "Failed to connect to database",
        "at com.example.checkout.PaymentClient.charge(PaymentClient.java:42)",
        "cannot open config.yaml for reading",
        "request failed at 2026-11-22T10:00:00Z",
        "",
    ])
    func findsNothingWhenNoPeerIsNamed(message: String) {
        #expect(DependencyExtractor.extract(from: message) == nil)
    }
}
