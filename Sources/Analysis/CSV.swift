/// RFC 4180 comma-separated values: reading into rows of fields and writing rows back.
///
/// Quoted fields may hold commas, quotes (doubled) and line breaks; CRLF and LF both end a
/// record. Works on UTF-8 bytes, so multi-byte text passes through untouched.
public enum CSV {
    /// Parses `text` into rows of fields (the header row, if any, is the first row).
    ///
    /// A trailing line break does not produce an empty row; an empty line in the middle gives
    /// a row with one empty field, as RFC 4180 reads it.
    public static func parse(_ text: String) -> [[String]] {
        var text = text
        return text.withUTF8 { bytes -> [[String]] in
            var rows: [[String]] = []
            var row: [String] = []
            var field: [UInt8] = []
            var inQuotes = false
            var index = 0
            let count = bytes.count
            let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), cr = UInt8(13), lf = UInt8(10)
            // Whether anything of the current record has been read (so a final newline ends it cleanly).
            var recordStarted = false
            while index < count {
                let byte = bytes[index]
                if inQuotes {
                    if byte == quote {
                        if index + 1 < count && bytes[index + 1] == quote {
                            field.append(quote)
                            index += 2
                            continue
                        }
                        inQuotes = false
                    } else {
                        field.append(byte)
                    }
                    index += 1
                    continue
                }
                switch byte {
                case quote:
                    inQuotes = true
                    recordStarted = true
                case comma:
                    row.append(String(decoding: field, as: UTF8.self))
                    field.removeAll(keepingCapacity: true)
                    recordStarted = true
                case cr, lf:
                    if byte == cr && index + 1 < count && bytes[index + 1] == lf { index += 1 }
                    row.append(String(decoding: field, as: UTF8.self))
                    field.removeAll(keepingCapacity: true)
                    rows.append(row)
                    row = []
                    recordStarted = false
                default:
                    field.append(byte)
                    recordStarted = true
                }
                index += 1
            }
            if recordStarted || !field.isEmpty || !row.isEmpty {
                row.append(String(decoding: field, as: UTF8.self))
                rows.append(row)
            }
            return rows
        }
    }

    /// Parses `text` whose first row names the columns; returns the header and the data rows.
    public static func parseWithHeader(_ text: String) -> (header: [String], rows: [[String]]) {
        var rows = parse(text)
        guard !rows.isEmpty else { return ([], []) }
        var header = rows.removeFirst()
        // A UTF-8 byte-order mark would otherwise become part of the first column's name.
        if let first = header.first, first.hasPrefix("\u{FEFF}") { header[0] = String(first.dropFirst()) }
        return (header, rows)
    }

    /// One field, quoted only when it holds a comma, quote, CR or LF (or leading/trailing space,
    /// which some readers would trim).
    public static func escape(_ field: String) -> String {
        var needsQuotes = false
        for byte in field.utf8 where byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"") || byte == 10 || byte == 13 {
            needsQuotes = true
            break
        }
        if !needsQuotes, let first = field.utf8.first, let last = field.utf8.last, first == 32 || last == 32 { needsQuotes = true }
        guard needsQuotes else { return field }
        var out = "\""
        for character in field {
            if character == "\"" { out += "\"\"" } else { out.append(character) }
        }
        out += "\""
        return out
    }

    /// One record terminated by CRLF, as RFC 4180 specifies.
    public static func formatRow(_ fields: [String]) -> String {
        fields.map(escape).joined(separator: ",") + "\r\n"
    }

    /// A whole document (header first, if wanted).
    public static func format(_ rows: [[String]]) -> String {
        var out = ""
        for row in rows { out += formatRow(row) }
        return out
    }
}
