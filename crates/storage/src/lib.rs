//! skybook's storage layer — the only crate that writes SQL.
//!
//! One [`Store`] API over SQLite (embedded, the default) and PostgreSQL (the scale-out engine). Each query is
//! written once and compiled for both engines (see `backend.rs`); the engines' differences live in
//! `migrations/sqlite` and `migrations/postgres`. The exceptions are the pipeline's two combined writes
//! (`placing.rs`, `settlement.rs`): one statement each on PostgreSQL, where they save round trips, and the same
//! usual statements one after another on SQLite. Every tenant-owned query takes the tenant id and filters by it.
//!
//! Reads go through [`Store`]; the booking pipeline's atomic phases each open a [`Tx`] (or, for Tx 2's common
//! case, call [`Store::settle`]), so the pipeline decides *what* happens and this crate only knows *how* it is
//! written down.

mod alerts;
mod audit;
mod backend;
mod bookings;
mod browse;
mod catalog;
mod crashes;
mod cron;
mod cron_admin;
mod error;
mod events;
mod feed_load;
mod feeds;
mod idempotency;
mod imports;
mod job_admin;
mod jobs;
mod operators;
mod outbox;
mod placing;
mod sessions;
mod settlement;
pub mod statements;
mod store;
mod tx;
mod wakeups;

pub use alerts::{Alert, NewAlert};
pub use audit::AuditEntry;
pub use backend::{redact, Engine, PoolSettings};
pub use bookings::{
    BookingRecord, InsertBooking, LegacyFingerprint, NewBookingRow, StatusChange,
    FINGERPRINT_VERSION,
};
pub use browse::{
    Browsable, BrowseColumn, BrowseCursor, BrowseQuery, BrowseRow, ColumnFilter, Condition,
};
pub use catalog::{FlightSearch, NewFlight, Tenant};
pub use crashes::{CrashGroup, CrashReport, NewCrash};
pub use cron_admin::{cron_job_key, CronRegistration, CronSchedule};
pub use error::{Result, StorageError};
pub use feed_load::{FeedLoad, LoadCounts};
pub use feeds::FeedTableChange;
pub use idempotency::IdempotencyRecord;
pub use imports::{
    ImportCounts, ImportOutcome, ImportReject, ImportRun, ImportRunFilter, NewImportRun,
};
pub use job_admin::{JobCount, JobError, JobFilter, JobPage, JobSelection};
pub use jobs::{Enqueued, Job, NewJob};
pub use operators::OperatorTokenRecord;
pub use outbox::{NewOutboxEmail, OutboxEmail, UnsentEmail};
pub use placing::PlaceBooking;
pub use sessions::SessionStore;
pub use settlement::{FinalResponse, Settlement};
pub use store::{MigrationStatus, Store};
pub use tx::Tx;
pub use wakeups::{Listener, JOBS_CHANNEL, OUTBOX_CHANNEL};
