-- A running import's progress in bytes: how much of the CSV it has read (`bytes`, as at its end) and how large
-- the CSV is, so the admin shows how far it is and when it should end.
ALTER TABLE import_runs ADD COLUMN bytes_total BIGINT;
