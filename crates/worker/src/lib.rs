//! skybook's background work.
//!
//! - [`supervisor`]: every background loop (queue workers, cron, sentinel, outbox) runs under a [`Supervisor`],
//!   which restarts it with exponential backoff after it returns an error or panics, logging and counting
//!   each restart (`skybook_worker_restarts_total{loop}`), until shutdown.
//! - [`cron`]: schedules that fire once per tick across any number of nodes (a per-tick row in the database
//!   decides which node fires), enqueuing a job each time.
//! - [`queue`]: the durable job queue's worker. It claims due jobs (see `skybook_storage::jobs`), keeps their
//!   leases alive with a heartbeat while a handler runs, and records the outcome: done, retried later with
//!   backoff and jitter, or failed for good. Job state changes are published on a broadcast channel.
//! - [`wakeups`]: PostgreSQL's `LISTEN/NOTIFY` wakes idle workers when new work is inserted; polling is the
//!   fallback.

pub mod cron;
pub mod queue;
pub mod supervisor;
pub mod wakeups;

pub use cron::{CronScheduler, Schedule};
pub use queue::{JobEvent, JobEvents, JobHandler, QueueWorker, QueueWorkerConfig};
pub use supervisor::Supervisor;
pub use wakeups::Wakeups;
