-- An email the SMTP server refused for good (a 5xx answer) or that cannot be built at all (an address the
-- mailer refuses) is failed: it is never claimed again, and the sender alerts on it at once.
-- SQLite dialect of migrations/postgres (it cannot add a table constraint, so the check rides on the column).
ALTER TABLE outbox_emails ADD COLUMN failed_at TEXT
    CONSTRAINT outbox_sent_or_failed CHECK (sent_at IS NULL OR failed_at IS NULL);
ALTER TABLE outbox_emails ADD COLUMN failure TEXT;

DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox_emails (created_at) WHERE sent_at IS NULL AND failed_at IS NULL;
