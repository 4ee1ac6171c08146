-- Events become a table partitioned by week of their `time` (UTC, weeks start on Monday), so
-- retention drops whole weeks instead of deleting row by row (see docs/event-store.md).
--
-- A partitioned table's primary key must include the partition key: it is (id, time). An id
-- stays unique because ids are UUIDv7 made by the server (nothing re-inserts an event under
-- another time); lookups by id use that key's index (id first). No foreign key references
-- events. The partitions are named events_wYYYYMMDD (the Monday they start); events_default
-- takes any event no weekly partition covers (far past or future); the retention sweep creates
-- the coming weeks ahead (persistence/pg_partitions.py) and drops the weeks past the policy.
--
-- The existing rows are copied: weeks of the last year that hold events, and the current and
-- next two weeks, get a partition; older events go to events_default.

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned DROP CONSTRAINT events_pkey;
DROP INDEX events_time;
DROP INDEX events_type_time;
DROP INDEX events_correlation_time;
DROP INDEX events_status_time;

CREATE TABLE events (
    id              uuid NOT NULL,
    -- "C" collation: byte order, so prefix ranges on type patterns are exact and indexable
    type            text COLLATE "C" NOT NULL,
    source          text NOT NULL DEFAULT '',
    subject         text NOT NULL DEFAULT '',
    aggregate_type  text NOT NULL DEFAULT '',
    aggregate_id    text NOT NULL DEFAULT '',
    time            timestamptz NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    correlation_id  text NOT NULL DEFAULT '',
    causation_id    text NOT NULL DEFAULT '',
    idempotency_key text NOT NULL DEFAULT '',
    status          text NOT NULL,
    received_at     timestamptz NOT NULL
) PARTITION BY RANGE (time);

CREATE TABLE events_default PARTITION OF events DEFAULT;

DO $$
DECLARE
    -- weeks as UTC timestamps (without time zone), so a week is always 7 x 24 hours
    this_week timestamp := date_trunc('week', now() AT TIME ZONE 'UTC');
    week timestamp;
BEGIN
    FOR week IN
        SELECT DISTINCT date_trunc('week', time AT TIME ZONE 'UTC') FROM events_unpartitioned
        WHERE time >= (this_week - interval '52 weeks') AT TIME ZONE 'UTC'
          AND time < (this_week + interval '3 weeks') AT TIME ZONE 'UTC'
        UNION
        SELECT generate_series(this_week, this_week + interval '2 weeks', interval '1 week')
        ORDER BY 1
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            'events_w' || to_char(week, 'YYYYMMDD'),
            to_char(week, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
            to_char(week + interval '1 week', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
        );
    END LOOP;
END
$$;

INSERT INTO events (id, type, source, subject, aggregate_type, aggregate_id, time, data, metadata,
                    correlation_id, causation_id, idempotency_key, status, received_at)
SELECT id, type, source, subject, aggregate_type, aggregate_id, time, data, metadata,
       correlation_id, causation_id, idempotency_key, status, received_at
FROM events_unpartitioned;
DROP TABLE events_unpartitioned;

-- indexes after the copy (built once, not row by row); each is made on every partition
ALTER TABLE events ADD PRIMARY KEY (id, time);
CREATE INDEX events_time ON events (time, id);
CREATE INDEX events_type_time ON events (type, time, id);
CREATE INDEX events_correlation_time ON events (correlation_id, time, id);
CREATE INDEX events_status_time ON events (status, time, id);
