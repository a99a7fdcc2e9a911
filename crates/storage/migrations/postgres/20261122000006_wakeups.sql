-- Wake-ups: a new job or outbox email notifies the workers (LISTEN skybook_jobs / skybook_outbox) when its
-- transaction commits, so they need not wait for their next poll. Polling stays as the fallback (a listener
-- that was reconnecting misses notifications), so a lost notification only costs latency.
CREATE FUNCTION skybook_notify_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('skybook_jobs', NEW.queue);
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_wake_workers AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION skybook_notify_jobs();

CREATE FUNCTION skybook_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('skybook_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_wake_sender AFTER INSERT ON outbox_emails FOR EACH ROW EXECUTE FUNCTION skybook_notify_outbox();
