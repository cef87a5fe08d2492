import Domain
import Foundation
import Postgres

/// A stored dead letter with its original bytes.
public struct DeadLetterRecord: Sendable {
    public var id: Int64
    public var sourceTopic: String
    public var sourcePartition: Int
    public var sourceOffset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    /// The original headers; a value that was not UTF-8 was stored with replacement characters.
    public var headers: [(name: String, value: [UInt8]?)]
    public var reason: String
    public var receivedAt: String
    public var replayedAt: String?
}

public enum DeadLetterStore {
    /// Records a dead letter; `false` when that message was recorded before (a replay).
    public static func insert(_ letter: DeadLetter, on connection: PostgresConnection) throws -> Bool {
        try connection.query("""
            INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_key, message_value, headers, reason)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
            ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
            """, [.text(letter.origin.topic), .int(Int64(letter.origin.partition)), .int(letter.origin.offset),
                  letter.key.map { .bytes($0) } ?? .null, .bytes(letter.value),
                  .json(try encodeJSON(letter.headers.map(StoredHeader.init))), .text(letter.reason)]).affectedRows == 1
    }

    /// A header as stored: its value as text (not UTF-8 bytes become replacement characters),
    /// `null` when it had none.
    struct StoredHeader: Encodable {
        let name: String
        let value: String?

        enum CodingKeys: String, CodingKey { case name, value }

        init(_ header: (name: String, value: [UInt8]?)) {
            name = header.name
            value = header.value.map { String(decoding: $0, as: UTF8.self) }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(value, forKey: .value)  // null, not left out
        }
    }

    static let columns = """
        id, source_topic, source_partition, source_offset, message_key, message_value, headers::text, reason,
        api_time(received_at), api_time(replayed_at)
        """

    static func record(_ row: PostgresRow) throws -> DeadLetterRecord {
        var headers: [(name: String, value: [UInt8]?)] = []
        if case .array(let items)? = try? JSONParser.parse(Array(try row.string(6).utf8)) {
            for item in items {
                guard let name = item["name"]?.stringValue else { continue }
                headers.append((name, item["value"]?.stringValue.map { Array($0.utf8) }))
            }
        }
        return DeadLetterRecord(
            id: Int64(try row.int(0)), sourceTopic: try row.string(1), sourcePartition: try row.int(2),
            sourceOffset: Int64(try row.int(3)), key: row.isNull(4) ? nil : try row.bytes(4), value: try row.bytes(5),
            headers: headers, reason: try row.string(7), receivedAt: try row.string(8), replayedAt: row.optionalString(9))
    }

    /// Dead letters, newest first.
    public static func list(after: Cursor?, limit: Int, on connection: PostgresConnection) throws -> (records: [DeadLetterRecord], next: [String]?) {
        let rows = try connection.query("""
            SELECT \(columns) FROM dead_letters WHERE ($1::bigint IS NULL OR id < $1::bigint) ORDER BY id DESC LIMIT $2
            """, [try .optional(after) { try $0.int(0) }, .int(Int64(limit + 1))]).rows
        let records = try rows.prefix(limit).map(record)
        return (records, rows.count > limit ? records.last.map { ["\($0.id)"] } : nil)
    }

    public static func get(id: Int64, on connection: PostgresConnection) throws -> DeadLetterRecord? {
        try connection.query("SELECT \(columns) FROM dead_letters WHERE id = $1", [.int(id)]).first.map(record)
    }

    /// Records that a dead letter was produced back to its source topic.
    /// Marks a dead letter replayed, unless it was already (or `force`); nil when it was.
    public static func claimReplay(id: Int64, force: Bool, on connection: PostgresConnection) throws -> DeadLetterRecord? {
        try connection.query("""
            UPDATE dead_letters SET replayed_at = now() WHERE id = $1 AND (replayed_at IS NULL OR $2) RETURNING \(columns)
            """, [.int(id), .bool(force)]).first.map(record)
    }

    /// Puts back the replay mark a failed replay claimed.
    public static func unclaimReplay(id: Int64, previous: String?, on connection: PostgresConnection) throws {
        try connection.query("UPDATE dead_letters SET replayed_at = $2::timestamptz WHERE id = $1",
                             [.int(id), previous.map { .text($0) } ?? .null])
    }
}
