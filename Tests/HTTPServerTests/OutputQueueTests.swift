import Testing

@testable import HTTPServer

#if canImport(Glibc)
import Glibc
#endif

/// The output queue against a real socket pair with a small send buffer: partial writes that
/// stop inside a segment resume where they stopped, and the peer reads every byte in order.
@Suite struct OutputQueueTests {
    @Test func partialWritesResumeMidSegmentAndDeliverEveryByteInOrder() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { Glibc.close(fds[0]); Glibc.close(fds[1]) }
        var small: Int32 = 4096
        _ = setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)

        // Heads, large shared bodies and many small segments (more than one call takes).
        var expected: [UInt8] = []
        var queue = OutputQueue()
        for round in 0..<3 {
            let head = Array("HTTP/1.1 200 OK\r\nround: \(round)\r\n\r\n".utf8)
            let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) }
            queue.append(head)
            queue.append(body)
            queue.append([])  // ignored
            expected += head + body
        }
        for index in 0..<(OutputQueue.maxSegmentsPerWrite + 10) {
            let piece = [UInt8(truncatingIfNeeded: index), 0x0A]
            queue.append(piece)
            expected += piece
        }
        #expect(queue.pending == expected.count)

        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 7_001)  // odd sizes: reads end mid-segment
        var stalls = 0
        var partial = 0
        while !queue.isEmpty {
            // Write until the socket is full, then let the peer read a little.
            while !queue.isEmpty {
                let before = queue.pending
                guard case .written(let count) = try queue.write(to: fds[0]) else {
                    stalls += 1
                    break
                }
                #expect(count > 0)
                if count < before { partial += 1 }
            }
            let count = read(fds[1], &buffer, buffer.count)
            if count > 0 { received += buffer[0..<count] }
        }
        while received.count < expected.count {
            let count = read(fds[1], &buffer, buffer.count)
            guard count > 0 else { break }
            received += buffer[0..<count]
        }
        #expect(stalls > 0 && partial > 0, "the small buffer must have made writes partial and blocked")
        #expect(received.count == expected.count)
        #expect(received == expected)
        #expect(queue.pending == 0)
    }

    @Test func aClosedPeerIsAnErrorNotASignal() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { Glibc.close(fds[0]) }
        Glibc.close(fds[1])
        var queue = OutputQueue()
        queue.append(Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
        #expect(throws: (any Error).self) { _ = try queue.write(to: fds[0]) }
    }
}
