-- The operators' view of the queue: a job may belong to a tenant (its imports, say); every failed attempt is kept
-- with its error and worker; a queue can be paused (its jobs are not claimed, on any node).
ALTER TABLE jobs ADD COLUMN tenant_id BLOB REFERENCES tenants (id);
CREATE TABLE job_errors (
    job_id   BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt  INTEGER NOT NULL,
    worker   TEXT NOT NULL,
    error    TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE paused_queues (
    queue      TEXT PRIMARY KEY,
    paused_at  TEXT NOT NULL
);
-- The dashboard's listing, newest first, keyset-paginated; and one tenant's jobs.
CREATE INDEX jobs_listing ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_tenant_listing ON jobs (tenant_id, created_at DESC, id DESC) WHERE tenant_id IS NOT NULL;
