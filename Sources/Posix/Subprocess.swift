import CLinuxShims

#if canImport(Glibc)
import Glibc
#endif

/// Runs programs with `posix_spawn` and waits for them.
///
/// Foundation's `Process` cannot be used for programs that leave a daemon behind (`pg_ctl
/// start`): the daemon inherits the descriptor Foundation watches for the child's exit, and
/// `waitUntilExit` never returns. Here the child gets only stdin (/dev/null) and stdout and
/// stderr (a file), every other descriptor is closed, and `waitpid` waits for it alone.
public enum Subprocess {
    /// Runs `program` with `arguments`, its output appended to `outputPath`, and returns its exit
    /// status (128 + signal number when a signal ended it).
    public static func run(_ program: String, _ arguments: [String], outputPath: String) throws -> Int32 {
        let output = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw PosixError(code: errno, operation: "open \(outputPath)") }
        defer { close(output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        CLinuxShims_spawn_addclosefrom(&actions, 3)
        CLinuxShims_spawn_addchdir(&actions, "/")

        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, environ)
        guard spawned == 0 else { throw PosixError(code: spawned, operation: "posix_spawn \(program)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw PosixError(code: errno, operation: "waitpid") }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
