-- The partner-data importer (see migrations/postgres). SQLite dialect: UUIDs as BLOB (as sqlx binds them), dates
-- and times as TEXT.

CREATE TABLE import_runs (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    feed            TEXT NOT NULL,
    source          TEXT NOT NULL,
    feed_date       TEXT,
    content_sha256  TEXT,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'skipped')),
    dry_run         INTEGER NOT NULL DEFAULT 0,
    rows_read       INTEGER NOT NULL DEFAULT 0,
    rows_inserted   INTEGER NOT NULL DEFAULT 0,
    rows_updated    INTEGER NOT NULL DEFAULT 0,
    rows_deleted    INTEGER NOT NULL DEFAULT 0,
    rows_rejected   INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    header          TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
);
CREATE INDEX import_runs_recent ON import_runs (created_at DESC);
CREATE INDEX import_runs_content ON import_runs (tenant_id, feed, content_sha256) WHERE status = 'succeeded';

CREATE TABLE import_rejects (
    run_id      BLOB NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    line        INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    column_name TEXT,
    value       TEXT,
    reason      TEXT NOT NULL,
    raw         TEXT NOT NULL,
    PRIMARY KEY (run_id, line, seq)
);

CREATE TABLE feed_columns (
    feed        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    in_key      INTEGER NOT NULL,
    PRIMARY KEY (feed, name)
);

-- Which feeds each tenant takes: cron fetches a subscribed feed on its schedule.
CREATE TABLE tenant_feeds (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    feed        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, feed)
);
