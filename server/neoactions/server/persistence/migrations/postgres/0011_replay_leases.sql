-- A replay job survives its process: the process running it holds a lease on the job's row,
-- renewed with every page's progress, and records where to go on (resume_after, the last
-- event read as "time µs:id"). A running job whose lease expired is taken over by any process.
ALTER TABLE replay_jobs ADD COLUMN owner text NOT NULL DEFAULT '';
ALTER TABLE replay_jobs ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE replay_jobs ADD COLUMN resume_after text NOT NULL DEFAULT '';
CREATE INDEX replay_jobs_running ON replay_jobs (lease_expires_at) WHERE state = 'running';
