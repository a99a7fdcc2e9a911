-- Tenants, flights, bookings, idempotency keys and the email outbox.
-- Every tenant-owned row carries tenant_id; money is integer minor units; times are UTC.

CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE flights (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    number       TEXT NOT NULL,
    origin       TEXT NOT NULL,
    destination  TEXT NOT NULL,
    departs_at   TIMESTAMPTZ NOT NULL,
    capacity     INTEGER NOT NULL CHECK (capacity >= 0),
    seats_sold   INTEGER NOT NULL DEFAULT 0,
    fare_minor   BIGINT NOT NULL CHECK (fare_minor >= 0),
    currency     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    -- The second guard against overselling; the first is the conditional UPDATE in the pipeline.
    CONSTRAINT flights_seats_within_capacity CHECK (seats_sold >= 0 AND seats_sold <= capacity),
    CONSTRAINT flights_unique_departure UNIQUE (tenant_id, number, departs_at)
);
CREATE INDEX flights_search ON flights (tenant_id, origin, destination, departs_at);

CREATE TABLE bookings (
    id                  UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL REFERENCES tenants (id),
    reference           TEXT NOT NULL,
    flight_id           UUID NOT NULL REFERENCES flights (id),
    status              TEXT NOT NULL CHECK (status IN ('seat_held', 'payment_pending', 'confirmed', 'failed')),
    contact_email       TEXT NOT NULL,
    passengers          TEXT NOT NULL,          -- JSON array of {given_name, family_name}
    seats               INTEGER NOT NULL CHECK (seats > 0),
    amount_minor        BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    card_last4          TEXT NOT NULL,
    card_brand          TEXT NOT NULL,
    card_fingerprint    TEXT NOT NULL,          -- keyed HMAC, never the number
    entity_fingerprint  TEXT NOT NULL,
    charge_id           TEXT UNIQUE,
    failure_reason      TEXT,
    hold_expires_at     TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    CONSTRAINT bookings_unique_reference UNIQUE (tenant_id, reference)
);
-- The duplicate-booking guard: one live booking per (tenant, entity fingerprint). The database, not a
-- check-then-insert, decides.
CREATE UNIQUE INDEX bookings_one_live_per_entity ON bookings (tenant_id, entity_fingerprint)
    WHERE status IN ('seat_held', 'payment_pending', 'confirmed');
CREATE INDEX bookings_unsettled ON bookings (status, updated_at) WHERE status IN ('seat_held', 'payment_pending');

CREATE TABLE idempotency_keys (
    tenant_id            UUID NOT NULL REFERENCES tenants (id),
    key                  TEXT NOT NULL,
    request_fingerprint  TEXT NOT NULL,
    booking_id           UUID REFERENCES bookings (id),
    locked_until         TIMESTAMPTZ,           -- lease of the request working on it; NULL = free
    response_status      INTEGER,               -- set once finished, with the body
    response_body        TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE outbox_emails (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    booking_id   UUID NOT NULL REFERENCES bookings (id),
    kind         TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    message_id   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    sent_at      TIMESTAMPTZ,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    CONSTRAINT outbox_one_per_kind UNIQUE (booking_id, kind)
);
CREATE INDEX outbox_unsent ON outbox_emails (created_at) WHERE sent_at IS NULL;
