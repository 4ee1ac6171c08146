-- The W3C traceparent of the span that scheduled an execution: its attempts, wherever they
-- run (another worker, after a restart, a retry), are children of that span in one trace.
-- Empty when tracing is off.
ALTER TABLE executions ADD COLUMN trace_context text NOT NULL DEFAULT '';
