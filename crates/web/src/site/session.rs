//! What the website keeps in a visitor's session, and the session layer itself.
//!
//! Sessions live in the database (see `skybook_storage::SessionStore`), so a restart, a deploy or the next
//! request landing on another node sees the same visit; nothing here is held in process memory. The cookie is
//! signed with a key derived from `SKYBOOK_SECRET_KEY`, which every node of a deployment shares.
//!
//! A session is stored only once there is something to keep (a search, a draft, a booking it may show, an
//! admin sign-in): a visitor who only looks costs no row. The forms' CSRF token is therefore not kept in the
//! session but in a cookie of its own (the signed double-submit pattern: a form must carry the value of a
//! `SameSite=Strict`, `HttpOnly` cookie that another site can neither read nor set, and the value is a nonce
//! with its HMAC under the deployment's secret, so only this deployment's tokens are accepted).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use skybook_domain::{IdempotencyKey, OperatorTokenId, SecretKey};
use skybook_storage::SessionStore;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::error::ApiError;

pub const COOKIE_NAME: &str = "skybook_session";
/// The forms' CSRF token (see the module doc). Over HTTPS its name carries the `__Host-` prefix, which a
/// browser accepts only from this very host, `Secure`, for `/`: a sibling subdomain or a plain-HTTP
/// man-in-the-middle cannot plant one of its own.
pub const CSRF_COOKIE_NAME: &str = "skybook_csrf";
const SECURE_CSRF_COOKIE_NAME: &str = "__Host-skybook_csrf";

fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_CSRF_COOKIE_NAME
    } else {
        CSRF_COOKIE_NAME
    }
}

/// How many bookings a session may show without asking for the contact email again.
const BOOKINGS_KEPT: usize = 20;

const CREATED_AT: &str = "created_at";
const CSRF: &str = "csrf";
const SEARCH: &str = "search";
const DRAFT: &str = "draft";
const KEYS: &str = "form_keys";
const BOOKINGS: &str = "bookings";
const ADMIN: &str = "admin";
/// A tenant operator's session: the id of the token it signed in with (checked for revocation at each request).
const OPERATOR: &str = "operator";

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
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(options.secure_cookies)
        .with_expiry(Expiry::OnInactivity(idle(options)))
        .with_signed(Key::from(&key))
}

fn idle(options: &SessionOptions) -> time::Duration {
    time::Duration::try_from(options.idle_timeout).unwrap_or(time::Duration::days(30))
}

/// A session's lifetimes and the CSRF cookie, around every site request: ends sessions past their absolute
/// lifetime (the idle timeout alone would let a busy session live forever), counts a visit to a session that
/// holds something as activity (an empty one is never stored), and sets the CSRF cookie a page minted.
pub async fn lifetimes(
    State((options, signer)): State<(SessionOptions, CsrfSigner)>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    if let Ok(Some(created)) = session.get::<i64>(CREATED_AT).await {
        let age = chrono::Utc::now().timestamp().saturating_sub(created);
        if age >= options.absolute_timeout.as_secs() as i64 {
            // A fresh, empty session takes its place for this request.
            let _ = session.flush().await;
        }
    }
    let minted = MintedCsrf::default();
    request.extensions_mut().insert(minted.clone());
    request.extensions_mut().insert(signer);
    let mut response = next.run(request).await;
    if !session.is_empty().await {
        session.set_expiry(Some(Expiry::OnInactivity(idle(&options))));
    }
    if let Some(token) = minted.0.lock().expect("not poisoned").take() {
        let secure = if options.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            csrf_cookie_name(options.secure_cookies),
            options.idle_timeout.as_secs()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A CSRF token a page minted during this request, for [`lifetimes`] to set as a cookie.
#[derive(Clone, Default)]
struct MintedCsrf(Arc<Mutex<Option<String>>>);

/// Mints and checks CSRF tokens: a random nonce and its MAC under the deployment's secret.
#[derive(Clone)]
pub struct CsrfSigner {
    secret: Arc<SecretKey>,
    /// HTTPS: the cookie goes by its `__Host-` name.
    secure: bool,
}

impl CsrfSigner {
    pub fn new(secret: Arc<SecretKey>, secure: bool) -> Self {
        Self { secret, secure }
    }

    fn sign(&self, nonce: &str) -> String {
        format!(
            "{nonce}{}",
            hex::encode(self.secret.derive(&format!("csrf-cookie/{nonce}")))
        )
    }

    fn mint(&self) -> String {
        self.sign(&random_hex(16))
    }

    /// A booking form's key: `site-`, the nonce, and the first 128 bits of its MAC under `csrf`.
    fn form_key(&self, csrf: &str, nonce: &str) -> String {
        let mac = self.secret.derive(&format!("form-key/{csrf}/{nonce}"));
        format!("site-{nonce}{}", hex::encode(&mac[..16]))
    }

    /// `token` if this deployment minted it.
    fn verified(&self, token: &str) -> Option<String> {
        let nonce = token.get(..32)?;
        (token.len() == 96
            && token.bytes().all(|b| b.is_ascii_hexdigit())
            && constant_time_eq(self.sign(nonce).as_bytes(), token.as_bytes()))
        .then(|| token.to_owned())
    }
}

/// The CSRF cookie the request carried, under the name this deployment sets.
fn presented_csrf_cookie(headers: &HeaderMap, secure: bool) -> Option<&str> {
    let wanted = csrf_cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
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

/// A visitor's session, typed, with the request's CSRF cookie.
#[derive(Clone)]
pub struct Visit {
    session: Session,
    /// The CSRF cookie the request came with, if this deployment minted it.
    csrf_cookie: Option<String>,
    minted: MintedCsrf,
    signer: CsrfSigner,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Visit {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, why)| ApiError::Internal(format!("session layer missing: {why}")))?;
        let signer = parts
            .extensions
            .get::<CsrfSigner>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("session lifetimes layer missing".into()))?;
        Ok(Self {
            session,
            csrf_cookie: presented_csrf_cookie(&parts.headers, signer.secure)
                .and_then(|t| signer.verified(t)),
            minted: parts
                .extensions
                .get::<MintedCsrf>()
                .cloned()
                .unwrap_or_default(),
            signer,
        })
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
        match self.session.get::<T>(key).await {
            Ok(v) => Ok(v),
            Err(tower_sessions::session::Error::SerdeJson(_)) => Ok(None),
            Err(e) => Err(session_error(e)),
        }
    }

    /// The one write path: it also starts the absolute-lifetime clock at the session's first write, whatever
    /// that write is.
    async fn set<T: Serialize>(&self, key: &str, value: T) -> Result<(), ApiError> {
        self.session
            .insert(key, value)
            .await
            .map_err(session_error)?;
        if self.get::<i64>(CREATED_AT).await?.is_none() {
            let now = chrono::Utc::now().timestamp();
            self.session
                .insert(CREATED_AT, now)
                .await
                .map_err(session_error)?;
        }
        Ok(())
    }

    /// The CSRF token for this visitor's forms: the one its cookie holds, or a new one (set as the cookie with
    /// the response).
    pub async fn csrf_token(&self) -> Result<String, ApiError> {
        let mut minted = self.minted.0.lock().expect("not poisoned");
        if let Some(token) = minted.as_ref().or(self.csrf_cookie.as_ref()) {
            return Ok(token.clone());
        }
        let token = self.signer.mint();
        *minted = Some(token.clone());
        Ok(token)
    }

    /// A new CSRF token from now on (at a change of privilege: admin sign-in), replacing the cookie's.
    fn rotate_csrf_token(&self) {
        *self.minted.0.lock().expect("not poisoned") = Some(self.signer.mint());
    }

    /// Whether `presented` (a form's `csrf` field) is this visitor's CSRF token, compared in constant time.
    /// Sessions from before the token moved to its cookie still hold it, and are accepted too.
    pub async fn csrf_matches(&self, presented: &str) -> Result<bool, ApiError> {
        let cookie = self
            .csrf_cookie
            .as_ref()
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), presented.as_bytes()));
        if cookie {
            return Ok(true);
        }
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
    /// The booking form's fields for `flight`: the draft kept for it, or a fresh one with a new key — not
    /// stored until the traveller types or sends it (looking at a form keeps nothing).
    pub async fn draft_for(&self, flight_id: &str, passengers: usize) -> Result<Draft, ApiError> {
        let kept = self.get::<Draft>(DRAFT).await?;
        let mut draft = match kept {
            Some(d) if d.flight_id == flight_id && d.booked_reference.is_none() => d,
            other => Draft {
                flight_id: flight_id.to_owned(),
                key: self.mint_key().await?,
                contact_email: other.map(|d| d.contact_email).unwrap_or_default(),
                passengers: Vec::new(),
                booked_reference: None,
            },
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
    /// A fresh idempotency key for this visitor's booking form: a nonce and its MAC under this visitor's CSRF
    /// token, so only the browser holding that cookie can send a form with it (a form cannot be replayed from
    /// another browser, nor a key forged), and nothing is stored to remember it.
    pub async fn mint_key(&self) -> Result<String, ApiError> {
        let csrf = self.csrf_token().await?;
        let key = self.signer.form_key(&csrf, &random_hex(8));
        debug_assert!(IdempotencyKey::parse(&key).is_ok());
        Ok(key)
    }

    /// Whether `key` was minted for this visitor: by its CSRF cookie, or (sessions from before keys were
    /// signed) in the session's list.
    pub async fn owns_key(&self, key: &str) -> Result<bool, ApiError> {
        let signed = key
            .strip_prefix("site-")
            .and_then(|rest| rest.get(..16))
            .zip(self.csrf_cookie.as_deref())
            .is_some_and(|(nonce, csrf)| {
                constant_time_eq(self.signer.form_key(csrf, nonce).as_bytes(), key.as_bytes())
            });
        if signed {
            return Ok(true);
        }
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
    /// A new session id and a new CSRF token: whatever an attacker planted or saw before the sign-in is
    /// worth nothing after it.
    pub async fn log_in_admin(&self) -> Result<(), ApiError> {
        self.session.cycle_id().await.map_err(session_error)?;
        self.rotate_csrf_token();
        self.session
            .remove::<String>(CSRF)
            .await
            .map_err(session_error)?;
        self.session
            .remove::<OperatorTokenId>(OPERATOR)
            .await
            .map_err(session_error)?;
        self.set(ADMIN, true).await
    }

    /// The operator token this session signed in with, if a tenant operator's.
    pub async fn operator_token(&self) -> Result<Option<OperatorTokenId>, ApiError> {
        self.get(OPERATOR).await
    }

    /// Marks the session as tenant operator `token`'s, as [`Self::log_in_admin`] does for the platform admin.
    pub async fn log_in_operator(&self, token: OperatorTokenId) -> Result<(), ApiError> {
        self.session.cycle_id().await.map_err(session_error)?;
        self.rotate_csrf_token();
        self.session
            .remove::<String>(CSRF)
            .await
            .map_err(session_error)?;
        self.session
            .remove::<bool>(ADMIN)
            .await
            .map_err(session_error)?;
        self.set(OPERATOR, token).await
    }

    pub async fn log_out_admin(&self) -> Result<(), ApiError> {
        self.session
            .remove::<bool>(ADMIN)
            .await
            .map_err(session_error)?;
        self.session
            .remove::<OperatorTokenId>(OPERATOR)
            .await
            .map_err(session_error)?;
        self.session.cycle_id().await.map_err(session_error)
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
