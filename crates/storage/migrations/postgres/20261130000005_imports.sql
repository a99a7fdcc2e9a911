-- The partner-data importer: every run recorded, every rejected row kept with its line as it was in the file,
-- and the columns each feed's table was built with (so a declaration change is checked against them).

CREATE TABLE import_runs (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants (id),
    feed            TEXT NOT NULL,
    source          TEXT NOT NULL,           -- the file's path, or the feed URL
    feed_date       DATE,                    -- the day the feed was fetched for (HTTP runs)
    content_sha256  TEXT,                    -- of the CSV as read; the same again for the tenant and feed is skipped
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'skipped')),
    dry_run         BOOLEAN NOT NULL DEFAULT FALSE,
    rows_read       BIGINT NOT NULL DEFAULT 0,
    rows_inserted   BIGINT NOT NULL DEFAULT 0,
    rows_updated    BIGINT NOT NULL DEFAULT 0,
    rows_deleted    BIGINT NOT NULL DEFAULT 0,
    rows_rejected   BIGINT NOT NULL DEFAULT 0,
    bytes           BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    header          TEXT,                    -- the file's header row as it was, for re-sending rejects
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX import_runs_recent ON import_runs (created_at DESC);
-- "Skipped" looks for an earlier success with the same content.
CREATE INDEX import_runs_content ON import_runs (tenant_id, feed, content_sha256) WHERE status = 'succeeded';

CREATE TABLE import_rejects (
    run_id      UUID NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    line        BIGINT NOT NULL,             -- physical line in the file where the row starts (1 = the header)
    seq         INTEGER NOT NULL,            -- several reasons for one line
    column_name TEXT,
    value       TEXT,                        -- the offending value, truncated
    reason      TEXT NOT NULL,
    raw         TEXT NOT NULL,               -- the row exactly as in the file (decoded), to fix and re-send
    PRIMARY KEY (run_id, line, seq)
);

CREATE TABLE feed_columns (
    feed        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    in_key      BOOLEAN NOT NULL,
    PRIMARY KEY (feed, name)
);

-- Which feeds each tenant takes: cron fetches a subscribed feed on its schedule.
CREATE TABLE tenant_feeds (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    feed        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, feed)
);
