-- Entity fingerprints moved to passenger names' machine-readable form (transliterated Latin capitals): the
-- same traveller under another spelling is now the same booking. Bookings written before carry the old form;
-- `fingerprint_version` marks them until they are fingerprinted again (BookingService::refingerprint_legacy),
-- so the duplicate guard covers them too.
ALTER TABLE bookings ADD COLUMN fingerprint_version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX bookings_legacy_fingerprints ON bookings (id)
    WHERE fingerprint_version < 2 AND status IN ('seat_held', 'payment_pending', 'confirmed');
