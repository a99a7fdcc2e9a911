-- The failed jobs, per queue: counted exactly on the dashboard however many jobs the table holds (a failure is
-- rare, so the index costs the queue's hot path nothing).
CREATE INDEX jobs_failed ON jobs (queue) WHERE state = 'failed';
