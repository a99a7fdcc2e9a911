//! Bearer-token checking for every protected endpoint (`/v1/*`, `/feeds/*`).
//!
//! Valid tokens are kept in memory (as SHA-256 hashes with their expiry), loaded from the database
//! at start and added to as `/oauth/token` issues them, so checking a request never touches SQLite.
//! Expiry is checked against the wall clock on every request; the `revoke_tokens` fault drops
//! every token issued so far.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::ids::{now_millis, token_hash};
use crate::state::AppState;

/// SHA-256 of each valid access token → its database rowid and expiry (unix ms), plus the
/// revocation mark: tokens whose rowid is at most `revoked_through` are revoked.
///
/// Comparing rowids (not the order in which tokens reach this cache) makes `revoke_tokens` exact
/// even while tokens are being issued: a token stored before the revocation row is revoked however
/// late it is inserted here, one stored after it is not.
#[derive(Debug, Default)]
pub struct TokenCache {
    inner: RwLock<Tokens>,
}

#[derive(Debug, Default)]
struct Tokens {
    by_hash: HashMap<String, (i64, i64)>,
    revoked_through: i64,
}

impl TokenCache {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tokens> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers a token hash, dropping tokens that have expired meanwhile.
    pub fn insert(&self, hash: String, rowid: i64, expires_at_ms: i64) {
        let now = now_millis();
        let mut tokens = self.write();
        if rowid <= tokens.revoked_through {
            return;
        }
        tokens.by_hash.retain(|_, (_, expires)| *expires > now);
        tokens.by_hash.insert(hash, (rowid, expires_at_ms));
    }

    /// Revokes every token whose rowid is at most `rowid`.
    pub fn revoke_through(&self, rowid: i64) {
        let mut tokens = self.write();
        tokens.revoked_through = tokens.revoked_through.max(rowid);
        let mark = tokens.revoked_through;
        tokens
            .by_hash
            .retain(|_, (token_rowid, _)| *token_rowid > mark);
    }

    /// Whether `token` was issued by this sandbox, has not expired and was not revoked.
    pub fn is_valid(&self, token: &str) -> bool {
        let hash = token_hash(token);
        let tokens = self
            .inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.by_hash.get(&hash).is_some_and(|(rowid, expires)| {
            *rowid > tokens.revoked_through && *expires > now_millis()
        })
    }
}

/// The token in `Authorization: Bearer <token>` (scheme case-insensitive), if there is one.
fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: `401 invalid_token` unless the request carries a valid, unexpired bearer token.
pub async fn require_bearer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match bearer_token(&request) {
        Some(token) if state.tokens.is_valid(token) => next.run(request).await,
        _ => ApiError::invalid_token().into_response(),
    }
}
