import Posix

/// Runs a blocking call (a child process, a first connection) on a short-lived thread of its
/// own, so start-up and shutdown work never blocks Swift's cooperative pool.
package func offloaded<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    let thread = DedicatedThread(name: name)
    defer { thread.shutdown() }
    return try await thread.run(body)
}
