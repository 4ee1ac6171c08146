-- Durable scheduling shared by processes (leases), the queued-mode outbox,
-- dead-letter bookkeeping and event deduplication. Times are INTEGER microseconds (UTC).

-- A process owns an unfinished execution while lease_expires_at is in the future;
-- an expired lease makes the execution claimable by any process.
ALTER TABLE executions ADD COLUMN lease_owner TEXT;
ALTER TABLE executions ADD COLUMN lease_expires_at INTEGER;
-- queued mode: when the execution was last put on the work queue (NULL = not yet: the outbox)
ALTER TABLE executions ADD COLUMN queued_at INTEGER;
-- a requeue starts a new attempt series: the retry budget and max_age count from here
ALTER TABLE executions ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN series_started_at INTEGER;
-- the last error's type, for dead-letter filters
ALTER TABLE executions ADD COLUMN error_type TEXT NOT NULL DEFAULT '';

-- claims read due work highest priority first; the partial index is as small as the backlog
CREATE INDEX executions_due ON executions (priority DESC, created_at, id)
    WHERE status IN ('pending', 'scheduled', 'running');

-- one row per deduplication key (idempotency key, or CloudEvents source + id) within the window
CREATE TABLE event_dedup (
    key        TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX event_dedup_created ON event_dedup (created_at);
