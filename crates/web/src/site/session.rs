//! What the website keeps in a visitor's session, and the session layer itself.
//!
//! Sessions live in the database (see `skybook_storage::SessionStore`), so a restart, a deploy or the next
//! request landing on another node sees the same visit; nothing here is held in process memory. The cookie is
//! signed with a key derived from `SKYBOOK_SECRET_KEY`, which every node of a deployment shares.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use skybook_domain::{IdempotencyKey, SecretKey};
use skybook_storage::SessionStore;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::error::ApiError;

pub const COOKIE_NAME: &str = "skybook_session";

/// How many booking-form keys a session remembers: enough for a few tabs and a back button.
const KEYS_KEPT: usize = 10;
/// How many bookings a session may show without asking for the contact email again.
const BOOKINGS_KEPT: usize = 20;

const CREATED_AT: &str = "created_at";
const CSRF: &str = "csrf";
const SEARCH: &str = "search";
const DRAFT: &str = "draft";
const KEYS: &str = "form_keys";
const BOOKINGS: &str = "bookings";
const ADMIN: &str = "admin";

/// Session cookie and lifetime settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// `Secure` cookies (off only with `--insecure-cookies`, for plain-HTTP development).
    pub secure_cookies: bool,
    /// A session unused for this long expires.
    pub idle_timeout: Duration,
    /// A session older than this expires however busy it is.
    pub absolute_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            idle_timeout: Duration::from_secs(30 * 24 * 3600),
            absolute_timeout: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// The session layer: database-backed, signed, `HttpOnly`, `SameSite=Lax`.
pub fn layer(
    store: SessionStore,
    secret: &SecretKey,
    options: &SessionOptions,
) -> SessionManagerLayer<SessionStore, SignedCookie> {
    // cookie::Key wants 64 bytes (signing + encryption halves); derive both from the deployment's secret.
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(&secret.derive("session-cookie-signing"));
    key[32..].copy_from_slice(&secret.derive("session-cookie-encryption"));
    let idle = time::Duration::try_from(options.idle_timeout).unwrap_or(time::Duration::days(30));
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(options.secure_cookies)
        .with_expiry(Expiry::OnInactivity(idle))
        // Every visit counts as activity, not only visits that change something.
        .with_always_save(true)
        .with_signed(Key::from(&key))
}

/// Ends sessions past their absolute lifetime (the idle timeout alone would let a busy session live forever).
pub async fn enforce_absolute_timeout(
    State(limit): State<Duration>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if let Ok(Some(created)) = session.get::<i64>(CREATED_AT).await {
        let age = chrono::Utc::now().timestamp().saturating_sub(created);
        if age >= limit.as_secs() as i64 {
            // A fresh, empty session takes its place for this request.
            let _ = session.flush().await;
        }
    }
    next.run(request).await
}

/// The last flight search, prefilled on the search page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastSearch {
    pub origin: String,
    pub destination: String,
    pub date: String,
    pub passengers: u32,
}

/// The booking form's non-card fields, kept while the traveller types (and across restarts).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Draft {
    pub flight_id: String,
    /// The idempotency key this form submits with, minted by the server for this session.
    pub key: String,
    pub contact_email: String,
    pub passengers: Vec<DraftPassenger>,
    /// Set once the key has been used for a live booking: the next form needs a fresh key.
    pub booked_reference: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DraftPassenger {
    pub given_name: String,
    pub family_name: String,
}

/// A visitor's session, typed.
#[derive(Clone)]
pub struct Visit(pub Session);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Visit {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Session::from_request_parts(parts, state)
            .await
            .map(Visit)
            .map_err(|(_, why)| ApiError::Internal(format!("session layer missing: {why}")))
    }
}

fn session_error(e: tower_sessions::session::Error) -> ApiError {
    match e {
        // The store's errors are database errors: a 503 with Retry-After, like any database outage.
        tower_sessions::session::Error::Store(e) => ApiError::Unavailable {
            what: "session store",
            cause: e.to_string(),
        },
        other => ApiError::Internal(format!("session data: {other}")),
    }
}

impl Visit {
    async fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ApiError> {
        // Data that no longer decodes (an older layout) is treated as absent rather than failing the page.
        match self.0.get::<T>(key).await {
            Ok(v) => Ok(v),
            Err(tower_sessions::session::Error::SerdeJson(_)) => Ok(None),
            Err(e) => Err(session_error(e)),
        }
    }

    /// The one write path: it also starts the absolute-lifetime clock at the session's first write, whatever
    /// that write is.
    async fn set<T: Serialize>(&self, key: &str, value: T) -> Result<(), ApiError> {
        self.0.insert(key, value).await.map_err(session_error)?;
        if self.get::<i64>(CREATED_AT).await?.is_none() {
            let now = chrono::Utc::now().timestamp();
            self.0
                .insert(CREATED_AT, now)
                .await
                .map_err(session_error)?;
        }
        Ok(())
    }

    /// This session's CSRF token, minted on first use.
    pub async fn csrf_token(&self) -> Result<String, ApiError> {
        if let Some(token) = self.get::<String>(CSRF).await? {
            return Ok(token);
        }
        let token = random_hex(32);
        self.set(CSRF, &token).await?;
        Ok(token)
    }

    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub async fn csrf_matches(&self, presented: &str) -> Result<bool, ApiError> {
        Ok(match self.get::<String>(CSRF).await? {
            Some(expected) => constant_time_eq(expected.as_bytes(), presented.as_bytes()),
            None => false,
        })
    }

    pub async fn last_search(&self) -> Result<Option<LastSearch>, ApiError> {
        self.get(SEARCH).await
    }

    pub async fn remember_search(&self, search: &LastSearch) -> Result<(), ApiError> {
        self.set(SEARCH, search).await
    }

    /// The form for `flight_id`: the kept draft if it is for this flight and not yet booked, else a new one
    /// with a freshly minted key (the contact email carries over, as the same traveller is likely typing).
    pub async fn draft_for(&self, flight_id: &str, passengers: usize) -> Result<Draft, ApiError> {
        let kept = self.get::<Draft>(DRAFT).await?;
        let mut draft = match kept {
            Some(d) if d.flight_id == flight_id && d.booked_reference.is_none() => d,
            other => {
                let draft = Draft {
                    flight_id: flight_id.to_owned(),
                    key: self.mint_key().await?,
                    contact_email: other.map(|d| d.contact_email).unwrap_or_default(),
                    passengers: Vec::new(),
                    booked_reference: None,
                };
                self.set(DRAFT, &draft).await?;
                draft
            }
        };
        if draft.passengers.len() < passengers {
            draft
                .passengers
                .resize(passengers, DraftPassenger::default());
        }
        Ok(draft)
    }

    pub async fn draft(&self) -> Result<Option<Draft>, ApiError> {
        self.get(DRAFT).await
    }

    pub async fn save_draft(&self, draft: &Draft) -> Result<(), ApiError> {
        self.set(DRAFT, draft).await
    }

    /// A new idempotency key for a booking form, remembered as this session's.
    pub async fn mint_key(&self) -> Result<String, ApiError> {
        let key = format!("site-{}", random_hex(16));
        debug_assert!(IdempotencyKey::parse(&key).is_ok());
        let mut keys = self.get::<Vec<String>>(KEYS).await?.unwrap_or_default();
        keys.push(key.clone());
        let excess = keys.len().saturating_sub(KEYS_KEPT);
        keys.drain(..excess);
        self.set(KEYS, keys).await?;
        Ok(key)
    }

    /// Whether this session minted `key`: a form's key is only honoured in the session it was made for.
    pub async fn owns_key(&self, key: &str) -> Result<bool, ApiError> {
        Ok(self
            .get::<Vec<String>>(KEYS)
            .await?
            .unwrap_or_default()
            .iter()
            .any(|k| k == key))
    }

    /// Lets this session show the booking `reference` (it made it, or proved the contact email).
    pub async fn allow_booking(&self, reference: &str) -> Result<(), ApiError> {
        let mut refs = self.get::<Vec<String>>(BOOKINGS).await?.unwrap_or_default();
        if refs.iter().any(|r| r == reference) {
            return Ok(());
        }
        refs.push(reference.to_owned());
        let excess = refs.len().saturating_sub(BOOKINGS_KEPT);
        refs.drain(..excess);
        self.set(BOOKINGS, refs).await
    }

    pub async fn may_see_booking(&self, reference: &str) -> Result<bool, ApiError> {
        Ok(self
            .get::<Vec<String>>(BOOKINGS)
            .await?
            .unwrap_or_default()
            .iter()
            .any(|r| r == reference))
    }

    pub async fn is_admin(&self) -> Result<bool, ApiError> {
        Ok(self.get::<bool>(ADMIN).await?.unwrap_or(false))
    }

    /// Marks the session as an admin's, under a new session id (so an id seen before login is worthless).
    pub async fn log_in_admin(&self) -> Result<(), ApiError> {
        self.0.cycle_id().await.map_err(session_error)?;
        self.set(ADMIN, true).await
    }

    pub async fn log_out_admin(&self) -> Result<(), ApiError> {
        self.0.remove::<bool>(ADMIN).await.map_err(session_error)?;
        self.0.cycle_id().await.map_err(session_error)
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
