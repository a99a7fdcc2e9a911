//! HTTP clients for the systems skybook talks to but does not own.
//!
//! - [`oauth`]: the OAuth2 token manager (client-credentials grant, cached, single-flight, refreshed in the
//!   background at half-life). The payments client uses it when skybook holds its own credentials; the auth
//!   proxy uses it per route.
//! - [`payments`]: the [`payments::PaymentProvider`] trait and its one real implementation over HTTP,
//!   [`payments::HttpPaymentProvider`], which speaks the wire format in `docs/sandbox.md`.
//!
//! Every retry uses [`skybook_domain::RetryPolicy`]; only failures classified as transient here (connect
//! errors, timeouts, dropped connections, HTTP 5xx/429) are retried. Each retry is logged with `tracing` and
//! counted in the `skybook_outbound_retries_total{target, op}` counter.
//!
//! # Timeouts
//! The clients take a ready-made [`reqwest::Client`] so connection pools are shared. `reqwest` can only set a
//! *connect* timeout when the client is built, so the caller builds it (see
//! [`payments::HttpPaymentProviderConfig::http_client`] for a client built from the config). The overall
//! per-request timeout is set on every request (`RequestBuilder::timeout`), and it also bounds connecting, so a
//! client built without a connect timeout still cannot hang.

pub mod feeds;
pub mod oauth;
pub mod payments;
mod retry;

pub use feeds::{FeedClient, FeedError};
pub use oauth::{
    AccessToken, ClientCredentials, JwtClient, TokenError, TokenManager, TokenManagerConfig,
    TokenSource, TokenStats,
};
pub use payments::{
    CardDetails, CardToken, Charge, ChargeOutcome, ChargeRequest, ChargeStatus,
    HttpPaymentProvider, HttpPaymentProviderConfig, PaymentError, PaymentProvider, Refund,
};
