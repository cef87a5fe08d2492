import Domain
import Foundation
import Postgres

public enum DeploymentStore {
    /// Inserts a deployment; `false` when the same rollout is already recorded.
    ///
    /// Kafka does not order one topic against another, so events of a rollout may be stored
    /// before its deployment record arrives. A new deployment therefore also enriches the
    /// stored events that belong to it and have no deployment yet: those that name its version,
    /// and those naming none that happened before the next rollout.
    public static func insert(_ d: Deployment, on connection: PostgresConnection) throws -> Bool {
        let inserted = try connection.query("""
            INSERT INTO deployments (service, environment, version, commit_sha, region, started_at)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id
            """, [.text(d.service), .text(d.environment), .text(d.version), .optional(d.commit), .optional(d.region),
                  .timestamp(d.startedAt)])
        guard let id = try inserted.first?.int(0) else { return false }
        try connection.query("""
            WITH d AS (SELECT * FROM deployments WHERE id = $1),
            next AS (
                SELECT min(n.started_at) AS until FROM deployments n, d
                WHERE n.service = d.service AND n.environment = d.environment AND n.started_at > d.started_at
            )
            UPDATE events e SET
                deployment_id = d.id, commit_sha = d.commit_sha, deployed_at = d.started_at,
                version = coalesce(e.version, d.version), region = coalesce(e.region, d.region),
                seconds_since_deploy = greatest(0, extract(epoch FROM e.occurred_at - d.started_at))::integer
            FROM d, next
            WHERE e.deployment_id IS NULL AND e.service = d.service AND e.environment = d.environment
              AND e.occurred_at >= d.started_at
              AND (e.version = d.version OR (e.version IS NULL AND (next.until IS NULL OR e.occurred_at < next.until)))
            """, [.int(Int64(id))])
        return true
    }

    /// Deployments with an id above `id`, oldest id first.
    public static func load(after id: Int64, on connection: PostgresConnection) throws -> [Deployment] {
        try connection.query("""
            SELECT id, service, environment, version, commit_sha, region, started_at
            FROM deployments WHERE id > $1 ORDER BY id
            """, [.int(id)]).rows.map { row in
            Deployment(id: Int64(try row.int(0)), service: try row.string(1), environment: try row.string(2),
                       version: try row.string(3), commit: row.optionalString(4), region: row.optionalString(5),
                       startedAt: try row.date(6))
        }
    }
}
