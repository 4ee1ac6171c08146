-- Workflow runs (executions of the `workflow` handler type): one row per step, and per item
-- of a for_each step (idx >= 0; the step itself is idx -1). A row is written when its step
-- starts (with the id of the child execution it starts) and when it ends (with its output):
-- a run driven again after a crash finds every completed step's result there.
CREATE TABLE workflow_steps (
    run_id      TEXT NOT NULL,
    step        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    status      TEXT NOT NULL,
    child_id    TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    output      TEXT,
    error       TEXT,
    started_at  INTEGER,
    finished_at INTEGER,
    wake_at     INTEGER,
    -- a waiting wait_for_event: its rendered event types and conditions (the matcher's wait index)
    wait        TEXT,
    PRIMARY KEY (run_id, step, idx)
);
CREATE INDEX workflow_steps_event_waits ON workflow_steps (run_id) WHERE status = 'waiting' AND wait IS NOT NULL;

-- A run's controls: paused runs finish the steps in flight and start no new ones.
CREATE TABLE workflow_runs (
    run_id     TEXT PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
