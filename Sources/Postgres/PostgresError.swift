/// An error from PostgreSQL, libpq or this wrapper.
///
/// `description` is safe to log: it holds the SQLSTATE, the server's primary message and the
/// operation, never parameter values or the connection password. Details the server adds
/// (`DETAIL` may quote row values) are in ``detail`` and `debugDescription`.
public struct PostgresError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What went wrong, in kinds a caller can act on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let raw: String
        public var description: String { raw }

        /// The connection could not be opened.
        public static let connectionFailed = Code(raw: "connection failed")
        /// The connection broke during an operation; the operation's outcome is unknown.
        public static let connectionLost = Code(raw: "connection lost")
        /// The server refused the statement (see ``PostgresError/sqlState``).
        public static let server = Code(raw: "server error")
        /// A parameter cannot be sent (e.g. text holding a NUL byte).
        public static let invalidParameter = Code(raw: "invalid parameter")
        /// A value in a result could not be decoded as asked.
        public static let decoding = Code(raw: "decoding")
        /// A migration could not be applied or was changed after it was applied.
        public static let migration = Code(raw: "migration")
        /// The pool is closed.
        public static let poolClosed = Code(raw: "pool closed")
        /// No connection of the pool was free within its acquire timeout.
        public static let poolExhausted = Code(raw: "pool exhausted")
        /// A local server (initdb, pg_ctl) could not be managed.
        public static let localServer = Code(raw: "local server")
    }

    public let code: Code
    /// The five-character SQLSTATE for server errors, e.g. `23505` (unique_violation).
    public let sqlState: String?
    /// The server's or libpq's primary message.
    public let message: String
    public let detail: String?
    public let hint: String?
    public let constraint: String?
    public let table: String?
    /// What was being done, e.g. `"query"`, `"copy"`, `"connect"`.
    public let operation: String

    public init(
        _ code: Code, _ message: String, operation: String, sqlState: String? = nil,
        detail: String? = nil, hint: String? = nil, constraint: String? = nil, table: String? = nil
    ) {
        self.code = code
        self.message = message
        self.operation = operation
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
    }

    /// Whether retrying on a fresh connection may succeed.
    public var isConnectionError: Bool {
        code == .connectionFailed || code == .connectionLost
            || sqlState.map { $0.hasPrefix("08") || $0 == "57P01" || $0 == "57P02" || $0 == "57P03" } == true
    }

    /// A connection refused for a reason that waiting does not cure: a wrong password, a
    /// database or role that does not exist, no `pg_hba.conf` entry, SSL required on one side
    /// and missing on the other. A start-up should fail at once on it, with libpq's text.
    public var isPermanentConnectionError: Bool {
        guard code == .connectionFailed else { return false }
        let text = message.lowercased()
        return ["password authentication failed", "does not exist", "no pg_hba.conf entry", "pg_hba.conf rejects",
                "does not support ssl", "ssl is not enabled", "ssl off", "invalid connection option", "invalid uri",
                "invalid sslmode", "certificate", "peer authentication failed", "ident authentication failed"]
            .contains { text.contains($0) }
    }

    public var description: String {
        var text = "PostgreSQL \(operation) failed"
        if let sqlState { text += " [\(sqlState)]" }
        return text + ": \(message)"
    }

    public var debugDescription: String {
        var parts = [description]
        if let detail { parts.append("detail: \(detail)") }
        if let hint { parts.append("hint: \(hint)") }
        if let constraint { parts.append("constraint: \(constraint)") }
        if let table { parts.append("table: \(table)") }
        return parts.joined(separator: "; ")
    }
}

extension PostgresError {
    /// SQLSTATE values callers test for.
    public enum SQLState {
        public static let uniqueViolation = "23505"
        public static let foreignKeyViolation = "23503"
        public static let notNullViolation = "23502"
        public static let checkViolation = "23514"
        public static let undefinedTable = "42P01"
        public static let syntaxError = "42601"
        public static let queryCanceled = "57014"
        public static let adminShutdown = "57P01"
    }
}
