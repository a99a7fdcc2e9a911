//! skybook's domain. Pure: no I/O, no HTTP, no SQL text.
//!
//! Parse, don't validate: every type here has a constructor that checks its rules, so a value that exists is
//! valid — a [`card::CardNumber`] has passed Luhn, an [`text::Email`] is well-formed. Types that are stored
//! implement sqlx's `Type`/`Encode`/`Decode` and parse again when read.

pub mod booking;
pub mod card;
pub mod error;
pub mod feed;
pub mod fingerprint;
pub mod ids;
pub mod money;
pub mod operator;
mod panic;
pub mod passenger;
pub mod reference;
pub mod retry;
pub mod search;
mod sqlx_string;
pub mod text;

pub use booking::{
    confirmation_message_id, BookingStatus, FailureReason, Flight, IllegalTransition, NewBooking,
    CONFIRMATION_EMAIL_KIND,
};
pub use card::{Card, CardNumber, Cvc, Expiry};
pub use error::{ErrorChain, FieldErrors, ParseError};
pub use fingerprint::{CardFingerprint, EntityFingerprint, RequestFingerprint, SecretKey};
pub use ids::{
    AlertId, BookingId, CrashId, FlightId, ImportRunId, JobId, OperatorTokenId, OutboxId, TenantId,
};
pub use money::{Currency, Money};
pub use operator::{OperatorToken, OperatorTokenHash};
pub use panic::panic_message;
pub use passenger::{Passenger, PersonName, MAX_PASSENGERS};
pub use reference::BookingReference;
pub use retry::RetryPolicy;
pub use search::SearchDate;
pub use text::{AirportCode, Email, FlightNumber, IdempotencyKey, TenantSlug};
