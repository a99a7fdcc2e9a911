-- Website sessions (tower-sessions' sqlx store reads and writes this table; the columns are its layout).
-- The table lives in our migrations, not the store's own `migrate()`, so `skybook migrate` owns every schema change.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date TEXT NOT NULL  -- RFC 3339, as sqlx binds the store's OffsetDateTime
);
-- The periodic purge deletes by expiry.
CREATE INDEX sessions_expiry ON sessions (expiry_date);
