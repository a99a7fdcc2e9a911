-- Every operator action in the admin — who, what, on which rows, when — kept for the operators to read back.
CREATE TABLE audit_log (
    id        UUID PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    affected  BIGINT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
