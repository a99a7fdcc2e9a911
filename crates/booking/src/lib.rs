//! The booking pipeline: "atomic phases with recovery points".
//!
//! Every step that touches the outside world sits between two database transactions, and the booking's status
//! records how far it got, so a crash anywhere is resumable and no step is repeated unsafely:
//!
//! 1. **Receive** (web layer): the request is parsed into a [`NewBooking`](skybook_domain::NewBooking).
//! 2. **Tx 1 — claim** ([`claim`]): the idempotency key, the booking row under the one-live-booking-per-entity
//!    index, and the seats, in one transaction.
//! 3. **Charge** ([`settle`]): the provider is called with the booking id as *its* idempotency key, so no retry
//!    can create a second charge. An unknown outcome leaves the booking `payment_pending`.
//! 4. **Tx 2 — settle** ([`settle`]): charge id, status, outbox email and the final response, in one transaction.
//!
//! 5. **Sentinel** ([`sentinel`]): a periodic sweep settles what a crash left unsettled, refunds duplicate and
//!    orphan charges, and alerts on what it cannot fix.
//!
//! The web layer supplies a [`RenderOutcome`] so that the exact response body is stored with the key in the
//! same transaction that settles the booking; the pipeline itself knows no JSON shapes.

mod claim;
mod outcome;
mod refingerprint;
pub mod sentinel;
mod service;
mod settle;

pub use outcome::{BookingView, Outcome, RenderOutcome, Rendered, Reply};
pub use refingerprint::Refingerprinted;
pub use sentinel::{refund_idempotency_key, SentinelConfig, SweepReport};
pub use service::{BookingError, BookingService, PipelineConfig};
pub use settle::charge_request;
