import Foundation

/// Encodes rows in COPY's text format and hands them to the server in large chunks.
///
/// Escaping works on bytes, not characters: the hot path of bulk loads.
public struct PostgresCopyWriter {
    private var buffer: [UInt8] = []
    private var fieldsInRow = 0
    private let sink: ([UInt8]) throws -> Void
    /// Rows ended so far.
    public private(set) var rowCount = 0

    static let chunkSize = 256 * 1024

    init(sink: @escaping ([UInt8]) throws -> Void) {
        self.sink = sink
        buffer.reserveCapacity(Self.chunkSize + 4096)
    }

    private mutating func separator() {
        if fieldsInRow > 0 { buffer.append(UInt8(ascii: "\t")) }
        fieldsInRow += 1
    }

    /// Appends a text field (`nil` is SQL NULL).
    ///
    /// - Throws: ``PostgresError/Code/invalidParameter`` for text holding a NUL byte.
    public mutating func field(_ value: String?) throws {
        separator()
        guard var value else {
            buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
            return
        }
        let ok = value.withUTF8 { utf8 -> Bool in
            // The runs between bytes that need escaping are copied whole.
            var start = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x0E || byte == UInt8(ascii: "\\") else { continue }
                let escaped: UInt8
                switch byte {
                case 0: return false
                case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
                case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
                case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
                case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
                default: continue
                }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                buffer.append(UInt8(ascii: "\\"))
                buffer.append(escaped)
                start = index + 1
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
            return true
        }
        if !ok {
            throw PostgresError(.invalidParameter, "COPY field \(fieldsInRow) of row \(rowCount + 1) contains a NUL byte", operation: "copy")
        }
    }

    /// Appends an integer field.
    public mutating func field(_ value: Int?) {
        separator()
        guard let value else {
            buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
            return
        }
        buffer.append(contentsOf: String(value).utf8)
    }

    /// Appends a timestamp field (UTC, microseconds), formatted straight into the buffer.
    public mutating func field(_ value: Date?) {
        separator()
        guard let value else {
            buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
            return
        }
        PostgresTimestamp.append(value, to: &buffer)
    }

    /// Appends a UUID field (lower-case hex).
    public mutating func field(_ value: UUID) {
        separator()
        let hex = Self.hexDigits
        withUnsafeBytes(of: value.uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { buffer.append(UInt8(ascii: "-")) }
                buffer.append(hex[Int(byte >> 4)])
                buffer.append(hex[Int(byte & 0x0F)])
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Ends the current row; sends the buffer when it is large.
    public mutating func endRow() throws {
        buffer.append(UInt8(ascii: "\n"))
        fieldsInRow = 0
        rowCount += 1
        if buffer.count >= Self.chunkSize { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try sink(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
