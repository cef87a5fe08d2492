import Foundation

/// A value bound to a statement parameter (`$1`, `$2`, …).
///
/// Values travel as parameters, never as SQL text: a hostile string is just data.
public enum PostgresValue: Sendable, Hashable {
    case null
    case text(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    /// Sent in binary format, for `bytea`.
    case bytes([UInt8])
    /// Sent as an RFC 3339 UTC timestamp with microseconds, for `timestamptz`.
    case timestamp(Date)
    /// JSON text, for `json`/`jsonb` parameters.
    case json(String)
    case uuid(UUID)

    public static func optional(_ value: String?) -> PostgresValue { value.map { .text($0) } ?? .null }
    public static func optional(_ value: Int?) -> PostgresValue { value.map { .int(Int64($0)) } ?? .null }
    public static func optional(_ value: Date?) -> PostgresValue { value.map { .timestamp($0) } ?? .null }
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension PostgresValue {
    /// The bytes sent to libpq and whether they are binary; `nil` bytes mean SQL NULL.
    ///
    /// - Throws: ``PostgresError/Code/invalidParameter`` for text holding a NUL byte, which
    ///   PostgreSQL text cannot store (libpq would silently cut the text at it).
    func encoded(index: Int) throws -> (bytes: [UInt8]?, binary: Bool) {
        func text(_ string: String) throws -> [UInt8] {
            var bytes = Array(string.utf8)
            if bytes.contains(0) {
                throw PostgresError(
                    .invalidParameter, "parameter $\(index + 1) contains a NUL byte, which PostgreSQL text cannot hold",
                    operation: "bind")
            }
            bytes.append(0)
            return bytes
        }
        switch self {
        case .null: return (nil, false)
        case .text(let value), .json(let value): return (try text(value), false)
        case .int(let value): return (try text(String(value)), false)
        case .double(let value):
            let string = value.isNaN ? "NaN" : value.isInfinite ? (value > 0 ? "Infinity" : "-Infinity") : "\(value)"
            return (try text(string), false)
        case .bool(let value): return (try text(value ? "t" : "f"), false)
        case .bytes(let value): return (value, true)
        case .timestamp(let value): return (try text(PostgresTimestamp.format(value)), false)
        case .uuid(let value): return (try text(value.uuidString.lowercased()), false)
        }
    }
}

/// Formats and parses the timestamps PostgreSQL exchanges in text format.
public enum PostgresTimestamp {
    /// `2026-11-22 04:50:32.123456+00`, microseconds, always UTC.
    public static func format(_ date: Date) -> String {
        var bytes: [UInt8] = []
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends ``format(_:)``'s text to a byte buffer without intermediate strings.
    public static func append(_ date: Date, to out: inout [UInt8]) {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        var days = micros >= 0 ? micros / 86_400_000_000 : (micros - 86_399_999_999) / 86_400_000_000
        let inDay = micros - days * 86_400_000_000
        // civil_from_days (Howard Hinnant).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func put(_ value: Int64, _ width: Int) {
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            var v = value
            while divisor > 0 {
                out.append(UInt8(48 + (v / divisor) % 10))
                v %= divisor
                divisor /= 10
            }
        }
        put(year, 4); out.append(45); put(month, 2); out.append(45); put(day, 2); out.append(32)
        put(inDay / 3_600_000_000, 2); out.append(58); put(inDay / 60_000_000 % 60, 2); out.append(58)
        put(inDay / 1_000_000 % 60, 2); out.append(46); put(inDay % 1_000_000, 6)
        out.append(43); out.append(48); out.append(48)
    }

    /// Parses `timestamptz` output in the ISO style (`2026-11-22 04:50:32.5+00`), any offset.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 19, let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            guard let hours = number(index + 1..<index + 3) else { return nil }
            var minutes = 0
            if bytes.count >= index + 6, bytes[index + 3] == UInt8(ascii: ":") {
                minutes = number(index + 4..<index + 6) ?? 0
            }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epoch = timegm(&parts)
        return Date(timeIntervalSince1970: Double(epoch - offsetSeconds) + fraction)
    }
}
