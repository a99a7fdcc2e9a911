//! Bearer-token checking for every protected endpoint (`/v1/*`, `/feeds/*`).
//!
//! Valid tokens are kept in memory (as SHA-256 hashes with their expiry), loaded from the database
//! at start and added to as `/oauth/token` issues them, so checking a request never touches SQLite.
//! Expiry is checked against the wall clock on every request.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::ids::{now_millis, token_hash};
use crate::state::AppState;

/// SHA-256 of each valid access token → its expiry (unix ms).
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: RwLock<HashMap<String, i64>>,
}

impl TokenCache {
    /// Remembers a token hash, dropping tokens that have expired meanwhile.
    pub fn insert(&self, hash: String, expires_at_ms: i64) {
        let now = now_millis();
        let mut tokens = self
            .tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.retain(|_, expires| *expires > now);
        tokens.insert(hash, expires_at_ms);
    }

    /// Whether `token` was issued by this sandbox and has not expired.
    pub fn is_valid(&self, token: &str) -> bool {
        let hash = token_hash(token);
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens
            .get(&hash)
            .is_some_and(|expires| *expires > now_millis())
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
