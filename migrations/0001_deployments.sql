-- The deployments registry: which version of a service ran in an environment from when.
-- Fed by POST /v1/deployments and the `deployments` topic; events are enriched from it.
CREATE TABLE deployments (
    id          bigserial PRIMARY KEY,
    service     text        NOT NULL CHECK (length(service) BETWEEN 1 AND 200),
    environment text        NOT NULL CHECK (length(environment) BETWEEN 1 AND 100),
    version     text        NOT NULL CHECK (length(version) BETWEEN 1 AND 100),
    commit_sha  text        CHECK (length(commit_sha) <= 100),
    region      text        CHECK (length(region) <= 100),
    started_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- The same rollout reported twice (by the API and the topic) is one row.
    UNIQUE (service, environment, version, started_at)
);

-- "Which deployment was active for (service, environment) at time t" is the hot lookup.
CREATE INDEX deployments_lookup ON deployments (service, environment, started_at DESC);
