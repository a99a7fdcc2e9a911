//! The payment provider: a trait the booking pipeline depends on, and its one real implementation over HTTP
//! ([`HttpPaymentProvider`], speaking the Stripe-like wire format in `docs/sandbox.md`).
//!
//! What makes "a customer is never billed twice" hold on this side:
//! - a charge is always sent with the caller's idempotency key (`Idempotency-Key`), so sending it again can
//!   only ever return the same charge;
//! - transient failures (connect errors, timeouts, HTTP 5xx/429, a connection dropped before or while the
//!   response is read) are retried with the [`skybook_domain::RetryPolicy`];
//! - when the retries are spent and the outcome is still not known, [`PaymentProvider::charge`] answers
//!   [`ChargeOutcome::Unknown`], never `Declined` or `Rejected`; the caller keeps the booking pending and asks
//!   later with [`PaymentProvider::find_charge`].

mod http;
mod wire;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

pub use self::http::{HttpPaymentProvider, HttpPaymentProviderConfig};
use crate::oauth::TokenError;

/// The `target` label of this client's metrics and logs.
pub const TARGET: &str = "payments";

/// A card as the customer typed it. Lives only long enough to be tokenized; `Debug` shows no digits.
#[derive(Clone)]
pub struct CardDetails {
    /// Digits only.
    pub number: SecretString,
    pub exp_month: u8,
    pub exp_year: u16,
    pub cvc: SecretString,
}

impl fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardDetails")
            .field("number", &"[REDACTED]")
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("cvc", &"[REDACTED]")
            .finish()
    }
}

/// The provider's stand-in for a card: safe to store and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToken {
    pub id: String,
    pub last4: String,
    pub brand: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Sent as `Idempotency-Key`: the same key always yields the same charge. 1..=255 visible ASCII characters.
    pub idempotency_key: String,
    pub amount_minor: i64,
    /// Lowercase ISO 4217 (`"eur"`).
    pub currency: String,
    /// A card token id from [`PaymentProvider::tokenize`].
    pub source: String,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: ChargeStatus,
    pub idempotency_key: Option<String>,
    pub amount_refunded: i64,
    pub refunded: bool,
    pub metadata: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub charge_id: String,
    pub amount_minor: i64,
}

/// What became of a charge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Money moved (possibly by an earlier attempt with the same key).
    Succeeded(Charge),
    /// The card was declined; no money moved. `charge_id` is the provider's record of the failed charge.
    Declined {
        charge_id: Option<String>,
        code: String,
    },
    /// A definitive refusal (4xx) before any charge could have been made, e.g. an idempotency key reused with
    /// a different amount, an unknown card token, refused credentials.
    Rejected { reason: String },
    /// We cannot know whether money moved (retries spent on timeouts, 5xx, dropped connections, an unreadable
    /// success response, ...). Ask again later with [`PaymentProvider::find_charge`]; never charge blindly.
    Unknown { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider could not be reached or kept failing until the retry policy was spent.
    #[error("payment provider unavailable: {0}")]
    Transient(String),
    /// The provider refused the request (4xx); retrying it unchanged will not help.
    #[error("payment provider refused the request: HTTP {status} {code}")]
    Rejected { status: u16, code: String },
    /// No usable credentials for the provider.
    #[error("payment provider credentials: {0}")]
    Auth(#[from] TokenError),
    /// The provider answered with something we could not understand.
    #[error("payment provider sent an unexpected response: {0}")]
    InvalidResponse(String),
    /// The request could not be built (e.g. an idempotency key that is not a valid header value); nothing was sent.
    #[error("invalid payment request: {0}")]
    InvalidRequest(String),
}

impl PaymentError {
    /// Trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transient(_) => true,
            Self::Auth(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// The payment provider as the booking pipeline and the sentinel see it.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Exchanges card details for a token. The card number leaves the process only in this request's body.
    async fn tokenize(&self, card: &CardDetails) -> Result<CardToken, PaymentError>;

    /// Charges a card token under `request.idempotency_key`; safe to call again with the same request.
    async fn charge(&self, request: &ChargeRequest) -> ChargeOutcome;

    /// The charge made under `idempotency_key`, if any (successful or failed).
    async fn find_charge(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError>;

    /// Every charge the provider holds for us, newest first.
    async fn list_charges(&self) -> Result<Vec<Charge>, PaymentError>;

    /// Refunds `amount_minor` (default: what is left) of a charge; the same `idempotency_key` always yields
    /// the same refund.
    async fn refund(
        &self,
        charge_id: &str,
        amount_minor: Option<i64>,
        idempotency_key: &str,
    ) -> Result<Refund, PaymentError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_debug_shows_no_digits() {
        let card = CardDetails {
            number: "4242424242424242".into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        };
        let shown = format!("{card:?}");
        assert!(!shown.contains("4242"), "{shown}");
        assert!(!shown.contains("123"), "{shown}");
        assert!(shown.contains("2030"));
    }
}
