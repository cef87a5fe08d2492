import Foundation

/// The rows a statement returned, copied out of libpq in text format.
public struct PostgresRows: Sendable, Sequence {
    public let columns: [String]
    public let rows: [PostgresRow]
    /// Rows inserted, updated, deleted or copied, as the command tag says (0 when it says none).
    public let affectedRows: Int

    public init(columns: [String], rows: [PostgresRow], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    public var count: Int { rows.count }
    public var first: PostgresRow? { rows.first }

    /// The first row of a statement that always returns one (`RETURNING`, an aggregate): a
    /// decoding error rather than a trap when it returned none (a trigger, a rule, a changed
    /// statement), so one request or run fails and the process goes on.
    public func one() throws -> PostgresRow {
        guard let row = rows.first else {
            throw PostgresError(.decoding, "the statement returned no row", operation: "decode")
        }
        return row
    }
    public func makeIterator() -> IndexingIterator<[PostgresRow]> { rows.makeIterator() }
}

/// One row: text values by column index or name.
public struct PostgresRow: Sendable {
    public let values: [String?]
    let columns: [String]

    public init(columns: [String], values: [String?]) {
        self.columns = columns
        self.values = values
    }

    private func index(_ name: String) throws -> Int {
        guard let index = columns.firstIndex(of: name) else {
            throw PostgresError(.decoding, "no column named \(name)", operation: "decode")
        }
        return index
    }

    private func required(_ index: Int) throws -> String {
        guard index < values.count else {
            throw PostgresError(.decoding, "no column at index \(index)", operation: "decode")
        }
        guard let value = values[index] else {
            throw PostgresError(.decoding, "column \(columns[index]) is NULL", operation: "decode")
        }
        return value
    }

    public func isNull(_ index: Int) -> Bool { index >= values.count || values[index] == nil }

    public func string(_ index: Int) throws -> String { try required(index) }
    public func string(_ name: String) throws -> String { try string(index(name)) }
    public func optionalString(_ index: Int) -> String? { index < values.count ? values[index] : nil }
    public func optionalString(_ name: String) throws -> String? { optionalString(try index(name)) }

    public func int(_ index: Int) throws -> Int {
        let text = try required(index)
        guard let value = Int(text) else {
            throw PostgresError(.decoding, "column \(columns[index]) is not an integer", operation: "decode")
        }
        return value
    }
    public func int(_ name: String) throws -> Int { try int(index(name)) }

    public func double(_ index: Int) throws -> Double {
        let text = try required(index)
        guard let value = Double(text) else {
            throw PostgresError(.decoding, "column \(columns[index]) is not a number", operation: "decode")
        }
        return value
    }
    public func double(_ name: String) throws -> Double { try double(index(name)) }

    public func bool(_ index: Int) throws -> Bool {
        switch try required(index) {
        case "t": return true
        case "f": return false
        default: throw PostgresError(.decoding, "column \(columns[index]) is not a boolean", operation: "decode")
        }
    }
    public func bool(_ name: String) throws -> Bool { try bool(index(name)) }

    public func date(_ index: Int) throws -> Date {
        guard let date = PostgresTimestamp.parse(try required(index)) else {
            throw PostgresError(.decoding, "column \(columns[index]) is not a timestamp", operation: "decode")
        }
        return date
    }
    public func date(_ name: String) throws -> Date { try date(index(name)) }

    /// A `bytea` column (text format `\x…` hex).
    public func bytes(_ index: Int) throws -> [UInt8] {
        let text = Array(try required(index).utf8)
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), text.count % 2 == 0 else {
            throw PostgresError(.decoding, "column \(columns[index]) is not bytea hex", operation: "decode")
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 2 - 1)
        var i = 2
        while i < text.count {
            guard let high = nibble(text[i]), let low = nibble(text[i + 1]) else {
                throw PostgresError(.decoding, "column \(columns[index]) is not bytea hex", operation: "decode")
            }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }
    public func bytes(_ name: String) throws -> [UInt8] { try bytes(index(name)) }
    /// A one-dimensional integer array column (`int[]`/`bigint[]` in text form, `{1,-2,3}`),
    /// without NULL elements.
    public func integers(_ index: Int) throws -> [Int] {
        let text = try required(index)
        let invalid = PostgresError(.decoding, "column \(columns[index]) is not an integer array", operation: "decode")
        var values: [Int] = []
        var value = 0
        var negative = false
        var digits = 0
        var open = false
        var closed = false
        for byte in text.utf8 {
            guard !closed else { throw invalid }
            switch byte {
            case UInt8(ascii: "{") where !open:
                open = true
            case UInt8(ascii: "0")...UInt8(ascii: "9") where open:
                let (times, overflowed) = value.multipliedReportingOverflow(by: 10)
                let (sum, carried) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                guard !overflowed, !carried else { throw invalid }
                value = sum
                digits += 1
            case UInt8(ascii: "-") where open && digits == 0 && !negative:
                negative = true
            case UInt8(ascii: "}") where open && digits == 0 && !negative && values.isEmpty:
                closed = true
            case UInt8(ascii: ","), UInt8(ascii: "}"):
                guard open, digits > 0 else { throw invalid }
                values.append(negative ? -value : value)
                (value, negative, digits) = (0, false, 0)
                closed = byte == UInt8(ascii: "}")
            default:
                throw invalid
            }
        }
        guard closed else { throw invalid }
        return values
    }
    public func integers(_ name: String) throws -> [Int] { try integers(index(name)) }
}

