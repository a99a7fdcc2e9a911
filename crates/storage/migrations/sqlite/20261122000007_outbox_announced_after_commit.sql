-- PostgreSQL drops its outbox NOTIFY trigger here (see migrations/postgres). SQLite had none: its workers are
-- woken in-process and poll as the fallback.
SELECT 1;
