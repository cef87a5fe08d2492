import Foundation

/// Finds the `migrations/` folder shipped with Faultline.
public enum MigrationsLocator {
    /// The configured folder, else `./migrations`, else a `migrations` folder in or above the
    /// executable's folder (a source checkout), else `/usr/share/faultline/migrations`.
    public static func find(configured: String?) throws -> String {
        if let configured { return configured }
        var candidates = [FileManager.default.currentDirectoryPath + "/migrations"]
        var directory = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(directory.appendingPathComponent("migrations").path)
            directory = directory.deletingLastPathComponent()
        }
        candidates.append("/usr/share/faultline/migrations")
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue {
                return candidate
            }
        }
        throw ConfigurationError(
            variable: "FAULTLINE_MIGRATIONS_DIR", reason: "no migrations folder found; set it to the folder of the SQL files")
    }
}
