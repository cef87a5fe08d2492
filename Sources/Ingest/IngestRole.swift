import Foundation
import Kafka
import Logging
import Postgres
import ServiceLifecycle
import Storage

/// What a replica with the `ingest` role runs: the consumer loop, the refresher that keeps the
/// loop's deployments in step with the database, and the retention of old partitions.
public struct IngestRole: Sendable {
    public let ingest: IngestService
    public let services: [any Service]

    /// - Parameter deployments: the process's deployments, shared with the analysis when it
    ///   runs there too.
    public init(configuration: IngestConfiguration, pool: PostgresPool, producer: KafkaProducer, logger: Logger,
                status: IngestStatus = IngestStatus(), deployments: DeploymentCache = DeploymentCache()) {
        ingest = IngestService(configuration: configuration, pool: pool, producer: producer, logger: logger,
                               status: status, deployments: deployments)
        services = [
            ingest,
            DeploymentRefresher(cache: deployments, pool: pool, every: configuration.deploymentsRefresh, logger: logger),
            PartitionRetention(days: configuration.retentionDays, pool: pool, logger: logger),
        ]
    }
}

/// Re-reads the deployments recorded through the API (or by another replica) into the cache,
/// every `interval`. While the database is unreachable events are enriched from what is known;
/// the failure is logged once, and its end.
public final class DeploymentRefresher: Service {
    private let cache: DeploymentCache
    private let pool: PostgresPool
    private let interval: Duration
    private let logger: Logger

    public init(cache: DeploymentCache, pool: PostgresPool, every interval: Duration, logger: Logger) {
        self.cache = cache
        self.pool = pool
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await pool.withConnection { [cache] in _ = try cache.refresh(on: $0) }
                if failing { logger.info("deployments are read again") }
                failing = false
            } catch {
                if !failing { logger.warning("deployments not re-read; events are enriched from those known", metadata: ["error": "\(error)"]) }
                failing = true
            }
            _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }
}

/// Drops the day partitions of `events` older than the retention, at start and every hour, on
/// one replica at a time (``AdvisoryLock/partitionRetention``). The decoder refuses events older
/// than the retention, so no event is written into a day that is dropped.
public final class PartitionRetention: Service {
    private let days: Int
    private let pool: PostgresPool
    private let interval: Duration
    private let logger: Logger

    public init(days: Int, pool: PostgresPool, every interval: Duration = .seconds(3600), logger: Logger) {
        self.days = days
        self.pool = pool
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await apply()
            _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }

    /// One pass; the partitions it dropped (none when another replica holds the lock).
    @discardableResult
    public func apply(now: Date = Date()) async -> [String] {
        do {
            let dropped = try await pool.withConnection { [days] connection in
                try AdvisoryLock.partitionRetention.ifFree(on: connection) {
                    try PartitionManager.dropOlderThan(days: days, now: now, on: connection)
                } ?? []
            }
            for name in dropped { logger.info("dropped expired partition", metadata: ["partition": "\(name)"]) }
            return dropped
        } catch {
            logger.warning("retention failed; tried again in an hour", metadata: ["error": "\(error)"])
            return []
        }
    }
}
