import Foundation

/// How bad an event is, on one scale for every accepted format.
public enum Severity: String, Sendable, CaseIterable, Comparable {
    case trace, debug, info, warning, error, fatal

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }

    /// Parses the names used by the accepted formats (`ERROR`, `Warning`, `warn`, `critical`, …).
    public init?(name: String) {
        switch name.lowercased() {
        case "trace", "verbose": self = .trace
        case "debug": self = .debug
        case "info", "information", "informational", "notice": self = .info
        case "warn", "warning": self = .warning
        case "error", "err": self = .error
        case "fatal", "critical", "crit", "emergency", "alert", "panic": self = .fatal
        default: return nil
        }
    }

    /// OpenTelemetry's SeverityNumber (1–24).
    public init?(otelNumber: Int) {
        switch otelNumber {
        case 1...4: self = .trace
        case 5...8: self = .debug
        case 9...12: self = .info
        case 13...16: self = .warning
        case 17...20: self = .error
        case 21...24: self = .fatal
        default: return nil
        }
    }
}

/// The format a message was written in.
public enum EventFormat: String, Sendable, CaseIterable {
    /// Faultline's own JSON (one object, or an array of them).
    case native
    /// OpenTelemetry logs, OTLP/JSON as the Collector's Kafka exporter writes them.
    case otlp
    /// Serilog's compact JSON (CLEF), one object per line.
    case clef
}

/// One frame of a stack trace.
public struct StackFrame: Sendable, Hashable {
    public var function: String?
    public var module: String?
    public var file: String?
    public var line: Int?
    /// Whether the frame is the application's own code (not a library or the runtime).
    public var inApp: Bool

    public init(function: String?, module: String? = nil, file: String? = nil, line: Int? = nil, inApp: Bool = true) {
        self.function = function
        self.module = module
        self.file = file
        self.line = line
        self.inApp = inApp
    }
}

/// An error event, decoded and validated, in the same shape whatever its format.
public struct ErrorEvent: Sendable, Equatable {
    public var eventID: UUID
    public var timestamp: Date
    public var service: String
    public var environment: String
    public var version: String?
    public var severity: Severity
    public var errorType: String?
    public var message: String
    public var stacktrace: String?
    public var frames: [StackFrame]
    public var errorCode: String?
    public var httpStatus: Int?
    public var traceID: String?
    public var spanID: String?
    public var host: String?
    public var pod: String?
    public var namespace: String?
    public var region: String?
    /// Other attributes as a JSON object text, or nil.
    public var attributesJSON: String?
    public var format: EventFormat

    public init(
        eventID: UUID, timestamp: Date, service: String, environment: String, version: String? = nil,
        severity: Severity = .error, errorType: String? = nil, message: String, stacktrace: String? = nil,
        frames: [StackFrame] = [], errorCode: String? = nil, httpStatus: Int? = nil, traceID: String? = nil,
        spanID: String? = nil, host: String? = nil, pod: String? = nil, namespace: String? = nil, region: String? = nil,
        attributesJSON: String? = nil, format: EventFormat = .native
    ) {
        self.eventID = eventID
        self.timestamp = timestamp
        self.service = service
        self.environment = environment
        self.version = version
        self.severity = severity
        self.errorType = errorType
        self.message = message
        self.stacktrace = stacktrace
        self.frames = frames
        self.errorCode = errorCode
        self.httpStatus = httpStatus
        self.traceID = traceID
        self.spanID = spanID
        self.host = host
        self.pod = pod
        self.namespace = namespace
        self.region = region
        self.attributesJSON = attributesJSON
        self.format = format
    }
}
