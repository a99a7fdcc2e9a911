-- Which run of the pipeline holds a key's lease. A phase whose COMMIT reached the server but whose answer was
-- lost (the connection died with the primary) is retried, and finds the key leased: by its own token it knows
-- the lease is its own, and carries on with the booking it placed instead of answering "in progress".
ALTER TABLE idempotency_keys ADD COLUMN lease_holder UUID;
