import CLibPQ
import Foundation
import Logging

/// How to reach PostgreSQL.
public struct PostgresConfiguration: Sendable, CustomStringConvertible {
    /// `postgres://user:password@host:port/database?sslmode=require`; a unix socket is
    /// `postgres://user@/database?host=/var/run/postgresql`.
    public var url: String
    /// Connections in a ``PostgresPool``.
    public var poolSize: Int
    /// How long opening a connection may take (the URL's own `connect_timeout` wins).
    public var connectTimeout: Duration
    /// `application_name`, shown in `pg_stat_activity`.
    public var applicationName: String
    /// Told of every failed connect and statement (for metrics); called on the failing thread.
    public var onError: (@Sendable (PostgresError) -> Void)?

    public init(url: String, poolSize: Int = 4, connectTimeout: Duration = .seconds(10), applicationName: String = "faultline",
                onError: (@Sendable (PostgresError) -> Void)? = nil) {
        self.url = url
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.applicationName = applicationName
        self.onError = onError
    }

    /// The URL with its password replaced, safe to log.
    public var redactedURL: String { Self.redact(url) }

    public var description: String { "PostgresConfiguration(url: \(redactedURL), poolSize: \(poolSize))" }

    /// Replaces the password of a `postgres://user:password@…` URL, and the value of every query
    /// parameter whose name holds `password` (`password=`, `sslpassword=`, in any order), with
    /// `***`.
    public static func redact(_ url: String) -> String {
        var result = url
        if let scheme = result.range(of: "://") {
            // The authority ends at the path or the query; its last `@` ends the user info.
            let authorityEnd = result[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" } ?? result.endIndex
            if let at = result[scheme.upperBound..<authorityEnd].lastIndex(of: "@"),
                let colon = result[scheme.upperBound..<at].firstIndex(of: ":")
            {
                result.replaceSubrange(result.index(after: colon)..<at, with: "***")
            }
        }
        guard let question = result.firstIndex(of: "?") else { return result }
        let query = result[result.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            guard let equals = pair.firstIndex(of: "="), pair[..<equals].lowercased().contains("password") else { return String(pair) }
            return pair[...equals] + "***"
        }
        return result[...question] + query.joined(separator: "&")
    }

    /// Checks that libpq can parse the URL.
    ///
    /// - Throws: ``PostgresError`` with libpq's reason (which never repeats the password).
    public static func validate(url: String) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw PostgresError(.connectionFailed, "the URL must start with postgres:// or postgresql://", operation: "parse URL")
        }
        var errmsg: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &errmsg) else {
            let reason = errmsg.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "invalid URL"
            if let errmsg { PQfreemem(errmsg) }
            throw PostgresError(.connectionFailed, reason, operation: "parse URL")
        }
        PQconninfoFree(options)
    }
}

/// One connection to PostgreSQL. Every call blocks until the server answers.
///
/// A connection is used by one thread at a time (libpq connections are not thread-safe);
/// ``PostgresPool`` runs each on a thread of its own. All values travel as bound parameters.
///
/// ```swift
/// let connection = try PostgresConnection.connect(configuration, logger: logger)
/// let rows = try connection.query("SELECT name FROM services WHERE id = $1", [.int(42)])
/// ```
public final class PostgresConnection {
    private var handle: OpaquePointer
    private let logger: Logger
    public let configuration: PostgresConfiguration

    private init(handle: OpaquePointer, configuration: PostgresConfiguration, logger: Logger) {
        self.handle = handle
        self.configuration = configuration
        self.logger = logger
    }

    deinit {
        PQfinish(handle)
    }

    /// Opens a connection.
    ///
    /// - Throws: ``PostgresError`` with code ``PostgresError/Code/connectionFailed``.
    public static func connect(_ configuration: PostgresConfiguration, logger: Logger) throws -> PostgresConnection {
        try PostgresConfiguration.validate(url: configuration.url)
        // Later pairs override earlier ones, so the URL's own settings win over these defaults.
        let keywords = ["connect_timeout", "application_name", "dbname"]
        let values = [
            "\(max(2, Int(configuration.connectTimeout.components.seconds)))", configuration.applicationName,
            configuration.url,
        ]
        let handle = withCStrings(keywords) { keywordPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else {
            throw PostgresError(.connectionFailed, "out of memory", operation: "connect")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = lastError(handle)
            PQfinish(handle)
            let error = PostgresError(.connectionFailed, message, operation: "connect")
            configuration.onError?(error)
            throw error
        }
        let connection = PostgresConnection(handle: handle, configuration: configuration, logger: logger)
        PQsetNoticeProcessor(handle, noticeProcessor, nil)
        return connection
    }

    /// Whether libpq still considers the connection usable.
    public var isOpen: Bool { PQstatus(handle) == CONNECTION_OK }

    /// The server's process id for this connection.
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Makes sure the connection is usable, reconnecting if the server closed it (for example
    /// after a restart). Cheap when the connection is healthy: it reads only what is pending.
    ///
    /// - Throws: ``PostgresError/Code/connectionFailed`` when the server cannot be reached.
    public func ensureOpen() throws {
        if PQstatus(handle) == CONNECTION_OK && idleSocketIsHealthy() { return }
        logger.info("reconnecting to PostgreSQL", metadata: ["url": "\(configuration.redactedURL)"])
        PQreset(handle)
        guard PQstatus(handle) == CONNECTION_OK else {
            let error = PostgresError(.connectionFailed, Self.lastError(handle), operation: "reconnect")
            configuration.onError?(error)
            throw error
        }
    }

    /// An idle connection has nothing to read unless the server said something: usually that
    /// it is shutting the connection (an error, then end of file). Reading what is pending
    /// marks such a connection bad now, before a query is sent on it.
    private func idleSocketIsHealthy() -> Bool {
        let socket = PQsocket(handle)
        guard socket >= 0 else { return false }
        for _ in 0..<4 {
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 0)
            if ready == 0 { return true }
            if ready < 0 { return errno == EINTR }
            if descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return false }
            guard PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else { return false }
            // Discard asynchronous notifications so they do not pile up.
            while let notify = PQnotifies(handle) { PQfreemem(notify) }
        }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Runs one statement with bound parameters and returns its rows.
    ///
    /// - Parameters:
    ///   - sql: one statement; `$1`, `$2`, … stand for the parameters.
    ///   - parameters: values sent separately from the SQL text.
    /// - Throws: ``PostgresError``: ``PostgresError/Code/server`` with the SQLSTATE,
    ///   ``PostgresError/Code/connectionLost``, or ``PostgresError/Code/invalidParameter``.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresRows {
        let encoded = try parameters.enumerated().map { try $0.element.encoded(index: $0.offset) }
        let lengths = encoded.map { Int32($0.bytes?.count ?? 0) }
        let formats = encoded.map { Int32($0.binary ? 1 : 0) }
        let result: OpaquePointer? = withParameterPointers(encoded.map(\.bytes)) { pointers in
            PQexecParams(handle, sql, Int32(encoded.count), nil, pointers, lengths, formats, 0)
        }
        return try consume(result, operation: "query")
    }

    /// Runs SQL text with no parameters; it may hold several statements (a migration file).
    /// Returns the rows of the last statement.
    @discardableResult
    public func execute(_ sql: String) throws -> PostgresRows {
        try consume(PQexec(handle, sql), operation: "execute")
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    @discardableResult
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try execute("BEGIN")
        let value: T
        do {
            value = try body(self)
        } catch {
            if isOpen {
                do { try execute("ROLLBACK") } catch { logger.warning("rollback failed: \(error)") }
            }
            throw error
        }
        try execute("COMMIT")
        return value
    }

    /// Streams rows into `COPY … FROM STDIN` (text format).
    ///
    /// ```swift
    /// let copied = try connection.copyFrom("COPY events (id, message) FROM STDIN") { writer in
    ///     for event in events {
    ///         try writer.field(event.id)
    ///         try writer.field(event.message)
    ///         writer.endRow()
    ///     }
    /// }
    /// ```
    /// - Returns: the number of rows copied.
    /// - Throws: what `body` throws (the COPY is then aborted), or ``PostgresError``.
    @discardableResult
    public func copyFrom(_ sql: String, _ body: (inout PostgresCopyWriter) throws -> Void) throws -> Int {
        try copy(sql) { sink in
            var writer = PostgresCopyWriter(sink: sink)
            try body(&writer)
            try writer.flush()
        }
    }

    /// Streams rows into `COPY … FROM STDIN (FORMAT binary)`: the client escapes nothing and
    /// the server parses no text. Every column of the statement's list is written, in order,
    /// with the writer's method of its type.
    ///
    /// ```swift
    /// try connection.copyFromBinary("COPY events (id, at, message) FROM STDIN (FORMAT binary)") { writer in
    ///     for event in events {
    ///         writer.uuid(event.id)
    ///         writer.timestamp(event.at)
    ///         try writer.text(event.message)
    ///         try writer.endRow()
    ///     }
    /// }
    /// ```
    /// - Returns: the number of rows copied.
    /// - Throws: what `body` throws (the COPY is then aborted), or ``PostgresError``.
    @discardableResult
    public func copyFromBinary(_ sql: String, _ body: (inout PostgresBinaryCopyWriter) throws -> Void) throws -> Int {
        try copy(sql) { sink in
            var writer = PostgresBinaryCopyWriter(sink: sink)
            try body(&writer)
            try writer.finish()
        }
    }

    /// Starts `COPY … FROM STDIN`, lets `send` write the data through the sink it is given, and
    /// ends it (or aborts it when `send` throws).
    private func copy(_ sql: String, _ send: (@escaping ([UInt8]) throws -> Void) throws -> Void) throws -> Int {
        let start = PQexec(handle, sql)
        guard let start, PQresultStatus(start) == PGRES_COPY_IN else {
            _ = try consume(start, operation: "copy")
            throw PostgresError(.server, "statement did not start COPY FROM STDIN", operation: "copy")
        }
        PQclear(start)
        let sink: ([UInt8]) throws -> Void = { [handle] bytes in
            let sent = bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            guard sent == 1 else {
                throw PostgresError(.connectionLost, Self.lastError(handle), operation: "copy")
            }
        }
        do {
            try send(sink)
        } catch {
            PQputCopyEnd(handle, "aborted by client")
            drainResults()
            throw error
        }
        guard PQputCopyEnd(handle, nil) == 1 else {
            throw PostgresError(.connectionLost, Self.lastError(handle), operation: "copy")
        }
        let rows = try consume(PQgetResult(handle), operation: "copy")
        drainResults()
        return rows.affectedRows
    }

    private func drainResults() {
        while let result = PQgetResult(handle) { PQclear(result) }
    }

    /// Turns a result into rows or an error and frees it.
    private func consume(_ result: OpaquePointer?, operation: String) throws -> PostgresRows {
        do {
            return try consumeResult(result, operation: operation)
        } catch let error as PostgresError {
            configuration.onError?(error)
            throw error
        }
    }

    private func consumeResult(_ result: OpaquePointer?, operation: String) throws -> PostgresRows {
        guard let result else {
            throw PostgresError(isOpen ? .server : .connectionLost, Self.lastError(handle), operation: operation)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.rows(of: result)
        default:
            let sqlState = field(result, PG_DIAG_SQLSTATE)
            let message = field(result, PG_DIAG_MESSAGE_PRIMARY) ?? Self.lastError(handle)
            let code: PostgresError.Code = !isOpen && sqlState == nil ? .connectionLost : .server
            throw PostgresError(
                code, message, operation: operation, sqlState: sqlState,
                detail: field(result, PG_DIAG_MESSAGE_DETAIL), hint: field(result, PG_DIAG_MESSAGE_HINT),
                constraint: field(result, PG_DIAG_CONSTRAINT_NAME), table: field(result, PG_DIAG_TABLE_NAME))
        }
    }

    private func field(_ result: OpaquePointer, _ code: Int32) -> String? {
        PQresultErrorField(result, code).map { String(cString: $0) }
    }

    private static func rows(of result: OpaquePointer) -> PostgresRows {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<Int32(rowCount) {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    let pointer = UnsafeRawPointer(PQgetvalue(result, row, column)!)
                    values.append(String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self))
                }
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, rows: rows, affectedRows: affected)
    }

    static func lastError(_ handle: OpaquePointer) -> String {
        String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Server notices (e.g. "relation already exists, skipping") are not errors: drop them.
private let noticeProcessor: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Void = { _, _ in }

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var pointers = strings.map { UnsafePointer(strdup($0)) }
    pointers.append(nil)
    defer { for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withParameterPointers<R>(
    _ values: [[UInt8]?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R
) -> R {
    guard !values.isEmpty else { return body(nil) }
    // Copies keep every pointer valid for the whole call.
    let buffers: [UnsafeMutableBufferPointer<UInt8>?] = values.map { bytes in
        bytes.map { bytes in
            let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            _ = buffer.initialize(from: bytes)
            return buffer
        }
    }
    defer { for buffer in buffers { buffer?.deallocate() } }
    let pointers: [UnsafePointer<CChar>?] = buffers.map { buffer in
        buffer.map { UnsafePointer(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
    }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

// libpq's PG_DIAG_* field codes are character-literal macros, which Swift does not import.
private let PG_DIAG_SQLSTATE = Int32(UInt8(ascii: "C"))
private let PG_DIAG_MESSAGE_PRIMARY = Int32(UInt8(ascii: "M"))
private let PG_DIAG_MESSAGE_DETAIL = Int32(UInt8(ascii: "D"))
private let PG_DIAG_MESSAGE_HINT = Int32(UInt8(ascii: "H"))
private let PG_DIAG_CONSTRAINT_NAME = Int32(UInt8(ascii: "n"))
private let PG_DIAG_TABLE_NAME = Int32(UInt8(ascii: "t"))
