import Foundation
import Testing

@testable import App

@Suite struct ConfigurationTests {
    @Test func defaultsApplyWhenNothingIsSet() throws {
        let configuration = try FaultlineConfiguration.fromEnvironment(["PATH": "/usr/bin", "HOME": "/root"])
        #expect(configuration.databaseURL == "postgres://faultline@127.0.0.1:5432/faultline")
        #expect(configuration.kafkaBrokers == "127.0.0.1:9092")
        #expect(configuration.kafkaTopic == "errors")
        #expect(configuration.kafkaDeadLetterTopic == "errors.dlq")
        #expect(configuration.kafkaGroup == "faultline")
        #expect(configuration.httpPort == 8080)
        #expect(configuration.http.eventLoops == min(16, ProcessInfo.processInfo.activeProcessorCount))
        #expect(configuration.logLevel == .info)
        #expect(configuration.migrateOnStart)
        #expect(configuration.shutdownGracePeriod == .seconds(25))
        #expect(configuration.shutdownDrain == .seconds(2))
        #expect(configuration.kafkaProperties.isEmpty)
    }

    @Test func readsEveryVariable() throws {
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": "postgresql://app:pw@db.internal:6432/errors?sslmode=require",
            "FAULTLINE_DATABASE_POOL_SIZE": "12",
            "FAULTLINE_KAFKA_BROKERS": "k1:9092, k2:9093",
            "FAULTLINE_KAFKA_TOPIC": "prod.errors",
            "FAULTLINE_KAFKA_DLQ_TOPIC": "prod.errors.dlq",
            "FAULTLINE_KAFKA_DEPLOYMENTS_TOPIC": "prod.deployments",
            "FAULTLINE_KAFKA_GROUP": "faultline-prod",
            "FAULTLINE_HTTP_HOST": "127.0.0.1",
            "FAULTLINE_HTTP_PORT": "9000",
            "FAULTLINE_HTTP_EVENT_LOOPS": "3",
            "FAULTLINE_LOG_LEVEL": "DEBUG",
            "FAULTLINE_LOG_FORMAT": "text",
            "FAULTLINE_MIGRATE": "false",
            "FAULTLINE_MIGRATIONS_DIR": "/tmp",
            "FAULTLINE_SHUTDOWN_GRACE": "1m",
            "FAULTLINE_SHUTDOWN_DRAIN": "7s",
        ])
        #expect(configuration.databaseURL == "postgresql://app:pw@db.internal:6432/errors?sslmode=require")
        #expect(configuration.databasePoolSize == 12)
        #expect(configuration.kafkaBrokers == "k1:9092,k2:9093")
        #expect(configuration.kafkaTopic == "prod.errors")
        #expect(configuration.kafkaDeadLetterTopic == "prod.errors.dlq")
        #expect(configuration.kafkaDeploymentsTopic == "prod.deployments")
        #expect(configuration.kafkaGroup == "faultline-prod")
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 9000)
        #expect(configuration.http.eventLoops == 3)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.logFormat == .text)
        #expect(!configuration.migrateOnStart)
        #expect(configuration.migrationsDirectory == "/tmp")
        #expect(configuration.shutdownGracePeriod == .seconds(60))
        #expect(configuration.shutdownDrain == .seconds(7))
    }

    /// The drain is part of the grace period: set, it must be shorter; unset, it takes at most half.
    @Test func theDrainFitsInTheGracePeriod() throws {
        let short = try FaultlineConfiguration.fromEnvironment(["FAULTLINE_SHUTDOWN_GRACE": "1s"])
        #expect(short.shutdownDrain == .milliseconds(500))
        #expect(try FaultlineConfiguration.fromEnvironment(["FAULTLINE_SHUTDOWN_DRAIN": "0s"]).shutdownDrain == .zero)
        let error = #expect(throws: ConfigurationError.self) {
            try FaultlineConfiguration.fromEnvironment(["FAULTLINE_SHUTDOWN_GRACE": "5s", "FAULTLINE_SHUTDOWN_DRAIN": "5s"])
        }
        #expect(error?.variable == "FAULTLINE_SHUTDOWN_DRAIN")
        #expect(error?.description.contains("FAULTLINE_SHUTDOWN_GRACE") == true)
    }

    @Test(arguments: [
        ("FAULTLINE_HTTP_PORT", "http"), ("FAULTLINE_HTTP_PORT", "70000"), ("FAULTLINE_DATABASE_POOL_SIZE", "0"),
        ("FAULTLINE_LOG_LEVEL", "loud"), ("FAULTLINE_LOG_FORMAT", "xml"), ("FAULTLINE_MIGRATE", "maybe"),
        ("FAULTLINE_SHUTDOWN_GRACE", "soon"), ("FAULTLINE_SHUTDOWN_GRACE", "-5s"), ("FAULTLINE_KAFKA_BROKERS", "nohost"),
        ("FAULTLINE_KAFKA_BROKERS", ""), ("FAULTLINE_KAFKA_TOPIC", "bad topic!"), ("FAULTLINE_KAFKA_GROUP", ""),
        ("FAULTLINE_DATABASE_URL", "mysql://root@localhost/db"), ("FAULTLINE_MIGRATIONS_DIR", "/nonexistent"),
        ("FAULTLINE_KAFKA_", "x"), ("FAULTLINE_ADMIN_TOKEN", "short"), ("FAULTLINE_ADMIN_TOKEN", "has a space in it, long enough"),
        ("FAULTLINE_API_CACHE_TTL", "5m"), ("FAULTLINE_HTTP_EVENT_LOOPS", "65"), ("FAULTLINE_HTTP_EVENT_LOOPS", "-1"), ("FAULTLINE_SHUTDOWN_DRAIN", "2m"), ("FAULTLINE_SHUTDOWN_DRAIN", "later"),
    ])
    func badValuesNameTheirVariable(variable: String, value: String) {
        let error = #expect(throws: ConfigurationError.self) {
            try FaultlineConfiguration.fromEnvironment([variable: value])
        }
        #expect(error?.variable == variable)
        #expect(error?.description.hasPrefix(variable + ": ") == true)
    }

    @Test func passesOtherKafkaVariablesToLibrdkafkaAndKeepsSecretsOutOfTheSummary() throws {
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_DATABASE_URL": "postgres://app:db-secret@db/errors",
            "FAULTLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "FAULTLINE_KAFKA_SASL_MECHANISM": "PLAIN",
            "FAULTLINE_KAFKA_SASL_USERNAME": "$ConnectionString",
            "FAULTLINE_KAFKA_SASL_PASSWORD": "Endpoint=sb://ns/;SharedAccessKey=kafka-secret",
        ])
        #expect(configuration.kafkaProperties == [
            "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "$ConnectionString",
            "sasl.password": "Endpoint=sb://ns/;SharedAccessKey=kafka-secret",
        ])
        let summary = configuration.redactedSummary.map { "\($0)=\($1)" }.joined(separator: " ")
        #expect(!summary.contains("kafka-secret"))
        #expect(!summary.contains("db-secret"))
        #expect(summary.contains("security.protocol=SASL_SSL"))
    }

    @Test func ignoresKubernetesServiceLinksAndWarnsOfTypos() throws {
        var warnings: [String] = []
        let configuration = try FaultlineConfiguration.fromEnvironment([
            "FAULTLINE_SERVICE_HOST": "10.0.0.1", "FAULTLINE_SERVICE_PORT": "8080", "FAULTLINE_SERVICE_PORT_HTTP": "8080",
            "FAULTLINE_PORT": "tcp://10.0.0.1:8080", "FAULTLINE_PORT_8080_TCP": "tcp://10.0.0.1:8080",
            "FAULTLINE_PORT_8080_TCP_ADDR": "10.0.0.1",
            "FAULTLINE_KAFKA_SERVICE_HOST": "10.0.0.2", "FAULTLINE_KAFKA_PORT": "tcp://10.0.0.2:9092",
            "FAULTLINE_KAFKA_PORT_9092_TCP_PROTO": "tcp",
            "FAULTLINE_DATABSE_URL": "postgres://typo",
        ]) { warnings.append($0) }
        #expect(configuration.kafkaProperties.isEmpty)
        #expect(warnings == ["FAULTLINE_DATABSE_URL is not a Faultline setting and is ignored (did you mean FAULTLINE_DATABASE_URL?)"])
        var far: [String] = []
        _ = try FaultlineConfiguration.fromEnvironment(["FAULTLINE_NOTHING_LIKE_IT": "1"]) { far.append($0) }
        #expect(far == ["FAULTLINE_NOTHING_LIKE_IT is not a Faultline setting and is ignored"])
    }

    /// A misspelt Kafka setting falls under the librdkafka pass-through; librdkafka's refusal is
    /// raised while the configuration is read (before any migration or connection), naming
    /// the variable and the setting it was probably meant to be.
    @Test func aMisspeltKafkaSettingIsRefusedAtOnceWithTheNearestName() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try FaultlineConfiguration.fromEnvironment(["FAULTLINE_KAFKA_BROKER": "kafka:9092"])
        }
        #expect(error?.variable == "FAULTLINE_KAFKA_BROKER")
        #expect(error?.reason.contains("did you mean FAULTLINE_KAFKA_BROKERS?") == true, "\(String(describing: error))")
        let range = #expect(throws: ConfigurationError.self) {
            try FaultlineConfiguration.fromEnvironment(["FAULTLINE_KAFKA_FETCH_WAIT_MAX_MS": "-5"])
        }
        #expect(range?.variable == "FAULTLINE_KAFKA_FETCH_WAIT_MAX_MS")
        #expect(FaultlineConfiguration.nearestSetting(to: "FAULTLINE_HTTP_PORTS") == "FAULTLINE_HTTP_PORT")
    }

    @Test func durations() throws {
        #expect(try parseDuration("X", "500ms") == .milliseconds(500))
        #expect(try parseDuration("X", "30s") == .seconds(30))
        #expect(try parseDuration("X", "2m") == .seconds(120))
        #expect(try parseDuration("X", "1h") == .seconds(3600))
        #expect(try parseDuration("X", "15") == .seconds(15))
        #expect(throws: ConfigurationError.self) { try parseDuration("X", "2d") }
    }
}

@Suite struct DocumentationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func configurationReferenceMatchesTheCode() throws {
        let documented = try String(contentsOf: Self.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        #expect(documented == ConfigurationReference.markdown(), "regenerate with: faultline config > docs/configuration.md")
    }

    @Test func everyDocumentedVariableIsReadAndEveryReadVariableIsDocumented() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let reference = ConfigurationReference.markdown()
        for setting in FaultlineConfiguration.settings {
            #expect(reference.contains("`\(setting.name)`"))
        }
        // Variables README mentions must exist.
        let mentioned = readme.matches(of: /FAULTLINE_[A-Z_]+/).map { String($0.output) }
        let known = Set(FaultlineConfiguration.settings.map(\.name))
        for name in mentioned where !name.hasPrefix(FaultlineConfiguration.kafkaPassthroughPrefix) || known.contains(name) {
            #expect(known.contains(name), "README mentions \(name), which Faultline does not read")
        }
    }

    @Test func migrationsFolderIsFoundFromTheSourceTree() throws {
        let directory = try ResourceLocator.migrations(configured: nil)
        #expect(FileManager.default.fileExists(atPath: directory + "/0001_deployments.sql"))
    }
}
