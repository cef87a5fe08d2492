-- What the analysis job learns and finds: mined templates, k-means clusters of groups, spikes,
-- forecasts of breaches, and insights with their recommended actions. One replica writes these
-- at a time (the analysis leader); every replica reads them.

-- Message templates mined from the groups' masked messages. Persisted so that every replica
-- and every restart resolves a message to the same template.
CREATE TABLE templates (
    id          bigint      PRIMARY KEY,
    template    text        NOT NULL,
    tokens      text[]      NOT NULL,
    group_count bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE groups
    -- The normalised top in-app frames, as fingerprinted (`a|b|c`), for clustering.
    ADD COLUMN top_frames text,
    -- The mined template this group's message belongs to.
    ADD COLUMN template_id bigint,
    -- The group this one folds into: the first group with the same service, error type and
    -- mined template (itself when it is that first one). Set by the analysis job.
    ADD COLUMN issue_fingerprint text,
    ADD COLUMN cluster_id bigint,
    -- The latest version seen when the group was resolved: later versions reopen it.
    ADD COLUMN resolved_in_version text,
    ADD COLUMN analyzed_at timestamptz;
-- The job's queue of groups it has not looked at yet.
CREATE INDEX groups_unanalyzed ON groups (first_seen) WHERE analyzed_at IS NULL;
CREATE INDEX groups_resolved ON groups (status_changed_at) WHERE status = 'resolved';
CREATE INDEX groups_cluster ON groups (cluster_id);

-- The job reads closed minutes of every series at once.
CREATE INDEX event_counts_bucket ON event_counts (bucket);

-- k-means clusters of groups; each training run is a new generation, the newest is current.
CREATE TABLE clusters (
    id          bigserial   PRIMARY KEY,
    generation  bigint      NOT NULL,
    label       text        NOT NULL,
    terms       text[]      NOT NULL,
    services    text[]      NOT NULL,
    group_count integer     NOT NULL,
    event_count bigint      NOT NULL,
    centroid    real[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clusters_generation ON clusters (generation DESC);

-- The more severe of two insight severities (an insight only ever grows more severe).
CREATE FUNCTION greatest_severity(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN array_position(ARRAY['info', 'warning', 'critical'], a)
                     >= array_position(ARRAY['info', 'warning', 'critical'], b) THEN a ELSE b END
$$;

-- Insights: what the analysis found, one row per occurrence (a spike episode, a new group, a
-- regression, a forecast breach, a cross-service cluster). `dedupe_key` makes the job's
-- writes idempotent: a rerun updates the insight instead of adding another.
CREATE TABLE insights (
    id               bigserial   PRIMARY KEY,
    dedupe_key       text        NOT NULL UNIQUE,
    kind             text        NOT NULL CHECK (kind IN ('spike', 'level_shift', 'new_group', 'regression',
                                                          'predicted_breach', 'cluster')),
    severity         text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged')),
    service          text,
    environment      text,
    fingerprint      text,
    cluster_id       bigint,
    version          text,
    previous_version text,
    title            text        NOT NULL,
    summary          text        NOT NULL,
    observed         double precision,
    expected         double precision,
    event_count      bigint,
    started_at       timestamptz NOT NULL,
    last_seen_at     timestamptz NOT NULL,
    details          jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz
);
CREATE INDEX insights_recent ON insights (created_at DESC, id DESC);
CREATE INDEX insights_service ON insights (service, created_at DESC);

-- Corrective actions for an insight, best first.
CREATE TABLE recommendations (
    insight_id bigint           NOT NULL REFERENCES insights ON DELETE CASCADE,
    position   integer          NOT NULL,
    rule_id    text             NOT NULL,
    action     text             NOT NULL,
    title      text             NOT NULL,
    confidence double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    evidence   jsonb            NOT NULL DEFAULT '[]',
    PRIMARY KEY (insight_id, position)
);

-- Every scored bucket that alerted: spikes and level shifts, per service or per group.
CREATE TABLE spikes (
    id          bigserial        PRIMARY KEY,
    series      text             NOT NULL,
    service     text             NOT NULL,
    fingerprint text,
    bucket      timestamptz      NOT NULL,
    kind        text             NOT NULL CHECK (kind IN ('spike', 'level_shift')),
    observed    double precision NOT NULL,
    expected    double precision NOT NULL,
    score       double precision NOT NULL,
    p_value     double precision NOT NULL,
    insight_id  bigint           REFERENCES insights ON DELETE SET NULL,
    detected_at timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (series, bucket)
);
CREATE INDEX spikes_recent ON spikes (bucket DESC);
CREATE INDEX spikes_service ON spikes (service, bucket DESC);

-- Forecasts that cross a threshold within the horizon; the newest per series is current.
CREATE TABLE predictions (
    id              bigserial        PRIMARY KEY,
    series          text             NOT NULL,
    service         text             NOT NULL,
    fingerprint     text,
    threshold       double precision NOT NULL,
    current_value   double precision NOT NULL,
    predicted_value double precision NOT NULL,
    breach_at       timestamptz      NOT NULL,
    made_at         timestamptz      NOT NULL,
    insight_id      bigint           REFERENCES insights ON DELETE SET NULL,
    UNIQUE (series, made_at)
);
CREATE INDEX predictions_recent ON predictions (made_at DESC);

-- Small facts the job keeps between runs (the last bucket it scored, the cluster generation).
CREATE TABLE analysis_state (
    key        text        PRIMARY KEY,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
