-- Which run of the pipeline holds a key's lease (see migrations/postgres). SQLite dialect.
ALTER TABLE idempotency_keys ADD COLUMN lease_holder TEXT;
