import Foundation

/// Encodes rows in COPY's binary format and hands them to the server in large chunks.
///
/// Each field is written as its column's type sends it (`uuid` as 16 bytes, `timestamptz` as
/// microseconds since 2000, integers big-endian), so the server parses no text and the client
/// escapes none: the hot path of ingest. The caller writes every column of the `COPY` column
/// list, in order, with the method of its type; a value of the wrong type is the server's error.
public struct PostgresBinaryCopyWriter {
    private var buffer: [UInt8] = []
    private var rowStart = -1
    private var fieldsInRow = 0
    private let sink: ([UInt8]) throws -> Void
    /// Rows ended so far.
    public private(set) var rowCount = 0

    static let chunkSize = 256 * 1024
    /// `PGCOPY\n\377\r\n\0`, no flags, no header extension.
    static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]
    /// Seconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01 (UTC).
    static let postgresEpoch: Int64 = 946_684_800

    init(sink: @escaping ([UInt8]) throws -> Void) {
        self.sink = sink
        buffer.reserveCapacity(Self.chunkSize + 4096)
        buffer.append(contentsOf: Self.header)
    }

    private mutating func beginField() {
        if rowStart < 0 {
            rowStart = buffer.count
            buffer.append(0)
            buffer.append(0)
        }
        fieldsInRow += 1
    }

    private mutating func null() {
        appendBigEndian(Int32(-1))
    }

    private mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    /// A `text` (or `varchar`) field; `nil` is SQL NULL.
    ///
    /// - Throws: ``PostgresError/Code/invalidParameter`` for text holding a NUL byte, which
    ///   `text` cannot store.
    public mutating func text(_ value: String?) throws {
        try textField(value, versionByte: nil)
    }

    /// A `jsonb` field from its JSON text; `nil` is SQL NULL. The server parses the text as it
    /// parses `jsonb` input.
    ///
    /// - Throws: ``PostgresError/Code/invalidParameter`` for text holding a NUL byte.
    public mutating func jsonb(_ value: String?) throws {
        try textField(value, versionByte: 1)  // jsonb's binary format version
    }

    /// A field of text bytes, after `versionByte` when the type's binary form has one.
    private mutating func textField(_ value: String?, versionByte: UInt8?) throws {
        beginField()
        guard var value else { return null() }
        let ok = value.withUTF8 { bytes -> Bool in
            if let base = bytes.baseAddress, memchr(base, 0, bytes.count) != nil { return false }
            appendBigEndian(Int32(bytes.count + (versionByte == nil ? 0 : 1)))
            if let versionByte { buffer.append(versionByte) }
            buffer.append(contentsOf: bytes)
            return true
        }
        if !ok {
            throw PostgresError(.invalidParameter, "COPY field \(fieldsInRow) of row \(rowCount + 1) contains a NUL byte", operation: "copy")
        }
    }

    /// A `uuid` field.
    public mutating func uuid(_ value: UUID) {
        beginField()
        appendBigEndian(Int32(16))
        withUnsafeBytes(of: value.uuid) { buffer.append(contentsOf: $0) }
    }

    /// A `timestamptz` (or `timestamp`) field, in whole microseconds rounded down, as the text
    /// writer's ``PostgresTimestamp/format(_:)`` gives them; `nil` is SQL NULL.
    public mutating func timestamp(_ value: Date?) {
        beginField()
        guard let value else { return null() }
        let micros = Int64((value.timeIntervalSince1970 * 1_000_000).rounded(.down))
        appendBigEndian(Int32(8))
        appendBigEndian(micros &- Self.postgresEpoch * 1_000_000)
    }

    /// A `smallint` field; `nil` is SQL NULL.
    ///
    /// - Throws: ``PostgresError/Code/invalidParameter`` when the value does not fit.
    public mutating func int16(_ value: Int?) throws {
        try narrowInteger(value, as: Int16.self, "smallint")
    }

    /// An `integer` field; `nil` is SQL NULL.
    ///
    /// - Throws: ``PostgresError/Code/invalidParameter`` when the value does not fit.
    public mutating func int32(_ value: Int?) throws {
        try narrowInteger(value, as: Int32.self, "integer")
    }

    private mutating func narrowInteger<T: FixedWidthInteger>(_ value: Int?, as type: T.Type, _ name: String) throws {
        beginField()
        guard let value else { return null() }
        guard let narrow = T(exactly: value) else {
            throw PostgresError(.invalidParameter, "COPY field \(fieldsInRow) of row \(rowCount + 1): \(value) is out of range for \(name)",
                                operation: "copy")
        }
        appendBigEndian(Int32(MemoryLayout<T>.size))
        appendBigEndian(narrow)
    }

    /// A `bigint` field; `nil` is SQL NULL.
    public mutating func int64(_ value: Int?) {
        beginField()
        guard let value else { return null() }
        appendBigEndian(Int32(8))
        appendBigEndian(Int64(value))
    }

    /// Ends the current row (its field count is written at its start); sends the buffer when it
    /// is large.
    public mutating func endRow() throws {
        if rowStart < 0 {
            rowStart = buffer.count
            buffer.append(0)
            buffer.append(0)
        }
        let count = UInt16(truncatingIfNeeded: fieldsInRow)
        buffer[rowStart] = UInt8(count >> 8)
        buffer[rowStart + 1] = UInt8(count & 0xFF)
        rowStart = -1
        fieldsInRow = 0
        rowCount += 1
        if buffer.count >= Self.chunkSize { try flush() }
    }

    /// Appends the trailer and sends what is left.
    mutating func finish() throws {
        appendBigEndian(Int16(-1))
        try flush()
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try sink(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
