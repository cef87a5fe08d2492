import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What other threads hand one event loop: the responses of its handlers, the connections the
/// accepting loop gives it, and the request to shut down. Written under a lock; the loop is woken
/// through its eventfd, at most once per batch.
final class LoopInbox: Sendable {
    /// A connection accepted by the first loop for another.
    struct Accepted: Sendable {
        let fd: Int32
        let remoteAddress: String
        let clientAddress: String
    }

    struct Contents {
        var completions: [(UInt64, HTTPResponse)] = []
        var accepted: [Accepted] = []
        var shutdownRequested = false
    }

    private struct State {
        var contents = Contents()
        var wakeFD: Int32
        var wakePending = false
    }

    private let state: Mutex<State>
    /// Connections open on this loop: the accepting loop gives a new one to the loop with fewest.
    let open = Atomic<Int>(0)

    init(wakeFD: Int32) {
        state = Mutex(State(wakeFD: wakeFD))
    }

    /// A handler's response to the connection `id` of this loop.
    func post(_ id: UInt64, _ response: HTTPResponse) {
        state.withLock { state in
            state.contents.completions.append((id, response))
            Self.signal(&state)
        }
    }

    /// Gives the loop a connection; `false` when the loop has ended (the caller closes it).
    func hand(_ accepted: Accepted) -> Bool {
        state.withLock { state in
            guard state.wakeFD >= 0 else { return false }
            state.contents.accepted.append(accepted)
            Self.signal(&state)
            return true
        }
    }

    func requestShutdown() {
        state.withLock { state in
            state.contents.shutdownRequested = true
            Self.signal(&state)
        }
    }

    /// Wakes the loop with nothing new (its listener may resume).
    func nudge() {
        state.withLock { Self.signal(&$0) }
    }

    /// Everything posted since the last call; the shutdown request stays set once made.
    func take() -> Contents {
        state.withLock { state in
            state.wakePending = false
            let contents = state.contents
            state.contents.completions.removeAll(keepingCapacity: true)
            state.contents.accepted.removeAll(keepingCapacity: true)
            return contents
        }
    }

    /// Ends the inbox when its loop ends: the eventfd is closed under the lock, so no handler
    /// writes to a closed (or reused) descriptor, and nothing is accepted after. Returns the
    /// connections handed over but not taken, for the loop to close.
    func close() -> [Accepted] {
        state.withLock { state in
            if state.wakeFD >= 0 { Glibc.close(state.wakeFD) }
            state.wakeFD = -1
            defer { state.contents = Contents() }
            return state.contents.accepted
        }
    }

    private static func signal(_ state: inout State) {
        guard !state.wakePending, state.wakeFD >= 0 else { return }
        state.wakePending = true
        wake(state.wakeFD)
    }
}
