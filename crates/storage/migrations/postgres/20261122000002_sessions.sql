-- Website sessions (tower-sessions' sqlx store reads and writes this table; the columns are its layout).
-- The table lives in our migrations, not the store's own `migrate()`, so `skybook migrate` owns every schema change.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
-- The periodic purge deletes by expiry.
CREATE INDEX sessions_expiry ON sessions (expiry_date);
