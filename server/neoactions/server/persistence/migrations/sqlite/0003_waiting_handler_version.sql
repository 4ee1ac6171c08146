-- An attempt may suspend its execution ('waiting': a workflow waiting for a time or an event).
-- It is unfinished, so the partial indexes of unfinished work cover it too.
DROP INDEX executions_due;
CREATE INDEX executions_due ON executions (priority DESC, created_at, id)
    WHERE status IN ('pending', 'scheduled', 'running', 'waiting');
DROP INDEX executions_unfinished;
CREATE INDEX executions_unfinished ON executions (created_at, id)
    WHERE status IN ('pending', 'scheduled', 'running', 'waiting');

-- the handler type's version an execution resolved at its first attempt ('' for built-in types)
ALTER TABLE executions ADD COLUMN handler_version text NOT NULL DEFAULT '';
