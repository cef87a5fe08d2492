import Foundation
import Posix
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct DedicatedThreadTests {
    @Test func runsJobsInOrderOnOneThreadOfItsOwn() async throws {
        let thread = DedicatedThread(name: "test-worker")
        let caller = pthread_self()
        let seen = Mutex<[Int]>([])
        let threads = Mutex<Set<UInt>>([])
        for index in 0..<100 {
            thread.submit {
                seen.withLock { $0.append(index) }
                threads.withLock { _ = $0.insert(UInt(pthread_self())) }
            }
        }
        let name = try await thread.run { DedicatedThread.currentName }
        #expect(seen.withLock { $0 } == Array(0..<100))
        #expect(threads.withLock { $0.count } == 1)
        #expect(threads.withLock { !$0.contains(UInt(caller)) })
        #expect(name == "test-worker")
    }

    @Test func propagatesErrorsAndRefusesWorkAfterShutdown() async throws {
        struct Boom: Error {}
        let thread = DedicatedThread(name: "test-errors")
        await #expect(throws: Boom.self) { try await thread.run { throw Boom() } }
        #expect(try await thread.run { 42 } == 42)
        thread.shutdownAndWait()
        await #expect(throws: DedicatedThreadError.self) { try await thread.run { 1 } }
        #expect(thread.submit {} == false)
    }
}

@Suite struct SyscallTests {
    @Test func reportsErrnoAndTheCall() throws {
        let error = #expect(throws: PosixError.self) { try blockingSyscall("close") { close(-1) } }
        #expect(error?.code == EBADF)
        #expect(error?.description.contains("close failed") == true)
    }

    @Test func reportsWouldBlock() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        var byte: UInt8 = 0
        let result = try syscall("read") { read(fds[0], &byte, 1) }
        guard case .wouldBlock = result else {
            Issue.record("expected would-block, got \(result)")
            return
        }
    }
}

@Suite struct SubprocessTests {
    @Test func capturesOutputAndExitStatus() throws {
        let output = NSTemporaryDirectory() + "subprocess-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = try Subprocess.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], outputPath: output)
        #expect(status == 3)
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "out\nerr\n")
        #expect(try Subprocess.run("/bin/sh", ["-c", "kill -9 $$"], outputPath: output) == 128 + 9)
    }

    @Test func doesNotWaitForDaemonsItLeavesBehind() throws {
        let output = NSTemporaryDirectory() + "subprocess-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let started = ContinuousClock.now
        // The backgrounded sleep keeps running after the shell exits, as a server would.
        let status = try Subprocess.run("/bin/sh", ["-c", "sleep 5 & echo started"], outputPath: output)
        #expect(status == 0)
        #expect(ContinuousClock.now - started < .seconds(4))
    }

    @Test func missingProgramIsAnError() {
        #expect(throws: PosixError.self) {
            try Subprocess.run("/nonexistent/program", [], outputPath: "/dev/null")
        }
    }
}

@Suite struct LoopbackTests {
    /// A port is reported in use while a socket listens on it, and free once it is closed.
    @Test func isListeningFollowsAListener() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0 && listen(fd, 4) == 0
            }
        }
        #expect(listening)
        let port = Int(UInt16(bigEndian: address.sin_port))
        #expect(Loopback.isListening(port: port))
        close(fd)
        #expect(!Loopback.isListening(port: port))
        #expect(!Loopback.isListening(port: 0))
    }
}
