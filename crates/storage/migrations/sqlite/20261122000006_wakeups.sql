-- Wake-ups: PostgreSQL notifies listening workers of new jobs and emails (see migrations/postgres). SQLite has
-- no NOTIFY: its workers live in the one process that writes, are woken in-process, and poll as the fallback.
SELECT 1;
