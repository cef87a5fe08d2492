import App
import ArgumentParser
import Foundation
import Logging

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage REST API keys in the database (FAULTLINE_DATABASE_URL).",
        subcommands: [KeysCreate.self, KeysList.self, KeysRevoke.self])
}

/// Prints a key tool's lines, or its error as one line on stderr with exit status 1.
func reportKeys(_ body: () async throws -> [String]) async throws {
    do {
        for line in try await body() { print(line) }
    } catch let error as ToolError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct KeysCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a key and print it (shown only now; only its SHA-256 is stored).")
    @OptionGroup var options: ConfigurationOptions
    @Option(help: "A name people recognise (e.g. the CD pipeline).") var name: String
    @Option(help: "read, write or admin (repeatable; write implies read, admin both).") var scope: [String] = ["read"]
    @Option(help: "Limit the key to services whose names start with this.") var servicePrefix: String?

    func run() async throws {
        let configuration = try options.load()
        try await reportKeys {
            try await KeyTool.create(configuration, name: name, scopes: scope, servicePrefix: servicePrefix,
                                     logger: Logger(label: "faultline.keys"))
        }
    }
}

struct KeysList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the keys, one JSON object a line (no secrets).")
    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let configuration = try options.load()
        try await reportKeys { try await KeyTool.list(configuration, logger: Logger(label: "faultline.keys")) }
    }
}

struct KeysRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key by its id.")
    @OptionGroup var options: ConfigurationOptions
    @Argument(help: "The key's id (from keys list).") var id: Int64

    func run() async throws {
        let configuration = try options.load()
        try await reportKeys { try await KeyTool.revoke(configuration, id: id, logger: Logger(label: "faultline.keys")) }
    }
}
