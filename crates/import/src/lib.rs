//! The partner-data importer. A partner's nightly file — a CSV, a zip holding one, or the JSON envelope
//! `{"data": "<base64 of a zip>"}` — is read as a stream, every row parsed into the types its feed's
//! declaration gives, and loaded into the feed's table all or nothing.
//!
//! - `declaration.rs`: feed types as TOML (the built-in `flights` and `airports`, and `SKYBOOK_FEEDS_DIR`);
//! - `source.rs`: base64 → zip → CSV, streamed, with limits (a zip bomb is refused, not inflated); `remote.rs`:
//!   the partner's feed endpoint as a source;
//! - `rows.rs` and `validate.rs`: rows with their physical line and raw text, parsed and checked;
//! - `run.rs`: one run — recorded, staged, de-duplicated, checked against its reject budget, applied;
//! - `jobs.rs`: the import job's kind and payload, and a run's rejects as a CSV to fix and re-send.
//!
//! SQL stays in `skybook-storage` (`feeds.rs`, `feed_load.rs`, `imports.rs`).

pub mod declaration;
pub mod jobs;
pub mod remote;
pub mod rows;
pub mod run;
pub mod source;
pub mod validate;

pub use declaration::{load_all, DeclarationError, FeedType};
pub use jobs::{rejects_csv, FeedJob, FEED_JOB};
pub use run::{begin_import, run_import, ImportError, ImportRequest, Started, Summary};
pub use source::{Limits, Source, SourceError};
