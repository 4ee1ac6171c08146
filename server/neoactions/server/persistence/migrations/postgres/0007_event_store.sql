-- The event store's tools: replays, background replay jobs and per-tenant retention.

-- an execution created by a replay names the event it replays; one per (event, action)
ALTER TABLE executions ADD COLUMN replay_of uuid;
CREATE UNIQUE INDEX executions_replay ON executions (replay_of, action_id) WHERE replay_of IS NOT NULL;

-- a replay running in the background: what it replays (spec) and how far it got (progress)
CREATE TABLE replay_jobs (
    id          uuid PRIMARY KEY,
    state       text NOT NULL,
    spec        jsonb NOT NULL,
    progress    jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX replay_jobs_created ON replay_jobs (created_at, id);

-- the tenant's retention policy: one row; 0 seconds keeps forever
CREATE TABLE retention_policy (
    singleton          integer PRIMARY KEY CHECK (singleton = 1),
    events_seconds     bigint NOT NULL DEFAULT 0,
    executions_seconds bigint NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL
);
-- retention removes finished executions by age
CREATE INDEX executions_finished ON executions (finished_at) WHERE finished_at IS NOT NULL;
-- retention deletes the dedup keys of the events it deletes (a redelivery is then new)
CREATE INDEX event_dedup_event ON event_dedup (event_id);
