import Foundation

/// Settings of an ``HTTPServer``; every field has a documented default.
public struct HTTPServerConfiguration: Sendable {
    /// Address to listen on; a numeric IPv4 or IPv6 address or a host name. Default `0.0.0.0`.
    public var host: String = "0.0.0.0"
    /// Port to listen on; 0 picks a free one (read it from ``HTTPServer/waitUntilStarted()``).
    /// Default 8080.
    public var port: Int = 8080
    /// Longest request line (414 beyond). Default 8 KiB.
    public var maxRequestLineBytes: Int = 8192
    /// Largest header section (431 beyond). Default 64 KiB.
    public var maxHeaderBytes: Int = 65536
    /// Most header fields (431 beyond). Default 100.
    public var maxHeaderCount: Int = 100
    /// Largest request body (413 beyond). Default 1 MiB.
    public var maxBodyBytes: Int = 1 << 20
    /// Time allowed from a request's first byte to the end of its head (408 and close after),
    /// so a client that dribbles its headers cannot hold a connection. Default 10 s.
    public var headerTimeout: Duration = .seconds(10)
    /// Time allowed from the end of a head to the end of its body (408 and close after).
    /// Default 30 s.
    public var bodyTimeout: Duration = .seconds(30)
    /// Time a keep-alive connection may wait for its next request before it is closed.
    /// Default 60 s.
    public var idleTimeout: Duration = .seconds(60)
    /// Time a response may make no progress towards the client before the connection is
    /// dropped. Default 30 s.
    public var writeTimeout: Duration = .seconds(30)
    /// Most open connections; beyond it new connections wait in the listen backlog.
    /// Default 10,000.
    public var maxConnections: Int = 10_000
    /// Most open connections from one client address (the peer's address as the socket
    /// reports it, without the port). A new connection beyond it is answered 503 and
    /// closed, so one client cannot hold the whole of ``maxConnections``. Behind a load
    /// balancer that connects from few addresses, raise it. Default 1,000.
    public var maxConnectionsPerClient: Int = 1_000
    /// After ``HTTPServer/beginShutdown()``, how long in-flight requests may take before every
    /// connection is closed and ``HTTPServer/run()`` returns. Default 10 s.
    public var shutdownGrace: Duration = .seconds(10)
    /// After a response that closes the connection, how long to keep reading (and discarding)
    /// so that unread request bytes do not turn the close into a reset that loses the response.
    /// Default 2 s.
    public var lingerTimeout: Duration = .seconds(2)
    /// Event loops, each on a thread of its own: the first accepts connections and hands each
    /// to the loop with the fewest open; every loop reads, parses and writes its own. Default
    /// one per core the process may use (at most 16).
    public var eventLoops: Int = min(16, max(1, ProcessInfo.processInfo.activeProcessorCount))
    /// Length of the kernel's queue of not yet accepted connections. Default 4096.
    public var listenBacklog: Int = 4096
    /// Told the status of each request the server answers by itself, without the handler:
    /// malformed (400), too slow (408), too large (413, 414, 431) and the like. Called on the
    /// event loop's thread, so it must be quick. Default none.
    public var onRefused: (@Sendable (Int) -> Void)?

    public init() {}

    public init(host: String = "0.0.0.0", port: Int = 8080) {
        self.host = host
        self.port = port
    }

    /// The parser limits these settings imply.
    public var parserLimits: HTTPParserLimits {
        HTTPParserLimits(
            maxRequestLineBytes: maxRequestLineBytes, maxHeaderBytes: maxHeaderBytes,
            maxHeaderCount: maxHeaderCount, maxBodyBytes: maxBodyBytes)
    }
}
