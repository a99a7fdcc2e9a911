//! The sandbox's own control surface, open without a token: `/health_check`, `/sandbox/stats` (what
//! has happened, for tests to assert on) and `/sandbox/faults` (what should go wrong next).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::{parse_json, ApiError};
use crate::faults::FaultsPatch;
use crate::ids::now_millis;
use crate::state::{AppState, Counters};
use crate::store::StoreError;

/// `GET /health_check`.
pub async fn health_check() -> &'static str {
    "ok"
}

/// `GET /sandbox/stats`: totals over the stored state plus this process's request counters.
pub async fn stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let totals = state.store.totals().await.map_err(StoreError::from)?;
    let counters = &state.counters;
    Ok(Json(json!({
        "tokens_issued": totals.tokens_issued,
        "token_requests_failed": Counters::read(&counters.token_requests_failed),
        "card_tokens": totals.card_tokens,
        "charges": totals.charges,
        "declines": totals.declines,
        "refunds": totals.refunds,
        "charge_requests": Counters::read(&counters.charge_requests),
        "idempotent_replays": Counters::read(&counters.idempotent_replays),
        "feed_requests": Counters::read(&counters.feed_requests),
        "token_revocations": totals.token_revocations,
        "faults": state.faults.current(),
    }))
    .into_response())
}

/// `GET /sandbox/faults`: the current settings.
pub async fn get_faults(State(state): State<AppState>) -> Response {
    Json(state.faults.current()).into_response()
}

/// `POST /sandbox/faults`: applies the given settings on top of the current ones (`{}` or an empty
/// body clears all) and answers the result. `revoke_tokens: true` revokes every access token issued
/// so far, durably (a restart does not bring them back).
#[tracing::instrument(name = "set_faults", skip_all)]
pub async fn set_faults(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let patch: FaultsPatch = if body.iter().all(u8::is_ascii_whitespace) {
        FaultsPatch::default()
    } else {
        parse_json(&body)?
    };
    if let Some(query) = &patch.feed_query {
        crate::feeds::check_defaults(query)?;
    }
    if patch.revoke_tokens == Some(true) {
        let revoked_through = state
            .store
            .revoke_access_tokens(now_millis())
            .await
            .map_err(StoreError::from)?;
        state.tokens.revoke_through(revoked_through);
        tracing::info!(
            revoked_through,
            "every access token issued so far is revoked"
        );
    }
    let faults = state.faults.apply(patch);
    tracing::info!(?faults, "sandbox faults set");
    Ok(Json(faults).into_response())
}
