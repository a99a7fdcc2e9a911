-- Every operator action in the admin — who, what, on which rows, when — kept for the operators to read back.
CREATE TABLE audit_log (
    id        BLOB PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    affected  INTEGER NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
