-- An email the SMTP server refused for good (a 5xx answer) or that cannot be built at all (an address the
-- mailer refuses) is failed: it is never claimed again, and the sender alerts on it at once. Retrying it could
-- only fail again, forever, while the customer who paid is never told.
ALTER TABLE outbox_emails ADD COLUMN failed_at TIMESTAMPTZ;
ALTER TABLE outbox_emails ADD COLUMN failure TEXT;
-- Sent or failed, never both: the two are the ends of an email's life.
ALTER TABLE outbox_emails ADD CONSTRAINT outbox_sent_or_failed CHECK (sent_at IS NULL OR failed_at IS NULL);

-- The sender's claims and the sentinel's "unsent" list look only at emails still in play.
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox_emails (created_at) WHERE sent_at IS NULL AND failed_at IS NULL;
