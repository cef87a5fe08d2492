-- Messages that could not be ingested, kept with their original bytes and the reason.
-- The same message reaching the dead-letter path twice (a replay) is one row.
CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    source_topic    text        NOT NULL,
    source_partition integer    NOT NULL,
    source_offset   bigint      NOT NULL,
    message_key     bytea,
    message_value   bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '[]',
    reason          text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    UNIQUE (source_topic, source_partition, source_offset)
);

CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);
