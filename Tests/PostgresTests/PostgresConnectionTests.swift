import Foundation
import TestSupport
import Postgres
import Testing

@Suite struct ParameterTests {
    static let hostile = [
        "'; DROP TABLE victims; --", "O'Reilly", "back\\slash\\\\", "\"double quoted\"", "$1 $2 ?", "tab\tnew\nline\rreturn",
        "\\N", "\\x00", "emoji 😀 and ünïcödé and 中文", "\u{7F}\u{1}\u{1F}", "", " ", "%s%n", "E'\\''",
    ]

    @Test func hostileStringsAreDataNotSQL() throws {
        let connection = try TestDatabase.connect()
        let table = TestDatabase.table("victims")
        try connection.execute("CREATE TABLE \(table) (id serial PRIMARY KEY, value text)")
        for value in Self.hostile {
            try connection.query("INSERT INTO \(table) (value) VALUES ($1)", [.text(value)])
        }
        let rows = try connection.query("SELECT value FROM \(table) ORDER BY id")
        #expect(try rows.rows.map { try $0.string(0) } == Self.hostile)
        // Looking a value up by parameter finds exactly that row.
        let found = try connection.query("SELECT count(*) FROM \(table) WHERE value = $1", [.text("'; DROP TABLE victims; --")])
        #expect(try found.first?.int(0) == 1)
    }

    @Test func nulIsRefusedCleanlyAndTheConnectionStaysUsable() throws {
        let connection = try TestDatabase.connect()
        let error = #expect(throws: PostgresError.self) { try connection.query("SELECT $1::text", [.text("a\u{0}b")]) }
        #expect(error?.code == .invalidParameter)
        #expect(error?.message.contains("$1") == true)
        #expect(try connection.query("SELECT 1").first?.int(0) == 1)
    }

    @Test func hugeTextRoundTrips() throws {
        let connection = try TestDatabase.connect()
        let huge = String(repeating: "0123456789abcdef", count: 1 << 20)  // 16 MiB
        let rows = try connection.query("SELECT length($1::text), md5($1::text) = md5(repeat('0123456789abcdef', 1048576))", [.text(huge)])
        #expect(try rows.first?.int(0) == huge.utf8.count)
        #expect(try rows.first?.bool(1) == true)
        #expect(try connection.query("SELECT $1::text", [.text(huge)]).first?.string(0) == huge)
    }

    @Test func integerArraysAreReadAndAnythingElseIsADecodingError() throws {
        let connection = try TestDatabase.connect()
        let row = try #require(try connection.query(
            "SELECT ARRAY[1, -2, 30]::bigint[]::text, '{}'::int[]::text, ARRAY[$1::bigint, $2::bigint]::text",
            [.int(Int64.max), .int(Int64.min + 1)]).first)
        #expect(try row.integers(0) == [1, -2, 30])
        #expect(try row.integers(1) == [])
        #expect(try row.integers(2) == [Int.max, Int.min + 1])
        for text in ["", "{", "{1,}", "{,1}", "{1}{2}", "{NULL}", "{1,NULL}", "{-}", "{--1}", "{1-2}", "{{1}}", "1,2", "{1} ",
                     "{99999999999999999999}", "{1.5}"] {
            let error = #expect(throws: PostgresError.self, "\(text)") { try PostgresRow(columns: ["a"], values: [text]).integers(0) }
            #expect(error?.code == .decoding)
        }
    }

    @Test func typedValuesRoundTrip() throws {
        let connection = try TestDatabase.connect()
        let date = Date(timeIntervalSince1970: 1_763_789_432.123456)
        let uuid = UUID()
        let bytes: [UInt8] = [0, 1, 2, 0xFF, 0x5C, 0x27, 0]
        let row = try #require(try connection.query(
            "SELECT $1::bigint, $2::float8, $3::bool, $4::bytea, $5::timestamptz, $6::uuid, $7::jsonb ->> 'k', $8::text IS NULL",
            [.int(Int64.min), .double(0.1), .bool(true), .bytes(bytes), .timestamp(date), .uuid(uuid), .json(#"{"k":"v\"q"}"#), .null]
        ).first)
        #expect(try row.string(0) == String(Int64.min))
        #expect(try row.double(1) == 0.1)
        #expect(try row.bool(2) == true)
        #expect(try row.bytes(3) == bytes)
        #expect(abs(try row.date(4).timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_002)
        #expect(try row.string(5) == uuid.uuidString.lowercased())
        #expect(try row.string(6) == "v\"q")
        #expect(try row.bool(7) == true)
    }

    @Test func timestampsParseInAnyOffset() throws {
        #expect(PostgresTimestamp.parse("2026-11-22 04:50:32.5+00")?.timeIntervalSince1970 == 1_795_323_032.5)
        #expect(PostgresTimestamp.parse("2026-11-22 06:50:32.5+02")?.timeIntervalSince1970 == 1_795_323_032.5)
        #expect(PostgresTimestamp.parse("2026-11-22 00:20:32-04:30")?.timeIntervalSince1970 == 1_795_323_032)
        #expect(PostgresTimestamp.parse("not a time") == nil)
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 1_795_323_032.5)) == "2026-11-22 04:50:32.500000+00")
    }
}

@Suite struct ErrorTests {
    @Test func constraintViolationsCarrySQLStateWithoutLeakingValues() throws {
        let connection = try TestDatabase.connect()
        let table = TestDatabase.table("uniq")
        try connection.execute("CREATE TABLE \(table) (email text CONSTRAINT \(table)_email UNIQUE)")
        try connection.query("INSERT INTO \(table) VALUES ($1)", ["secret@example.com"])
        let error = #expect(throws: PostgresError.self) {
            try connection.query("INSERT INTO \(table) VALUES ($1)", ["secret@example.com"])
        }
        #expect(error?.code == .server)
        #expect(error?.sqlState == PostgresError.SQLState.uniqueViolation)
        #expect(error?.constraint == "\(table)_email")
        #expect(error?.table == table)
        #expect(error?.description.contains("secret@example.com") == false)
        #expect(error?.detail?.contains("secret@example.com") == true)
        #expect(error?.isConnectionError == false)

        let syntax = #expect(throws: PostgresError.self) { try connection.execute("SELEC 1") }
        #expect(syntax?.sqlState == PostgresError.SQLState.syntaxError)
        #expect(try connection.query("SELECT 2").first?.int(0) == 2)
    }

    @Test func connectionFailuresAreReportedWithoutThePassword() {
        let error = #expect(throws: PostgresError.self) {
            try PostgresConnection.connect(
                PostgresConfiguration(url: "postgres://user:topsecret@127.0.0.1:1/db", connectTimeout: .seconds(2)), logger: testLogger)
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.isConnectionError == true)
        #expect(error.map { "\($0)" }?.contains("topsecret") == false)
        #expect(PostgresConfiguration.redact("postgres://u:p@h/db?sslpassword=one&sslmode=require&password=two&PASSWORD=three")
            == "postgres://u:***@h/db?sslpassword=***&sslmode=require&password=***&PASSWORD=***")
        #expect(PostgresConfiguration.redact("postgres://u:p%40ss@w@h:5432/db") == "postgres://u:***@h:5432/db")
        #expect(PostgresConfiguration.redact("postgres://h/db?user=u") == "postgres://h/db?user=u")
        #expect(PostgresConfiguration.redact("postgres://user:topsecret@host/db?password=x&sslmode=require")
            == "postgres://user:***@host/db?password=***&sslmode=require")
        #expect(throws: PostgresError.self) { try PostgresConfiguration.validate(url: "mysql://x") }
        #expect(throws: PostgresError.self) { try PostgresConfiguration.validate(url: "postgres://host/db?nosuchoption=1") }
    }
}

@Suite struct TransactionTests {
    @Test func commitsOnReturnAndRollsBackOnThrow() throws {
        struct Abort: Error {}
        let connection = try TestDatabase.connect()
        let table = TestDatabase.table("tx")
        try connection.execute("CREATE TABLE \(table) (n int)")
        try connection.transaction { try $0.query("INSERT INTO \(table) VALUES (1)") }
        #expect(throws: Abort.self) {
            try connection.transaction { connection in
                try connection.query("INSERT INTO \(table) VALUES (2)")
                throw Abort()
            }
        }
        #expect(throws: PostgresError.self) {
            try connection.transaction { connection in
                try connection.query("INSERT INTO \(table) VALUES (3)")
                try connection.query("INSERT INTO \(table) VALUES ('not a number')")
            }
        }
        #expect(try connection.query("SELECT n FROM \(table)").rows.map { try $0.int(0) } == [1])
    }
}

@Suite struct CopyTests {
    @Test func copiesRowsWithEveryCharacterThatNeedsEscaping() throws {
        let connection = try TestDatabase.connect()
        let table = TestDatabase.table("copy")
        try connection.execute("CREATE TABLE \(table) (id int, body text, at timestamptz)")
        let bodies: [String?] = ParameterTests.hostile + [nil, "\\.", "line\\nnot-a-newline", String(repeating: "x", count: 300_000)]
        let date = Date(timeIntervalSince1970: 1_795_323_032.25)
        // Enough rows to cross several send chunks.
        let copied = try connection.copyFrom("COPY \(table) (id, body, at) FROM STDIN") { writer in
            for round in 0..<20 {
                for (index, body) in bodies.enumerated() {
                    writer.field(round * 1000 + index)
                    try writer.field(body)
                    writer.field(index % 2 == 0 ? date : nil)
                    try writer.endRow()
                }
            }
        }
        #expect(copied == 20 * bodies.count)
        let rows = try connection.query("SELECT id, body, at FROM \(table) WHERE id < 1000 ORDER BY id")
        #expect(rows.rows.map { $0.optionalString(1) } == bodies)
        #expect(try rows.rows[0].date(2) == date)
        #expect(rows.rows[1].isNull(2))
    }

    @Test func aNulByteAbortsTheCopyAndLeavesNothingBehind() throws {
        let connection = try TestDatabase.connect()
        let table = TestDatabase.table("copynul")
        try connection.execute("CREATE TABLE \(table) (body text)")
        let error = #expect(throws: PostgresError.self) {
            try connection.copyFrom("COPY \(table) FROM STDIN") { writer in
                try writer.field("fine"); try writer.endRow()
                try writer.field("bad\u{0}byte"); try writer.endRow()
            }
        }
        #expect(error?.code == .invalidParameter)
        #expect(try connection.query("SELECT count(*) FROM \(table)").first?.int(0) == 0)
        #expect(try connection.query("SELECT 1").first?.int(0) == 1)
    }

    /// The binary writer stores what the text writer stores, value for value: hostile text,
    /// NULLs of every type, times before 1970 and 2000 and with fractions of a microsecond,
    /// integers at their types' limits and JSON; out-of-range integers and NUL bytes are refused
    /// before the server sees them, and nothing of the aborted COPY is left.
    @Test func binaryCopyStoresWhatTextCopyStores() throws {
        let connection = try TestDatabase.connect()
        let table = TestDatabase.table("copybinary")
        let columns = "id uuid, at timestamptz, body text, small smallint, medium integer, large bigint, doc jsonb"
        try connection.execute("CREATE TABLE \(table)_text (\(columns)); CREATE TABLE \(table)_binary (\(columns))")
        let times: [Date?] = [
            Date(timeIntervalSince1970: 1_795_323_032.25), Date(timeIntervalSince1970: 1_795_323_032.999_999_7),
            Date(timeIntervalSince1970: -86_400.5), Date(timeIntervalSince1970: 946_684_799.000_001), nil,
        ]
        let integers: [(Int?, Int?, Int?)] = [(0, 0, 0), (-32768, Int(Int32.min), Int.min), (32767, Int(Int32.max), Int.max), (nil, nil, nil)]
        let documents: [String?] = [#"{"a": 1, "b": [true, null, "x\ty"]}"#, "[]", #""ünïcödé""#, nil]
        let bodies: [String?] = ParameterTests.hostile + [nil, "\\.", String(repeating: "y", count: 300_000)]
        var rows: [(UUID, Date?, String?, Int?, Int?, Int?, String?)] = []
        for (index, body) in bodies.enumerated() {
            let numbers = integers[index % integers.count]
            rows.append((UUID(), times[index % times.count], body, numbers.0, numbers.1, numbers.2, documents[index % documents.count]))
        }
        try connection.copyFrom("COPY \(table)_text FROM STDIN") { writer in
            for row in rows {
                writer.field(row.0); writer.field(row.1); try writer.field(row.2)
                writer.field(row.3); writer.field(row.4); writer.field(row.5); try writer.field(row.6)
                try writer.endRow()
            }
        }
        let copied = try connection.copyFromBinary("COPY \(table)_binary FROM STDIN (FORMAT binary)") { writer in
            for row in rows {
                writer.uuid(row.0); writer.timestamp(row.1); try writer.text(row.2)
                try writer.int16(row.3); try writer.int32(row.4); writer.int64(row.5); try writer.jsonb(row.6)
                try writer.endRow()
            }
        }
        #expect(copied == rows.count)
        let differences = try connection.query("""
            SELECT count(*) FROM ((SELECT * FROM \(table)_text EXCEPT ALL SELECT * FROM \(table)_binary)
                                  UNION ALL (SELECT * FROM \(table)_binary EXCEPT ALL SELECT * FROM \(table)_text)) d
            """)
        #expect(try differences.first?.int(0) == 0)
        #expect(try connection.query("SELECT count(*) FROM \(table)_binary WHERE doc IS NOT NULL").first?.int(0) ?? 0 > 0)

        for bad in [{ (writer: inout PostgresBinaryCopyWriter) in try writer.int16(32768) },
                    { (writer: inout PostgresBinaryCopyWriter) in try writer.int32(Int(Int32.max) + 1) },
                    { (writer: inout PostgresBinaryCopyWriter) in try writer.text("bad\u{0}byte") }] {
            let error = #expect(throws: PostgresError.self) {
                try connection.copyFromBinary("COPY \(table)_binary (small) FROM STDIN (FORMAT binary)") { writer in
                    try writer.int16(1); try writer.endRow()
                    try bad(&writer); try writer.endRow()
                }
            }
            #expect(error?.code == .invalidParameter)
        }
        #expect(try connection.query("SELECT count(*) FROM \(table)_binary").first?.int(0) == rows.count)
    }

    @Test func aServerSideErrorIsReported() throws {
        let connection = try TestDatabase.connect()
        let table = TestDatabase.table("copybad")
        try connection.execute("CREATE TABLE \(table) (n int NOT NULL)")
        let error = #expect(throws: PostgresError.self) {
            try connection.copyFrom("COPY \(table) FROM STDIN") { writer in
                try writer.field("not a number"); try writer.endRow()
            }
        }
        #expect(error?.sqlState == "22P02")  // invalid_text_representation
        #expect(try connection.query("SELECT 1").first?.int(0) == 1)
    }
}
