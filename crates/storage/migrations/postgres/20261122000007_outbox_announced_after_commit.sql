-- The outbox's NOTIFY moves out of the booking transaction. A transaction that notifies takes a database-wide
-- lock at commit and holds it through its WAL flush, so every booking's settle transaction (which queues the
-- confirmation email) committed one at a time. The application now announces queued emails after the commit,
-- in a transaction of its own (storage/src/wakeups.rs, OutboxAnnouncer). Jobs keep their trigger: they are
-- enqueued rarely and in transactions of their own.
DROP TRIGGER outbox_wake_sender ON outbox_emails;
DROP FUNCTION skybook_notify_outbox();
