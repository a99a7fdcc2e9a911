-- The durable job queue (background work: emails, the sentinel, cron-fired jobs).
-- A job is 'queued' until a worker claims it ('running', leased to that worker until locked_until), then
-- 'done', or back to 'queued' with a later run_at to retry, or 'failed' for good after max_attempts.
-- A 'running' job whose lease has lapsed (its worker died) is claimable again: handlers are idempotent.
CREATE TABLE jobs (
    id            BLOB PRIMARY KEY,
    queue         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL CHECK (max_attempts > 0),
    run_at        TEXT NOT NULL,
    unique_key    TEXT,
    locked_by     TEXT,
    locked_until  TEXT,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    finished_at   TEXT
);
-- De-duplication: one unfinished job per unique key (a finished one does not block a new run).
CREATE UNIQUE INDEX jobs_unique_unfinished ON jobs (unique_key) WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');
-- The claim query's path.
CREATE INDEX jobs_claimable ON jobs (queue, priority DESC, run_at) WHERE state IN ('queued', 'running');
-- Pruning finished jobs.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'failed');
