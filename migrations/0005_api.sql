-- What the REST API needs: API keys (stored only as SHA-256 hashes), webhook subscriptions,
-- and indexes for the API's sorted and filtered lists.

-- API keys. The key itself is shown once when it is created; only its SHA-256 is kept.
CREATE TABLE api_keys (
    id             bigserial   PRIMARY KEY,
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_hash       bytea       NOT NULL UNIQUE,
    scopes         text[]      NOT NULL CHECK (scopes <@ ARRAY['read', 'write', 'admin'] AND cardinality(scopes) > 0),
    -- The key sees only services whose names start with this prefix (NULL: every service).
    service_prefix text        CHECK (length(service_prefix) BETWEEN 1 AND 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz
);

-- Webhook subscriptions. The secret signs deliveries, so it is kept as given; the API never
-- returns it.
CREATE TABLE webhooks (
    id         bigserial   PRIMARY KEY,
    url        text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    secret     text        CHECK (length(secret) <= 256),
    format     text        NOT NULL DEFAULT 'generic' CHECK (format IN ('generic', 'slack', 'teams')),
    filters    jsonb       NOT NULL DEFAULT '{}',
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The API's times: RFC 3339 in UTC with microseconds (`2026-11-22T04:50:32.123456Z`). Also the
-- text of pagination cursors, so a cursor compares exactly.
CREATE FUNCTION api_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Group lists sorted by each key, with the fingerprint as the tie-breaker of the cursor.
CREATE INDEX groups_last_seen ON groups (last_seen, fingerprint);
CREATE INDEX groups_first_seen ON groups (first_seen, fingerprint);
CREATE INDEX groups_event_count ON groups (event_count, fingerprint);
CREATE INDEX deployments_recent ON deployments (started_at DESC, id DESC);
CREATE INDEX predictions_service ON predictions (service, made_at DESC);
