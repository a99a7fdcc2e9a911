//! The OAuth2 token manager: one cached access token per target, fetched once however many callers wait,
//! refreshed in the background once half its lifetime has passed.
//!
//! Guarantees (what the payments client and the auth proxy rely on):
//! - **Single flight.** At most one token request per manager is in flight. Every caller that needs a token
//!   while none is valid awaits that one request and gets its result (token or error).
//! - **No waiting on a refresh.** While the cached token is valid, [`TokenManager::token`] answers from the
//!   cache at once. The first caller after half the lifetime has passed starts a background refresh
//!   (`tokio::spawn`) and still gets the cached token.
//! - **Bounded failure.** Connect errors, timeouts, HTTP 5xx and 429 from the token endpoint are retried with
//!   the configured [`RetryPolicy`]; other 4xx (`invalid_client`, ...) are not. While the old token is valid it
//!   keeps being served; once it has expired and no new one can be had, callers get a [`TokenError`] as soon as
//!   the retry policy is spent.
//! - **No secret in the open.** Neither the client secret nor a token appears in `Debug`, `Display`, logs or
//!   metrics.
//!
//! Metrics: `skybook_token_fetches_total{target, outcome="ok"|"error"}` (one per token request, retries
//! included), `skybook_token_refreshes_total{target}` (background refreshes started) and
//! `skybook_outbound_retries_total{target, op="token"}`.

mod fetch;
mod jwt;

pub use jwt::JwtClient;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use skybook_domain::RetryPolicy;
use tokio::time::Instant;

/// Counter: token requests, by `target` and `outcome` (`ok` / `error`).
pub const FETCHES_METRIC: &str = "skybook_token_fetches_total";
/// Counter: background refreshes started, by `target`.
pub const REFRESHES_METRIC: &str = "skybook_token_refreshes_total";

/// The OAuth2 client-credentials grant (RFC 6749 §4.4): the client's own id and secret, posted as a form.
#[derive(Clone)]
pub struct ClientCredentials {
    pub token_url: url::Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// Further form fields some providers want (`resource`, ...), sent as given.
    pub extra_params: Vec<(String, String)>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("extra_params", &self.extra_params)
            .finish()
    }
}

/// Where tokens come from. An enum so more grants (JWT bearer, refresh tokens, ...) can join.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TokenSource {
    ClientCredentials(ClientCredentials),
    /// Client credentials grant, authenticated with a signed JWT (`private_key_jwt`).
    PrivateKeyJwt(JwtClient),
}

/// How one [`TokenManager`] gets its tokens.
#[derive(Debug, Clone)]
pub struct TokenManagerConfig {
    /// The route/target name, used in logs, errors and metric labels (e.g. `"payments"`).
    pub name: String,
    pub source: TokenSource,
    /// Lifetime assumed when the token response carries no `expires_in`.
    pub default_ttl: Duration,
    /// Retries of the token request (transient failures only).
    pub retry: RetryPolicy,
}

/// A bearer token and when it stops being usable. Cheap to clone; `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    header: HeaderValue,
    /// Distinguishes tokens without comparing secrets (see [`TokenManager::invalidate`]).
    generation: u64,
    obtained_at: Instant,
    expires_at: Instant,
}

impl AccessToken {
    /// `Authorization: Bearer <token>`, marked sensitive so `http`/`reqwest` never log it.
    pub fn bearer_header(&self) -> HeaderValue {
        self.header.clone()
    }

    /// The raw token, for callers that must place it somewhere other than an `Authorization` header.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// When the token was requested (its lifetime is counted from here, conservatively).
    pub fn obtained_at(&self) -> Instant {
        self.obtained_at
    }

    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Not yet expired.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.expires_at
    }

    /// Half the lifetime has passed: time to refresh in the background.
    fn refresh_due(&self, now: Instant) -> bool {
        now >= self.obtained_at + (self.expires_at - self.obtained_at) / 2
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        f.debug_struct("AccessToken")
            .field("token", &"[REDACTED]")
            .field("generation", &self.generation)
            .field(
                "expires_in",
                &self.expires_at.saturating_duration_since(now),
            )
            .finish()
    }
}

/// Why no token could be had. Names the target and the cause; never carries a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint could not be reached or kept failing (connect errors, timeouts, 5xx, 429) until
    /// the retry policy was spent.
    #[error("no access token for {name}: token endpoint unavailable: {cause}")]
    Unavailable { name: String, cause: String },
    /// The token endpoint refused the request (`invalid_client`, `invalid_scope`, ...): retrying will not help.
    #[error("no access token for {name}: token endpoint refused the request: HTTP {status} {error}{}",
        description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        name: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// The token endpoint answered 2xx with something that is not a usable bearer token.
    #[error("no access token for {name}: unusable token response: {cause}")]
    InvalidResponse { name: String, cause: String },
}

impl TokenError {
    /// The target (token manager name) this error is about.
    pub fn name(&self) -> &str {
        match self {
            Self::Unavailable { name, .. }
            | Self::Rejected { name, .. }
            | Self::InvalidResponse { name, .. } => name,
        }
    }

    /// A later attempt may succeed (the endpoint was down); `false` for refused credentials or garbage.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Counters since the manager was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenStats {
    /// Token requests that produced a token (retries of one request count once).
    pub fetches_ok: u64,
    /// Token requests that failed after their retries.
    pub fetches_failed: u64,
    /// Background refreshes started (half-life reached while the token was still valid).
    pub refreshes: u64,
    /// Calls to [`TokenManager::token`] that had to wait for a token request because no valid token was
    /// cached. Calls served from the cache (including during a refresh) never count here.
    pub waits: u64,
}

/// Cached, single-flight OAuth2 tokens for one target. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct TokenManager(Arc<Inner>);

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("name", &self.0.config.name)
            .field("stats", &self.stats())
            .finish()
    }
}

type Inflight = Shared<BoxFuture<'static, Result<AccessToken, TokenError>>>;

struct Inner {
    http: reqwest::Client,
    config: TokenManagerConfig,
    state: Mutex<State>,
    next_generation: AtomicU64,
    fetches_ok: AtomicU64,
    fetches_failed: AtomicU64,
    refreshes: AtomicU64,
    waits: AtomicU64,
}

#[derive(Default)]
struct State {
    token: Option<AccessToken>,
    /// The one token request in flight, if any (a cold fetch or a background refresh).
    inflight: Option<Inflight>,
    /// After a failed background refresh, the next one waits until then (the old token keeps serving).
    refresh_not_before: Option<Instant>,
    /// After a failed cold fetch (no valid token), callers get that error at once until then instead of
    /// each waiting out another round of retries: a fast failure, never a pile-up on a dead endpoint.
    cold_failure: Option<(Instant, TokenError)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchKind {
    /// Nobody has a valid token: callers are waiting.
    Cold,
    /// The token is still valid; refreshing ahead of expiry.
    Refresh,
}

impl TokenManager {
    pub fn new(http: reqwest::Client, config: TokenManagerConfig) -> Self {
        Self(Arc::new(Inner {
            http,
            config,
            state: Mutex::new(State::default()),
            next_generation: AtomicU64::new(1),
            fetches_ok: AtomicU64::new(0),
            fetches_failed: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        }))
    }

    /// The target name from the config.
    pub fn name(&self) -> &str {
        &self.0.config.name
    }

    /// A valid token: from the cache when it holds one (never waiting, even while a refresh runs), else from
    /// the one token request in flight, which this call starts if there is none.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let inflight = {
            let now = Instant::now();
            let mut state = self.0.lock();
            if let Some(token) = state.token.as_ref().filter(|t| now < t.expires_at) {
                let token = token.clone();
                let refresh_allowed = state.refresh_not_before.is_none_or(|t| now >= t);
                if token.refresh_due(now) && state.inflight.is_none() && refresh_allowed {
                    self.0.refreshes.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(REFRESHES_METRIC, "target" => self.0.config.name.clone())
                        .increment(1);
                    tracing::debug!(target_name = %self.0.config.name, "token past half-life, refreshing in the background");
                    state.inflight = Some(self.start_fetch(FetchKind::Refresh));
                }
                return Ok(token);
            }
            if let Some((until, error)) = &state.cold_failure {
                if now < *until && state.inflight.is_none() {
                    return Err(error.clone());
                }
            }
            self.0.waits.fetch_add(1, Ordering::Relaxed);
            match &state.inflight {
                Some(inflight) => inflight.clone(),
                None => {
                    let inflight = self.start_fetch(FetchKind::Cold);
                    state.inflight = Some(inflight.clone());
                    inflight
                }
            }
        };
        inflight.await
    }

    /// Drops the cached token if it is still `stale` (call after the upstream answered 401 to it). A token
    /// that has already been replaced is left alone, so many callers reporting the same 401 cause one refetch.
    pub fn invalidate(&self, stale: &AccessToken) {
        let mut state = self.0.lock();
        if state
            .token
            .as_ref()
            .is_some_and(|t| t.generation == stale.generation)
        {
            tracing::info!(target_name = %self.0.config.name, "access token rejected upstream, dropping it");
            state.token = None;
            state.refresh_not_before = None;
            state.cold_failure = None;
        }
    }

    /// The cached token if it is still valid (readiness checks); never fetches.
    pub fn cached(&self) -> Option<AccessToken> {
        self.0
            .lock()
            .token
            .as_ref()
            .filter(|t| t.is_valid())
            .cloned()
    }

    pub fn stats(&self) -> TokenStats {
        TokenStats {
            fetches_ok: self.0.fetches_ok.load(Ordering::Relaxed),
            fetches_failed: self.0.fetches_failed.load(Ordering::Relaxed),
            refreshes: self.0.refreshes.load(Ordering::Relaxed),
            waits: self.0.waits.load(Ordering::Relaxed),
        }
    }

    /// Spawns the one token request and returns a handle every waiter can share. Must be called with the
    /// state lock held and the result stored in `state.inflight` before the lock is released; the task clears
    /// it (taking the same lock) when done, so the two cannot race.
    fn start_fetch(&self, kind: FetchKind) -> Inflight {
        let inner = Arc::clone(&self.0);
        let name = self.0.config.name.clone();
        let task = tokio::spawn(async move {
            let result = AssertUnwindSafe(fetch::fetch_with_retries(&inner))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(TokenError::Unavailable {
                        name: inner.config.name.clone(),
                        cause: "token request panicked".into(),
                    })
                });
            inner.finish_fetch(kind, result)
        });
        async move {
            task.await.unwrap_or_else(|e| {
                Err(TokenError::Unavailable {
                    name,
                    cause: format!("token task failed: {e}"),
                })
            })
        }
        .boxed()
        .shared()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across an await or user code, so poisoning cannot leave bad state behind.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the outcome of a token request, stores a new token and frees the in-flight slot.
    fn finish_fetch(
        &self,
        kind: FetchKind,
        result: Result<AccessToken, TokenError>,
    ) -> Result<AccessToken, TokenError> {
        let name = &self.config.name;
        let mut state = self.lock();
        state.inflight = None;
        match &result {
            Ok(token) => {
                self.fetches_ok.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(FETCHES_METRIC, "target" => name.clone(), "outcome" => "ok")
                    .increment(1);
                tracing::info!(
                    target_name = %name,
                    ?kind,
                    expires_in_s = token.expires_at.saturating_duration_since(Instant::now()).as_secs(),
                    "access token obtained"
                );
                state.token = Some(token.clone());
                state.refresh_not_before = None;
                state.cold_failure = None;
            }
            Err(err) => {
                self.fetches_failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(FETCHES_METRIC, "target" => name.clone(), "outcome" => "error")
                    .increment(1);
                let still_valid = state.token.as_ref().is_some_and(AccessToken::is_valid);
                tracing::warn!(target_name = %name, ?kind, still_valid, error = %err, "access token request failed");
                if still_valid {
                    // Try again later (the next caller after this), not on every call while the endpoint is down.
                    let pause = self.config.retry.max_delay.max(Duration::from_millis(100));
                    state.refresh_not_before = Some(Instant::now() + pause);
                } else {
                    // No valid token (a cold fetch, or a refresh that outlived the token it was replacing):
                    // callers get this failure at once for a moment instead of each waiting out more retries.
                    let pause = self
                        .config
                        .retry
                        .max_delay
                        .clamp(Duration::from_millis(100), Duration::from_secs(1));
                    state.cold_failure = Some((Instant::now() + pause, err.clone()));
                }
            }
        }
        result
    }

    fn new_token(
        &self,
        secret: SecretString,
        header: HeaderValue,
        obtained_at: Instant,
        ttl: Duration,
    ) -> AccessToken {
        AccessToken {
            secret,
            header,
            generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
            obtained_at,
            expires_at: obtained_at + ttl,
        }
    }
}
