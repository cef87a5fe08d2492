-- Error events, partitioned by day of occurrence; old days are dropped whole (retention).
-- The key includes occurred_at because a partitioned table's unique keys must hold the
-- partition key; an event keeps its time when it is replayed, so a replay still conflicts.
CREATE TABLE events (
    event_id             uuid        NOT NULL,
    occurred_at          timestamptz NOT NULL,
    received_at          timestamptz NOT NULL DEFAULT now(),
    fingerprint          text        NOT NULL,
    service              text        NOT NULL,
    environment          text        NOT NULL,
    version              text,
    severity             text        NOT NULL,
    error_type           text,
    message              text        NOT NULL,
    stacktrace           text,
    error_code           text,
    http_status          smallint,
    trace_id             text,
    span_id              text,
    host                 text,
    pod                  text,
    namespace            text,
    region               text,
    commit_sha           text,
    deployment_id        bigint,
    deployed_at          timestamptz,
    seconds_since_deploy integer,
    attributes           jsonb,
    format               text        NOT NULL,
    source_topic         text        NOT NULL,
    source_partition     integer     NOT NULL,
    source_offset        bigint      NOT NULL,
    PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- A group's events, newest first.
CREATE INDEX events_fingerprint ON events (fingerprint, occurred_at);

-- Groups ("issues"): one per fingerprint, counted from the rows really inserted.
CREATE TABLE groups (
    fingerprint     text        PRIMARY KEY,
    service         text        NOT NULL,
    error_type      text,
    template        text        NOT NULL,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    event_count     bigint      NOT NULL,
    first_version   text,
    last_version    text,
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'ignored')),
    status_changed_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX groups_service_last_seen ON groups (service, last_seen DESC);

-- Per-minute counts per group: the series spike detection reads.
CREATE TABLE event_counts (
    fingerprint text        NOT NULL,
    service     text        NOT NULL,
    bucket      timestamptz NOT NULL,
    count       bigint      NOT NULL,
    PRIMARY KEY (fingerprint, bucket)
);
CREATE INDEX event_counts_service_bucket ON event_counts (service, bucket);
