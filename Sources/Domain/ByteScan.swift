/// Byte tests on eight bytes at once (SWAR), for scanners over UTF-8.
///
/// Each returns `0x80` in every byte position that matches, and possibly in positions above a
/// match (a borrow travels up from it), never below: the lowest flag marks the first match
/// exactly (`trailingZeroBitCount >> 3` is its offset), and any flag means a match.
public enum ByteScan {
    /// Eight bytes from `raw + offset`, the first in the lowest position.
    @inlinable @inline(__always)
    public static func load(_ raw: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Flags of the bytes below `bound` (at most 0x80).
    @inlinable @inline(__always)
    public static func below(_ chunk: UInt64, _ bound: UInt8) -> UInt64 {
        (chunk &- 0x0101_0101_0101_0101 &* UInt64(bound)) & ~chunk & 0x8080_8080_8080_8080
    }

    /// Flags of the bytes equal to `byte`.
    @inlinable @inline(__always)
    public static func equal(_ chunk: UInt64, _ byte: UInt8) -> UInt64 {
        below(chunk ^ (0x0101_0101_0101_0101 &* UInt64(byte)), 1)
    }
}

/// Whether `bytes` are well-formed UTF-8. ASCII, the usual case, is passed over eight bytes at a
/// time without building anything; from the first byte above 0x7F on, the standard library
/// validates (everything before it is whole ASCII characters, so it starts on a boundary).
public func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var index = 0
    if let base = bytes.baseAddress {
        let raw = UnsafeRawPointer(base)
        while index + 8 <= bytes.count, ByteScan.load(raw, index) & 0x8080_8080_8080_8080 == 0 { index += 8 }
    }
    while index < bytes.count, bytes[index] < 0x80 { index += 1 }
    guard index < bytes.count else { return true }
    return String(validating: UnsafeBufferPointer(rebasing: bytes[index...]), as: UTF8.self) != nil
}
