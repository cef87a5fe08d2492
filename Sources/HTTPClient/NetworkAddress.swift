import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, to tell public addresses from private, loopback and link-local ones.
public enum NetworkAddress: Sendable, Equatable, CustomStringConvertible {
    case v4(UInt8, UInt8, UInt8, UInt8)
    case v6([UInt8])

    /// Reads a `sockaddr_in` or `sockaddr_in6`; `nil` for other families.
    init?(family: Int32, _ socketAddress: UnsafeRawPointer) {
        switch family {
        case AF_INET:
            let address = socketAddress.loadUnaligned(as: sockaddr_in.self)
            var raw = address.sin_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case AF_INET6:
            let address = socketAddress.loadUnaligned(as: sockaddr_in6.self)
            var raw = address.sin6_addr
            self = .v6(withUnsafeBytes(of: &raw) { Array($0) })
        default:
            return nil
        }
    }

    /// Parses a numeric address (`10.0.0.1`, `fe80::1`).
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let bytes = withUnsafeBytes(of: &v4) { Array($0) }
            self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            return nil
        }
    }

    /// Not publicly routable: unspecified, "this network", private (RFC 1918, unique local),
    /// shared (CGNAT), loopback, link-local, benchmarking, multicast and reserved ranges, and
    /// IPv6 forms that carry such an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo), and
    /// local-use NAT64 and documentation prefixes.
    public var isPrivate: Bool {
        switch self {
        case let .v4(a, b, _, _):
            return a == 0 || a == 10 || a == 127 || a >= 224  // this network, private, loopback, multicast, reserved
                || (a == 100 && b & 0xC0 == 64)  // 100.64.0.0/10 shared address space
                || (a == 169 && b == 254)  // link-local (cloud metadata lives here)
                || (a == 172 && b & 0xF0 == 16)  // 172.16.0.0/12
                || (a == 192 && b == 168)
                || (a == 192 && b == 0 && self.thirdByte == 0)  // 192.0.0.0/24 protocol assignments
                || (a == 198 && b & 0xFE == 18)  // 198.18.0.0/15 benchmarking
        case let .v6(bytes):
            let prefix12 = bytes[0..<12]
            if prefix12.allSatisfy({ $0 == 0 }) {
                // ::, ::1 and the deprecated IPv4-compatible form.
                if bytes[12..<15].allSatisfy({ $0 == 0 }) && bytes[15] <= 1 { return true }
                return NetworkAddress.v4(bytes[12], bytes[13], bytes[14], bytes[15]).isPrivate
            }
            if prefix12.elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {  // ::ffff:a.b.c.d
                return NetworkAddress.v4(bytes[12], bytes[13], bytes[14], bytes[15]).isPrivate
            }
            if prefix12.elementsEqual([0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]) {  // 64:ff9b::/96 NAT64
                return NetworkAddress.v4(bytes[12], bytes[13], bytes[14], bytes[15]).isPrivate
            }
            if bytes[0..<6].elementsEqual([0, 0x64, 0xFF, 0x9B, 0, 0x01]) { return true }  // 64:ff9b:1::/48 local-use NAT64
            if bytes[0] == 0x20 && bytes[1] == 0x02 {  // 2002::/16 6to4: the IPv4 address follows the prefix
                return NetworkAddress.v4(bytes[2], bytes[3], bytes[4], bytes[5]).isPrivate
            }
            if bytes[0..<4].elementsEqual([0x20, 0x01, 0, 0]) {  // 2001::/32 Teredo: the client's IPv4, inverted, at the end
                return NetworkAddress.v4(~bytes[12], ~bytes[13], ~bytes[14], ~bytes[15]).isPrivate
                    || NetworkAddress.v4(bytes[4], bytes[5], bytes[6], bytes[7]).isPrivate
            }
            if bytes[0..<4].elementsEqual([0x20, 0x01, 0x0D, 0xB8]) { return true }  // 2001:db8::/32 documentation
            return bytes[0] & 0xFE == 0xFC  // fc00::/7 unique local
                || (bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80)  // fe80::/10 link-local
                || (bytes[0] == 0xFE && bytes[1] & 0xC0 == 0xC0)  // fec0::/10 old site-local
                || bytes[0] == 0xFF  // multicast
        }
    }

    private var thirdByte: UInt8 {
        if case let .v4(_, _, c, _) = self { return c }
        return 0
    }

    public var description: String {
        switch self {
        case let .v4(a, b, c, d): return "\(a).\(b).\(c).\(d)"
        case let .v6(bytes):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count)) != nil else { return "an IPv6 address" }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}

/// Where a webhook may be sent, checked before any request: the host's addresses as this
/// machine resolves them.
public enum WebhookTarget {
    /// Why `url` may not be posted to, or `nil` when it may. The refusal never says what a name
    /// resolved to: an API caller must not learn the private network's layout from it.
    ///
    /// Blocks while the name is resolved (`getaddrinfo`): call it off Swift's cooperative pool.
    public static func refusal(url: String, allowPrivate: Bool) -> HTTPClientError? {
        guard let parsed = URLParts(url) else {
            return HTTPClientError(.invalidURL, "only absolute http and https URLs are allowed")
        }
        if allowPrivate { return nil }
        let addresses: [NetworkAddress]
        if let literal = NetworkAddress(parsed.host) {
            addresses = [literal]
        } else {
            guard let resolved = resolve(parsed.host), !resolved.isEmpty else {
                return HTTPClientError(.connect, "the host name does not resolve")
            }
            addresses = resolved
        }
        if addresses.contains(where: \.isPrivate) {
            return HTTPClientError(.refusedAddress, "the host is or resolves to a private, loopback, link-local or reserved address")
        }
        return nil
    }

    /// Every address `host` resolves to, or `nil` when it does not resolve.
    static func resolve(_ host: String) -> [NetworkAddress]? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return nil }
        defer { freeaddrinfo(list) }
        var addresses: [NetworkAddress] = []
        var entry = list
        while let current = entry {
            if let address = current.pointee.ai_addr,
                let parsed = NetworkAddress(family: current.pointee.ai_family, UnsafeRawPointer(address)) {
                addresses.append(parsed)
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }
}

/// The scheme and host of an absolute http(s) URL; IPv6 literals without their brackets.
struct URLParts {
    var scheme: String
    var host: String

    init?(_ url: String) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", var host = components.host, !host.isEmpty
        else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.scheme = scheme
        self.host = host
    }
}
