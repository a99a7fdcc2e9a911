-- Tenant operators: each token a tenant's operator signs in to the admin with, by the SHA-256 of the token (the
-- token itself is shown once, at creation, and never stored). A revoked token stays, for the audit log's sake.
CREATE TABLE operator_tokens (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    token_hash  TEXT NOT NULL UNIQUE,
    read_only   BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX operator_tokens_tenant ON operator_tokens (tenant_id);

-- Whose action an audit entry is: a tenant operator's entries are theirs to read; the platform admin's have none.
ALTER TABLE audit_log ADD COLUMN tenant_id UUID;
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC);
