import Domain

/// The stable identity of a group of errors: service, error type, masked message and the
/// normalised top in-app frames. The same on every replica and after every restart.
public struct Fingerprint: Sendable, Hashable {
    /// 16 hex digits.
    public let value: String
    /// The masked message the group is known by.
    public let template: String
    /// The normalised top in-app frames (`a|b|c`), empty when there are none.
    public let frames: String

    public static let frameCount = 3

    public init(service: String, errorType: String?, message: String, frames: [StackFrame]) {
        let template = TokenMasker.mask(message)
        let topFrames = frames.filter(\.inApp).prefix(Self.frameCount).map { frame in
            // Line numbers move with every release; lambda and generated suffixes vary.
            TokenMasker.mask(frame.function ?? frame.file ?? "?")
        }.joined(separator: "|")
        self.template = template
        self.frames = topFrames
        self.value = StableHash.hex64(joining: service, errorType ?? "", template, topFrames)
    }

    public init(_ event: ErrorEvent) {
        self.init(service: event.service, errorType: event.errorType, message: event.message, frames: event.frames)
    }
}
