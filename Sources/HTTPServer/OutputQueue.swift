import Posix

#if canImport(Glibc)
import Glibc
#endif

/// A connection's unsent bytes as a queue of byte arrays, written with one `sendmsg` (a
/// `writev` that, with `MSG_NOSIGNAL`, cannot raise SIGPIPE on a closed peer).
///
/// A response's head is encoded into a small array of its own and a large body is queued as
/// the very array the handler returned (shared, not copied): a list served from memory costs
/// no copy of its body in user space.
struct OutputQueue {
    /// Bodies up to this size are copied behind their head: one segment instead of two.
    static let inlineBodyLimit = 4096
    /// At most this many segments go to one call (well below `IOV_MAX`).
    static let maxSegmentsPerWrite = 64

    private var segments: [[UInt8]] = []
    /// Bytes of `segments[0]` already written.
    private var offset = 0
    /// Bytes queued and not yet written.
    private(set) var pending = 0

    var isEmpty: Bool { pending == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        segments.append(bytes)
        pending += bytes.count
    }

    /// Writes as much as the socket takes; returns the bytes written, or the call's failure.
    mutating func write(to fd: Int32) throws -> SyscallResultCount {
        guard pending > 0 else { return .written(0) }
        let count = min(segments.count, Self.maxSegmentsPerWrite)
        let result: Int = withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors in
            // A native array's storage does not move while the array lives unmodified, and these
            // stay in `segments`, untouched, for the whole call.
            for index in 0..<count {
                let start = index == 0 ? offset : 0
                segments[index].withUnsafeBytes { bytes in
                    vectors[index] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + start), iov_len: bytes.count - start)
                }
            }
            var message = msghdr()
            message.msg_iov = vectors.baseAddress
            message.msg_iovlen = count
            return Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
        }
        if result < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            if code == EINTR { return .written(0) }
            throw PosixError(code: code, operation: "sendmsg")
        }
        consume(result)
        return .written(result)
    }

    private mutating func consume(_ written: Int) {
        var left = written
        pending -= written
        var done = 0
        while left > 0 {
            let available = segments[done].count - offset
            if left >= available {
                left -= available
                offset = 0
                done += 1
            } else {
                offset += left
                left = 0
            }
        }
        if done > 0 { segments.removeFirst(done) }
    }

    mutating func removeAll() {
        segments.removeAll(keepingCapacity: segments.capacity <= 64)
        offset = 0
        pending = 0
    }
}

enum SyscallResultCount {
    case written(Int)
    case wouldBlock
}
