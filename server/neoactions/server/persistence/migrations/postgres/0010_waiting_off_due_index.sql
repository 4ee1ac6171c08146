-- Runs waiting for a timer or an event (workflows) leave the claim's priority-ordered index:
-- with 0003 every claim walked past all of them (10,000 waiting runs: 10,000 index entries
-- read per claim) before it found a due execution. Waiting rows are due only at their time,
-- so they get an index of their own, by that time: the claim reads the ready work in
-- priority order from executions_due and the waiting runs whose time came from
-- executions_wake_due (a range, empty until one is due), and merges the two.
DROP INDEX executions_due;
CREATE INDEX executions_due ON executions (priority DESC, created_at, id)
    WHERE status IN ('pending', 'scheduled', 'running');
CREATE INDEX executions_wake_due ON executions (next_attempt_at)
    WHERE status = 'waiting' AND next_attempt_at IS NOT NULL;
