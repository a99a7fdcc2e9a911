-- Cron for operators: each schedule as the nodes running it declare it (pattern and the job it enqueues), whether
-- an operator paused it, when it is next due, and the job its last tick enqueued.
CREATE TABLE cron_schedules (
    name          TEXT PRIMARY KEY,
    pattern       TEXT NOT NULL,
    queue         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    exclusive     BOOLEAN NOT NULL,
    paused_at     TEXT,
    next_at       TEXT,
    last_job_id   BLOB,
    updated_at    TEXT NOT NULL
);
