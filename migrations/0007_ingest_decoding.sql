-- Offsets a consumer is decoding, recorded (and committed) before it decodes them, so that a
-- message that kills the process while it is decoded cannot kill every replica in turn.
--
-- One row per partition. `current_offset` is NULL while a whole range is decoded at once; a
-- member that finds a row left by another (which died, or lost the partition mid-batch)
-- decodes that range one message at a time, recording each offset first. A message that was
-- being decoded alone when a process died is dead-lettered (`crashed-decoder`) instead of
-- decoded again. `owner` is a random id per process; the nil UUID marks a range left to
-- whichever member reads it next.
CREATE TABLE ingest_decoding (
    topic          text        NOT NULL,
    kafka_partition integer    NOT NULL,
    first_offset   bigint      NOT NULL,
    last_offset    bigint      NOT NULL,
    current_offset bigint,
    owner          uuid        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);
