//! The booking pipeline and the sentinel through `BookingService`, without HTTP: a real store on SQLite and
//! PostgreSQL, the real sandbox as the payment provider over HTTP.

mod harness;
mod pipeline;
mod refingerprint;
mod sentinel;
