-- One tenant's data, created in the tenant's own schema (the migrator sets search_path).

CREATE TABLE events (
    id              uuid PRIMARY KEY,
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
);
CREATE INDEX events_time ON events (time, id);
CREATE INDEX events_type_time ON events (type, time, id);
CREATE INDEX events_correlation_time ON events (correlation_id, time, id);
CREATE INDEX events_status_time ON events (status, time, id);

CREATE TABLE actions (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    current_version integer NOT NULL,
    enabled         boolean NOT NULL,
    deleted         boolean NOT NULL DEFAULT FALSE,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);
-- a name is unique among live actions only: a deleted name can be created again
CREATE UNIQUE INDEX actions_live_name ON actions (name) WHERE NOT deleted;

CREATE TABLE action_versions (
    action_id  uuid NOT NULL REFERENCES actions (id),
    version    integer NOT NULL,
    spec       jsonb NOT NULL,
    enabled    boolean NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (action_id, version)
);

CREATE TABLE executions (
    id                  uuid PRIMARY KEY,
    action_id           uuid,
    action_name         text NOT NULL DEFAULT '',
    action_version      integer NOT NULL DEFAULT 0,
    handler_type        text NOT NULL DEFAULT '',
    event_id            uuid,
    status              text NOT NULL,
    input               jsonb,
    output              jsonb,
    error               jsonb,
    idempotency_key     text NOT NULL DEFAULT '',
    correlation_id      text NOT NULL DEFAULT '',
    causation_id        text NOT NULL DEFAULT '',
    parent_execution_id uuid,
    priority            smallint NOT NULL,
    mode                text NOT NULL,
    attempt_count       integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    next_attempt_at     timestamptz,
    inline              jsonb
);
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_event ON executions (event_id);
CREATE INDEX executions_action_created ON executions (action_name, created_at, id);
CREATE INDEX executions_correlation_created ON executions (correlation_id, created_at, id);
CREATE INDEX executions_status_created ON executions (status, created_at, id);
-- recovery after a crash reads only these; the partial index stays as small as the backlog
CREATE INDEX executions_unfinished ON executions (created_at, id)
    WHERE status IN ('pending', 'scheduled', 'running');

CREATE TABLE attempts (
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    number       integer NOT NULL,
    runner       text NOT NULL,
    status       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    output       jsonb,
    error        jsonb,
    PRIMARY KEY (execution_id, number)
);
