-- One tenant's data. Times are INTEGER microseconds since the Unix epoch (UTC) so
-- they sort and compare exactly; JSON columns hold JSON text; ids are canonical UUID text.

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    source          TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL DEFAULT '',
    aggregate_type  TEXT NOT NULL DEFAULT '',
    aggregate_id    TEXT NOT NULL DEFAULT '',
    time            INTEGER NOT NULL,
    data            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    correlation_id  TEXT NOT NULL DEFAULT '',
    causation_id    TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    received_at     INTEGER NOT NULL
);
CREATE INDEX events_time ON events (time, id);
CREATE INDEX events_type_time ON events (type, time, id);
CREATE INDEX events_correlation_time ON events (correlation_id, time, id);
CREATE INDEX events_status_time ON events (status, time, id);

CREATE TABLE actions (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    enabled         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
-- a name is unique among live actions only: a deleted name can be created again
CREATE UNIQUE INDEX actions_live_name ON actions (name) WHERE deleted = FALSE;

CREATE TABLE action_versions (
    action_id  TEXT NOT NULL REFERENCES actions (id),
    version    INTEGER NOT NULL,
    spec       TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (action_id, version)
);

CREATE TABLE executions (
    id                  TEXT PRIMARY KEY,
    action_id           TEXT,
    action_name         TEXT NOT NULL DEFAULT '',
    action_version      INTEGER NOT NULL DEFAULT 0,
    handler_type        TEXT NOT NULL DEFAULT '',
    event_id            TEXT,
    status              TEXT NOT NULL,
    input               TEXT,
    output              TEXT,
    error               TEXT,
    idempotency_key     TEXT NOT NULL DEFAULT '',
    correlation_id      TEXT NOT NULL DEFAULT '',
    causation_id        TEXT NOT NULL DEFAULT '',
    parent_execution_id TEXT,
    priority            INTEGER NOT NULL,
    mode                TEXT NOT NULL,
    attempt_count       INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    next_attempt_at     INTEGER,
    inline              TEXT
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
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    runner       TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    output       TEXT,
    error        TEXT,
    PRIMARY KEY (execution_id, number)
);
