-- Email delivery, the sentinel's alerts and captured crashes.
-- SQLite dialect of migrations/postgres.

-- The outbox sender leases a row while it talks to the SMTP server (so two nodes do not send one email at the
-- same time) and schedules the next attempt after a failure.
ALTER TABLE outbox_emails ADD COLUMN next_attempt_at TEXT;
ALTER TABLE outbox_emails ADD COLUMN locked_by TEXT;
ALTER TABLE outbox_emails ADD COLUMN locked_until TEXT;

-- Findings for the operators: the sentinel's (stuck bookings, duplicate or orphan charges, unsent emails) and
-- new crash groups. One alert per (kind, subject): a finding seen again is not alerted again. Delivery to the
-- webhook and the ops address happens after the row is written, retried until it succeeds.
CREATE TABLE alerts (
    id               BLOB PRIMARY KEY,
    kind             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    tenant_id        BLOB REFERENCES tenants (id),
    message          TEXT NOT NULL,
    details          TEXT NOT NULL,          -- JSON object
    created_at       TEXT NOT NULL,
    delivered_at     TEXT,
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    next_delivery_at TEXT,
    last_error       TEXT,
    CONSTRAINT alerts_once_per_subject UNIQUE (kind, subject)
);
CREATE INDEX alerts_recent ON alerts (created_at DESC);
CREATE INDEX alerts_undelivered ON alerts (created_at) WHERE delivered_at IS NULL;

-- Crash reports, grouped by fingerprint (message template + location).
CREATE TABLE crash_groups (
    fingerprint      TEXT PRIMARY KEY,
    message          TEXT NOT NULL,
    location         TEXT NOT NULL,
    count            INTEGER NOT NULL,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    last_request_id  TEXT
);
CREATE TABLE crash_reports (
    id           BLOB PRIMARY KEY,
    fingerprint  TEXT NOT NULL REFERENCES crash_groups (fingerprint),
    message      TEXT NOT NULL,
    location     TEXT NOT NULL,
    backtrace    TEXT NOT NULL,
    route        TEXT,
    method       TEXT,
    tenant       TEXT,
    request_id   TEXT,
    task         TEXT,
    release      TEXT NOT NULL,
    occurred_at  TEXT NOT NULL
);
CREATE INDEX crash_reports_by_group ON crash_reports (fingerprint, occurred_at DESC);
