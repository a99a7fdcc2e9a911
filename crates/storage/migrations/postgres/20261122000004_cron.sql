-- Cron runs each schedule once per tick across any number of nodes: the node whose insert of
-- (schedule, tick) succeeds fires it; the others see the conflict and do nothing. No leader election.
CREATE TABLE cron_ticks (
    schedule   TEXT NOT NULL,
    tick       TIMESTAMPTZ NOT NULL,
    fired_by   TEXT NOT NULL,
    fired_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (schedule, tick)
);
