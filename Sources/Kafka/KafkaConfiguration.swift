import CRdKafka

/// librdkafka configuration: the bootstrap servers and any other librdkafka property.
///
/// Properties are passed to librdkafka unchanged, so SASL/SSL (Azure Event Hubs' Kafka endpoint,
/// Confluent Cloud, Apache Kafka with TLS) is a matter of configuration:
///
/// ```swift
/// var config = KafkaConfiguration(bootstrapServers: "ns.servicebus.windows.net:9093")
/// config.properties["security.protocol"] = "SASL_SSL"
/// config.properties["sasl.mechanism"] = "PLAIN"
/// ```
public struct KafkaConfiguration: Sendable, CustomStringConvertible {
    /// Comma-separated `host:port` list.
    public var bootstrapServers: String
    /// librdkafka properties (`name` → `value`), applied after Faultline's own defaults.
    public var properties: [String: String]

    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    /// Whether a property's value must never be shown (passwords, keys, tokens).
    public static func isSecret(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return ["password", "secret", "jaas", "token", "key.pem", "keystore", "private", "credential"]
            .contains { lowered.contains($0) }
            || lowered.hasSuffix(".key") || lowered == "ssl.key.password"
    }

    /// The properties with secrets replaced by `<redacted>`, safe to log.
    public var redactedProperties: [String: String] {
        properties.reduce(into: [:]) { result, entry in
            result[entry.key] = Self.isSecret(entry.key) ? "<redacted>" : entry.value
        }
    }

    public var description: String {
        let props = redactedProperties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "KafkaConfiguration(bootstrap.servers=\(bootstrapServers)"
            + (props.isEmpty ? "" : ", " + props.joined(separator: ", ")) + ")"
    }

    /// Builds a `rd_kafka_conf_t` with `defaults`, then the bootstrap servers, then
    /// ``properties``. The caller owns the result until `rd_kafka_new` succeeds.
    ///
    /// - Throws: ``KafkaError`` with code ``KafkaError/Code/configuration`` naming the property
    ///   (never its value) when librdkafka refuses it.
    func makeConf(defaults: [(String, String)]) throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(.configuration, "rd_kafka_conf_new failed", operation: "configure")
        }
        do {
            var all = defaults
            all.append(("bootstrap.servers", bootstrapServers))
            all += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            for (name, value) in all {
                try Self.set(conf, name, value)
            }
            return conf
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }
    }

    /// Why librdkafka refuses `name = value` (an unknown property, a value out of range), or
    /// `nil` when it takes it. Checked on a configuration of its own, so nothing is created.
    public static func problem(property name: String, value: String) -> String? {
        guard let conf = rd_kafka_conf_new() else { return "librdkafka could not make a configuration" }
        defer { rd_kafka_conf_destroy(conf) }
        var errstr = [CChar](repeating: 0, count: 512)
        guard rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK else { return nil }
        return isSecret(name) ? "invalid value" : String(errorBuffer: errstr)
    }

    static func set(_ conf: OpaquePointer, _ name: String, _ value: String) throws {
        var errstr = [CChar](repeating: 0, count: 512)
        let result = rd_kafka_conf_set(conf, name, value, &errstr, errstr.count)
        guard result == RD_KAFKA_CONF_OK else {
            // librdkafka's message may quote the value; keep secrets out of it.
            let reason = isSecret(name) ? "invalid value" : String(errorBuffer: errstr)
            throw KafkaError(.configuration, "property \(name): \(reason)", operation: "configure")
        }
    }
}
