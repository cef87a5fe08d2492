import Foundation

/// Hashes that are the same in every process, on every replica, after every restart (Swift's
/// `Hasher` is seeded per process, so it cannot be used for fingerprints or derived ids).
public enum StableHash {
    /// 64-bit FNV-1a.
    public static func fnv1a64(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// 128 bits from two differently seeded FNV-1a passes, mixed (good spread, not cryptographic).
    public static func hash128(_ text: String) -> (UInt64, UInt64) {
        let bytes = Array(text.utf8)
        return (mix(fnv1a64(bytes)), mix(fnv1a64(bytes, seed: 0x6C62_272E_07BB_0142)))
    }

    /// 64-bit FNV-1a of a string's UTF-8, read in place.
    public static func fnv1a64(_ text: String, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var text = text
        return text.withUTF8 { fnv1a64($0, seed: seed) }
    }

    /// 16 lowercase hex digits of a 64-bit hash of `text`.
    public static func hex64(_ text: String) -> String {
        hex(mix(fnv1a64(text)))
    }

    /// `hex64(parts.joined(separator: "\u{1F}"))`, without building the joined string.
    public static func hex64(joining parts: String...) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for (index, part) in parts.enumerated() {
            if index > 0 { hash = fnv1a64(CollectionOfOne(0x1F), seed: hash) }
            hash = fnv1a64(part, seed: hash)
        }
        return hex(mix(hash))
    }

    /// 16 lowercase hex digits.
    static func hex(_ value: UInt64) -> String {
        // Written in place: one small string, nothing allocated.
        String(unsafeUninitializedCapacity: 16) { buffer in
            let digits: StaticString = "0123456789abcdef"
            for index in 0..<16 {
                buffer[index] = digits.utf8Start[Int(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF]
            }
            return 16
        }
    }

    /// A version-8 (RFC 9562, custom) UUID derived from `name`: the same name, the same UUID.
    public static func uuid(_ name: String) -> UUID {
        let (high, low) = hash128(name)
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(index)))
            bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(index)))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 9562 variant
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    /// splitmix64's finaliser: spreads FNV's weak low bits.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// RFC 3339 timestamps (`2026-11-22T04:50:32.123Z`, `…+02:00`).
public enum RFC3339 {
    /// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z: the years four digits can write.
    static let minimumSeconds: Double = -62_167_219_200
    static let maximumSeconds: Double = 253_402_300_800

    /// `2026-11-22T04:50:32.123Z` (UTC, milliseconds).
    ///
    /// Total for any `Date`: a time outside the years 0000–9999 (or not finite, which input can
    /// make) is written as seconds since 1970 instead, e.g. `1e+21 s since 1970`.
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite, seconds >= minimumSeconds, seconds < maximumSeconds else {
            return "\(seconds) s since 1970"
        }
        let millis = Int((seconds * 1000).rounded(.down))
        var days = millis >= 0 ? millis / 86_400_000 : (millis - 86_399_999) / 86_400_000
        let ms = millis - days * 86_400_000
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
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func put(_ value: Int, _ width: Int) {
            var digits = [UInt8](repeating: 48, count: width)
            var v = value
            for i in stride(from: width - 1, through: 0, by: -1) {
                digits[i] = UInt8(48 + v % 10)
                v /= 10
            }
            out += digits
        }
        put(year, 4); out.append(45); put(month, 2); out.append(45); put(day, 2); out.append(84)
        put(ms / 3_600_000, 2); out.append(58); put(ms / 60_000 % 60, 2); out.append(58); put(ms / 1000 % 60, 2)
        out.append(46); put(ms % 1000, 3); out.append(90)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses an RFC 3339 time; a space may stand for the `T`.
    ///
    /// - Parameter zoneRequired: `false` reads a time without `Z` or an offset as UTC (the form
    ///   of many evaluation data sets: `2014-04-01 00:05:00`).
    public static func parse(_ text: String, zoneRequired: Bool = true) -> Date? {
        let b = Array(text.utf8)
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var value = 0
            for i in start..<start + count {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                value = value * 10 + Int(b[i] - 48)
            }
            return value
        }
        guard b.count >= 19, let year = digits(0, 4), b[4] == UInt8(ascii: "-"), let month = digits(5, 2),
            b[7] == UInt8(ascii: "-"), let day = digits(8, 2),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
            let hour = digits(11, 2), b[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
            b[16] == UInt8(ascii: ":"), let second = digits(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offset = 0
        if i == b.count {
            guard !zoneRequired else { return nil }
        } else {
            switch b[i] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                guard i + 1 == b.count else { return nil }
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard i + 6 == b.count, let oh = digits(i + 1, 2), b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2),
                    oh < 24, om < 60
                else { return nil }
                offset = (b[i] == UInt8(ascii: "-") ? -1 : 1) * (oh * 3600 + om * 60)
            default: return nil
            }
        }
        // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}

extension String {
    /// The first `limit` UTF-8 bytes at most, ended at a character's first byte (continuation
    /// bytes are 10xxxxxx), so no character is split; the whole text when it is short enough.
    public func prefix(utf8Bytes limit: Int) -> Substring {
        let utf8 = self.utf8
        guard utf8.count > limit else { return self[...] }
        var end = utf8.index(utf8.startIndex, offsetBy: limit)
        while end > utf8.startIndex && utf8[end] & 0xC0 == 0x80 { end = utf8.index(before: end) }
        return self[..<end]
    }

    /// The text with every NUL replaced by U+FFFD, byte by byte: PostgreSQL text cannot hold
    /// NUL. (`replacingOccurrences(of: "\u{0}", …)` compares characters, and a NUL followed by a
    /// combining mark is one character that is not "\u{0}": it let NUL through.)
    public var replacingNUL: String {
        var copy = self
        // On the contiguous bytes (memchr), not through the UTF-8 view's iterator.
        guard copy.withUTF8({ bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }) else { return self }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count + 8)
        for byte in utf8 {
            if byte == 0 { bytes += [0xEF, 0xBF, 0xBD] } else { bytes.append(byte) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Int {
    /// `value` rounded toward zero and clamped to `Int`'s range; `nan` is 0. For numbers that
    /// input can make, where `Int(_:)` would trap.
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9.223_372_036_854_775_807e18 {
            self = .max
        } else if value <= -9.223_372_036_854_775_808e18 {
            self = .min
        } else {
            self = Int(value)
        }
    }
}

extension UUID {
    /// A UUID from its 36-character hyphenated hexadecimal text (`8-4-4-4-12`, either case), and
    /// nothing else. `UUID(uuidString:)` also reads a sign, a space or `0x` inside a group
    /// (`+f1c…` as `0f1c…`), so two different event ids could name one event and the second be
    /// dropped as a duplicate; and its `sscanf` cost more than the rest of an event's identity
    /// on the ingest path.
    public init?(hyphenated text: String) {
        var text = text
        let parsed: uuid_t? = text.withUTF8 { bytes -> uuid_t? in
            guard bytes.count == 36 else { return nil }
            var out: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let ok = withUnsafeMutableBytes(of: &out) { raw -> Bool in
                var position = 0
                for index in 0..<16 {
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        guard bytes[position] == UInt8(ascii: "-") else { return false }
                        position += 1
                    }
                    guard let high = Self.hexValue(bytes[position]), let low = Self.hexValue(bytes[position + 1]) else { return false }
                    raw[index] = high << 4 | low
                    position += 2
                }
                return true
            }
            return ok ? out : nil
        }
        guard let parsed else { return nil }
        self.init(uuid: parsed)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
