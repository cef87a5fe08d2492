#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: the `errno` it left and the name of the call.
public struct PosixError: Error, Equatable, CustomStringConvertible {
    /// The `errno` value.
    public let code: Int32
    /// The system call that failed, e.g. `"accept4"`.
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var description: String {
        "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
    }
}

/// What a non-blocking system call gave back.
public enum SyscallResult<Value: Sendable>: Sendable {
    case value(Value)
    /// The call would have blocked (`EAGAIN`/`EWOULDBLOCK`); try again when the descriptor is ready.
    case wouldBlock
}

/// Runs a system call that returns `-1` and sets `errno` on failure.
///
/// Retries on `EINTR`, reports `EAGAIN`/`EWOULDBLOCK` as ``SyscallResult/wouldBlock`` and throws
/// ``PosixError`` for everything else.
///
/// ```swift
/// let result = try syscall("read") { read(fd, buffer, count) }
/// ```
@inlinable
public func syscall<T: FixedWidthInteger & Sendable>(
    _ operation: String, _ body: () -> T
) throws -> SyscallResult<T> {
    while true {
        let result = body()
        if result != -1 { return .value(result) }
        let code = errno
        switch code {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        default: throw PosixError(code: code, operation: operation)
        }
    }
}

/// Runs a blocking system call: like ``syscall(_:_:)`` but would-block is an error too.
@inlinable
public func blockingSyscall<T: FixedWidthInteger & Sendable>(
    _ operation: String, _ body: () -> T
) throws -> T {
    switch try syscall(operation, body) {
    case .value(let value): return value
    case .wouldBlock: throw PosixError(code: EAGAIN, operation: operation)
    }
}
