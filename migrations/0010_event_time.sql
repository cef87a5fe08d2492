-- How far event time is complete, per partition of the errors topic: the watermark the
-- analysis scores by. Ingest writes a partition's row in the transaction that stores a batch
-- of it, and marks the partitions it has caught up with every few seconds. A partition that
-- lags is complete up to the earliest event time of its last stored batch; one that is caught
-- up, up to when it was last read. NULL: lagging, with no event time known yet.
CREATE TABLE ingest_progress (
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    next_offset     bigint,
    complete_until  timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);

-- Minutes that gained events after the analysis had scored them (late data), per service, with
-- the events that arrived late. The analysis re-scores those services and deletes the rows it
-- has read (a row that gained events meanwhile stays for the next run).
CREATE TABLE late_counts (
    service text        NOT NULL,
    bucket  timestamptz NOT NULL,
    events  bigint      NOT NULL,
    PRIMARY KEY (service, bucket)
);
