import Foundation

/// Finds the folders shipped with Faultline: `migrations/` and `rules/`.
public enum ResourceLocator {
    /// The configured folder, else `./<name>`, else a `<name>` folder in or above the
    /// executable's folder (a source checkout), else `/usr/share/faultline/<name>`.
    public static func find(_ name: String, configured: String?, variable: String) throws -> String {
        if let configured { return configured }
        var candidates = [FileManager.default.currentDirectoryPath + "/" + name]
        var directory = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(directory.appendingPathComponent(name).path)
            directory = directory.deletingLastPathComponent()
        }
        candidates.append("/usr/share/faultline/" + name)
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue {
                return candidate
            }
        }
        throw ConfigurationError(variable: variable, reason: "no \(name) folder found; set it to the folder shipped with Faultline")
    }

    /// The folder of the SQL migrations.
    public static func migrations(configured: String?) throws -> String {
        try find("migrations", configured: configured, variable: "FAULTLINE_MIGRATIONS_DIR")
    }
}
