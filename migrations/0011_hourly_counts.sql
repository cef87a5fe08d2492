-- Per-hour counts per group: the per-minute counts of `event_counts` older than two days, summed
-- into the hour they fall in (UTC), and deleted from `event_counts` in the same statement. The
-- analysis needs minutes for a day and two hours only; the API's series read both tables.
-- Rows older than the retention period are deleted, as the events' partitions are dropped.
CREATE TABLE event_counts_hourly (
    fingerprint text        NOT NULL,
    service     text        NOT NULL,
    hour        timestamptz NOT NULL,
    count       bigint      NOT NULL,
    PRIMARY KEY (fingerprint, hour)
);
CREATE INDEX event_counts_hourly_service_hour ON event_counts_hourly (service, hour);
CREATE INDEX event_counts_hourly_hour ON event_counts_hourly (hour);

-- Per-hour counts per service, written by ingest with the per-minute counts: the services
-- summary sums a day of them (and the minutes of the hour it starts in) instead of a day of
-- every group's minutes. Deleted with the hourly counts.
CREATE TABLE service_counts (
    service text        NOT NULL,
    hour    timestamptz NOT NULL,
    count   bigint      NOT NULL,
    PRIMARY KEY (service, hour)
);
CREATE INDEX service_counts_hour ON service_counts (hour);
INSERT INTO service_counts (service, hour, count)
SELECT service, to_timestamp(floor(extract(epoch FROM bucket) / 3600) * 3600), sum(count)
FROM event_counts WHERE bucket >= now() - interval '26 hours' GROUP BY 1, 2;
