import CLinuxShims
import Logging
import Posix

#if canImport(Glibc)
import Glibc
#endif

/// The listening socket of one server run. Owned by the accepting event loop, which closes it.
struct Listener: Sendable {
    let fd: Int32
    let port: Int

    init(host: String, port: Int, backlog: Int) throws {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else { throw HTTPServerError.badAddress(host) }
        defer { freeaddrinfo(list) }

        let fd = try blockingSyscall("socket") {
            socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do {
            var one: Int32 = 1
            _ = try blockingSyscall("setsockopt SO_REUSEADDR") {
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            _ = try blockingSyscall("bind") { bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) }
            _ = try blockingSyscall("listen") { listen(fd, Int32(backlog)) }
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = try withUnsafeMutablePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    try blockingSyscall("getsockname") { getsockname(fd, address, &length) }
                }
            }
            self.port = socketAddressPort(address)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
    }
}

/// One event loop's epoll instance and wake-up eventfd; the loop closes both when it ends.
struct LoopDescriptors: Sendable {
    let epollFD: Int32
    let wakeFD: Int32

    init() throws {
        epollFD = try blockingSyscall("epoll_create") { CLinuxShims_epoll_create() }
        do {
            wakeFD = try blockingSyscall("eventfd") { CLinuxShims_eventfd(0) }
        } catch {
            Glibc.close(epollFD)
            throw error
        }
    }

    func close() {
        Glibc.close(epollFD)
        Glibc.close(wakeFD)
    }
}

/// Makes the loop's `epoll_wait` return.
func wake(_ eventFD: Int32) {
    var one: UInt64 = 1
    // Only fails when the counter is about to overflow, and then the loop is awake anyway.
    _ = write(eventFD, &one, 8)
}

/// Raises the soft limit of open descriptors to the hard limit: each connection needs one.
func raiseOpenFileLimit(logger: Logger) {
    var limit = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &limit) == 0 else { return }
    guard limit.rlim_cur < limit.rlim_max else { return }
    let old = limit.rlim_cur
    limit.rlim_cur = limit.rlim_max
    if setrlimit(resource, &limit) == 0 {
        logger.debug("raised the open file limit", metadata: ["from": "\(old)", "to": "\(limit.rlim_max)"])
    }
}

func socketAddressPort(_ address: sockaddr_storage) -> Int {
    var address = address
    return withUnsafePointer(to: &address) { pointer in
        switch Int32(pointer.pointee.ss_family) {
        case AF_INET:
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        case AF_INET6:
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
        default: 0
        }
    }
}

/// `"127.0.0.1:5000"` or `"[::1]:5000"`.
func socketAddressText(_ address: sockaddr_storage) -> String {
    var address = address
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    let family = Int32(address.ss_family)
    let ok: Bool = withUnsafePointer(to: &address) { pointer in
        switch family {
        case AF_INET:
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                withUnsafePointer(to: sin.pointee.sin_addr) { inet_ntop(AF_INET, $0, &text, socklen_t(text.count)) != nil }
            }
        case AF_INET6:
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                withUnsafePointer(to: sin6.pointee.sin6_addr) { inet_ntop(AF_INET6, $0, &text, socklen_t(text.count)) != nil }
            }
        default: false
        }
    }
    guard ok else { return "unknown" }
    let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    let port = socketAddressPort(address)
    return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
}

/// The value of an HTTP `Date` header, recomputed at most once a second.
struct DateCache {
    private var second: time_t = 0
    private var text: [UInt8] = []

    mutating func current() -> [UInt8] {
        let now = time(nil)
        if now != second || text.isEmpty {
            second = now
            var parts = tm()
            var seconds = now
            gmtime_r(&seconds, &parts)
            let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
            let string = "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
            text = Array(string.utf8)
        }
        return text
    }
}
