-- Workflow runs (executions of the `workflow` handler type): one row per step, and per item
-- of a for_each step (idx >= 0; the step itself is idx -1). A row is written when its step
-- starts (with the id of the child execution it starts) and when it ends (with its output):
-- a run driven again after a crash finds every completed step's result there.
CREATE TABLE workflow_steps (
    run_id      text NOT NULL,
    step        text NOT NULL,
    idx         integer NOT NULL,
    status      text NOT NULL,
    child_id    text NOT NULL DEFAULT '',
    attempts    integer NOT NULL DEFAULT 0,
    output      jsonb,
    error       jsonb,
    started_at  timestamptz,
    finished_at timestamptz,
    wake_at     timestamptz,
    -- a waiting wait_for_event: its rendered event types and conditions (the matcher's wait index)
    wait        jsonb,
    PRIMARY KEY (run_id, step, idx)
);
CREATE INDEX workflow_steps_event_waits ON workflow_steps (run_id) WHERE status = 'waiting' AND wait IS NOT NULL;

-- A run's controls: paused runs finish the steps in flight and start no new ones.
CREATE TABLE workflow_runs (
    run_id     text PRIMARY KEY,
    paused     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL
);
