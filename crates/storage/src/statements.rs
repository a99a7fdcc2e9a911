//! The text of the statements one booking runs on PostgreSQL, exactly as the pipeline runs them.
//!
//! For the booking benchmark: its pgbench script is built from these (with the benchmark's own values in place
//! of the parameters), so the database ceiling it measures is the one for skybook's SQL, and cannot drift from
//! it when that SQL changes.

use skybook_domain::BookingStatus;

use crate::bookings::{status_change_sql, StatusChange};

/// Tx 1's key claim: `$1` tenant, `$2` key, `$3` request fingerprint, `$4` lease end, `$5` now, `$6` lease holder.
pub fn claim_key() -> &'static str {
    crate::idempotency::INSERT_IDEMPOTENCY_KEY
}

/// Tx 1's flight read: `$1` tenant, `$2` flight id.
pub fn flight() -> String {
    crate::catalog::flight_by_id()
}

/// Tx 1's placing (row, seats, key): the row's parameters `$1`–`$15` in the order of the `INSERT INTO
/// bookings` column list (its status is the literal `'seat_held'`, and `$15` is both `created_at` and
/// `updated_at`), then `$16` the key.
pub fn place_booking() -> String {
    crate::placing::place_statement()
}

/// Tx 2 for a successful charge: `$1` tenant, `$2` booking id, `$3` `'confirmed'`, `$4` charge id, `$5` failure
/// reason (NULL), `$6` now, `$7` untouched-before (NULL), `$8`–`$9` the statuses it settles from; the email's id,
/// kind, recipient, Message-ID and created-at (`$10`–`$14`); the response's status, body, updated-at and key
/// (`$15`–`$18`).
pub fn settle_confirmed() -> String {
    let change = StatusChange::new(
        &[BookingStatus::SeatHeld, BookingStatus::PaymentPending],
        BookingStatus::Confirmed,
    )
    .expect("a transition of the state machine");
    let (changed, from) = status_change_sql(&change);
    crate::settlement::settle_statement(&changed, from.len(), true, true)
}
