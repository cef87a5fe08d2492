import CCurl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a request may do: how long it may take and where it may connect.
public struct HTTPClientConfiguration: Sendable {
    /// Longest wait for the TCP (and TLS) connection.
    public var connectTimeout: Duration = .seconds(5)
    /// Longest a whole request may take, connection included.
    public var totalTimeout: Duration = .seconds(10)
    /// Whether private, loopback and link-local addresses may be reached (tests, in-cluster
    /// receivers). Off by default: a webhook URL must not become a way into the private network.
    public var allowPrivateAddresses = false
    public var userAgent = "Faultline-Webhooks/1"
    /// An HTTP proxy every request goes through (`http://proxy.internal:3128`); `nil`: none.
    /// Proxies named by the environment (`HTTPS_PROXY`, `ALL_PROXY`…) are never used. Through a
    /// proxy, the target's addresses are checked as this machine resolves them, before the
    /// request (the proxy resolves the name again: have it refuse private ranges too), and
    /// the proxy's own address is not checked.
    public var proxy: String?

    public init() {}
}

/// The answer to a request: status, the headers that matter to a sender, and the start of the body.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    /// Header names in lower case; the last value of each.
    public var headers: [String: String]
    /// At most the first 1 KiB of the body.
    public var bodyPrefix: [UInt8]

    public init(status: Int, headers: [String: String] = [:], bodyPrefix: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.bodyPrefix = bodyPrefix
    }
}

/// The HTTP client's one error type. `description` is safe to log: it never holds the URL
/// (a Slack or Teams webhook URL is itself a secret) or a request header.
public struct HTTPClientError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case invalidURL = "invalid_url"
        case refusedAddress = "refused_address"
        case timeout
        case connect
        case tls
        case transfer
    }

    public let code: Code
    /// libcurl's code, when libcurl reported the failure.
    public let curlCode: Int
    public let message: String

    public init(_ code: Code, curlCode: Int = 0, _ message: String) {
        self.code = code
        self.curlCode = curlCode
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// One libcurl easy handle: a blocking HTTP client for one thread.
///
/// Not thread-safe (libcurl's easy handles are not): create one per thread and keep it, so its
/// connections are reused. Its calls block, so they belong on a dedicated thread, never on
/// Swift's cooperative pool.
///
/// ```swift
/// let client = try CurlClient(configuration: .init())
/// let response = try client.post(url: "https://example.com/hook", headers: [("Content-Type", "application/json")], body: body)
/// ```
public final class CurlClient {
    /// Owned: created in `init`, cleaned up in `deinit`.
    private let handle: UnsafeMutableRawPointer
    private let configuration: HTTPClientConfiguration
    private let context: RequestContext
    private let errorBuffer: UnsafeMutablePointer<CChar>

    private static let globalInit: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    public init(configuration: HTTPClientConfiguration) throws(HTTPClientError) {
        guard Self.globalInit, let handle = curl_easy_init() else {
            throw HTTPClientError(.transfer, "libcurl could not be initialised")
        }
        self.handle = handle
        self.configuration = configuration
        self.context = RequestContext(allowPrivate: configuration.allowPrivateAddresses)
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        context.proxied = configuration.proxy != nil
        configure()
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    private func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Options that hold for every request of this handle (curl_easy_reset is never called).
    private func configure() {
        let opaque = Unmanaged.passUnretained(context).toOpaque()
        _ = CCurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = CCurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        _ = CCurl_setopt_long(handle, CURLOPT_MAXREDIRS, 0)
        _ = CCurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = CCurl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        _ = CCurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        _ = CCurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        _ = CCurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(configuration.connectTimeout))
        _ = CCurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(configuration.totalTimeout))
        _ = CCurl_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent)
        // No proxy from the environment (http_proxy, HTTPS_PROXY, ALL_PROXY): only the one
        // configured, whose address the check below then leaves alone (the target's addresses
        // are checked in `post` instead).
        _ = CCurl_setopt_string(handle, CURLOPT_PROXY, configuration.proxy ?? "")
        _ = CCurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = CCurl_setopt_write_function(handle, CURLOPT_WRITEFUNCTION, curlWriteBody)
        _ = CCurl_setopt_pointer(handle, CURLOPT_WRITEDATA, opaque)
        _ = CCurl_setopt_write_function(handle, CURLOPT_HEADERFUNCTION, curlWriteHeader)
        _ = CCurl_setopt_pointer(handle, CURLOPT_HEADERDATA, opaque)
        // Every new connection passes through here, after DNS resolution: the address
        // actually connected to is the one checked.
        _ = CCurl_setopt_opensocket_function(handle, curlOpenSocket)
        _ = CCurl_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, opaque)
        _ = CCurl_setopt_long(handle, CURLOPT_POST, 1)
    }

    /// POSTs `body` to `url` and returns the response, whatever its status.
    ///
    /// - Throws: ``HTTPClientError`` when no response arrived: a refused address, a timeout,
    ///   a connection or TLS failure.
    public func post(url: String, headers: [(String, String)], body: [UInt8]) throws(HTTPClientError) -> HTTPResponse {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            parsed.host?.isEmpty == false
        else { throw HTTPClientError(.invalidURL, "only absolute http and https URLs are allowed") }
        if configuration.proxy != nil, let refusal = WebhookTarget.refusal(url: url, allowPrivate: configuration.allowPrivateAddresses) {
            throw refusal
        }
        context.reset()
        errorBuffer[0] = 0
        var list: UnsafeMutablePointer<curl_slist>?
        // An empty "Expect:" stops libcurl from waiting for 100-continue on larger bodies.
        for (name, value) in headers + [("Expect", "")] {
            let line = value.isEmpty ? "\(name):" : "\(name): \(value)"
            list = curl_slist_append(list, line)
        }
        defer { curl_slist_free_all(list) }
        _ = CCurl_setopt_string(handle, CURLOPT_URL, url)
        _ = CCurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        let code: CURLcode = body.withUnsafeBytes { bytes in
            _ = CCurl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
            _ = CCurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(errorBuffer)))
            let code = curl_easy_perform(handle)
            // The body's memory ends with this closure: libcurl must not keep pointing at it.
            _ = CCurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, nil)
            return code
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            // What the name resolved to stays out of the message (it may reach API callers).
            if context.refused != nil {
                throw HTTPClientError(
                    .refusedAddress, curlCode: Int(code.rawValue), "the host is or resolves to a private, loopback, link-local or reserved address")
            }
            switch code {
            case CURLE_OPERATION_TIMEDOUT: throw HTTPClientError(.timeout, curlCode: Int(code.rawValue), text)
            case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
                throw HTTPClientError(.connect, curlCode: Int(code.rawValue), text)
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE:
                throw HTTPClientError(.tls, curlCode: Int(code.rawValue), text)
            case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
                throw HTTPClientError(.invalidURL, curlCode: Int(code.rawValue), text)
            default: throw HTTPClientError(.transfer, curlCode: Int(code.rawValue), text)
            }
        }
        var status = 0
        _ = CCurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: context.headers, bodyPrefix: context.body)
    }
}

/// What the C callbacks of one request share with the client. Reached from C through an
/// unretained pointer; the client that owns it outlives every request.
final class RequestContext {
    let allowPrivate: Bool
    /// Connections go to the configured proxy, whose address is not checked.
    var proxied = false
    var refused: String?
    var headers: [String: String] = [:]
    var body: [UInt8] = []

    init(allowPrivate: Bool) { self.allowPrivate = allowPrivate }

    func reset() {
        refused = nil
        headers = [:]
        body = []
    }
}

private let curlWriteBody: CCurl_write_callback = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let userdata else { return total }
    let context = Unmanaged<RequestContext>.fromOpaque(userdata).takeUnretainedValue()
    let room = max(0, 1024 - context.body.count)
    if room > 0 {
        let buffer = UnsafeRawBufferPointer(start: pointer, count: min(room, total))
        context.body.append(contentsOf: buffer)
    }
    return total
}

private let curlWriteHeader: CCurl_write_callback = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let userdata else { return total }
    let context = Unmanaged<RequestContext>.fromOpaque(userdata).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: total), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        context.headers = [:]  // a new response (after a 100 Continue): forget the last one's headers
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        context.headers[name] = value
    }
    return total
}

private let curlOpenSocket: CCurl_opensocket_callback = { clientp, _, address in
    guard let clientp, let address else { return -1 }
    let context = Unmanaged<RequestContext>.fromOpaque(clientp).takeUnretainedValue()
    let family = address.pointee.family
    let offset = MemoryLayout<curl_sockaddr>.offset(of: \curl_sockaddr.addr)!
    let socketAddress = UnsafeRawPointer(address).advanced(by: offset)
    let resolved = NetworkAddress(family: family, socketAddress)
    guard let resolved else {
        context.refused = "an address of family \(family)"
        return -1
    }
    if !context.allowPrivate && !context.proxied && resolved.isPrivate {
        context.refused = resolved.description
        return -1
    }
    return socket(family, address.pointee.socktype, address.pointee.protocol)
}
