//! The Stripe-like payment provider: charges and refunds (`/v1/charges`, `/v1/refunds`).
//!
//! Both writes are idempotent on the `Idempotency-Key` header, enforced by the database (see
//! [`Store::create_charge`](crate::store::Store::create_charge)). Declines are charges too
//! (`status: "failed"`, answered `402`), so a retried declined request declines again without a
//! second decline being counted. The charge faults (`fail_next_charges`,
//! `lose_next_charge_responses`) hook in here because they are about exactly this endpoint's
//! failure modes: failing before anything happens, and succeeding without the client hearing about
//! it.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{parse_json, ApiError};
use crate::faults::drop_connection;
use crate::state::{AppState, Counters};
use crate::store::{Charge, NewCharge, Outcome, Refund};

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Largest accepted `limit` on `GET /v1/charges`.
const MAX_LIST_LIMIT: i64 = 10_000;

#[derive(Deserialize)]
struct ChargeRequest {
    amount: i64,
    currency: String,
    source: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RefundRequest {
    charge: String,
    #[serde(default)]
    amount: Option<i64>,
}

/// The JSON charge object.
pub fn charge_json(charge: &Charge) -> Value {
    let metadata: Value = serde_json::from_str(&charge.metadata).unwrap_or_else(|_| json!({}));
    json!({
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "currency": charge.currency,
        "status": charge.status,
        "source": charge.source,
        "description": charge.description,
        "metadata": metadata,
        "idempotency_key": charge.idempotency_key,
        "amount_refunded": charge.amount_refunded,
        "refunded": charge.amount > 0 && charge.amount_refunded >= charge.amount,
        "created": charge.created,
    })
}

fn refund_json(refund: &Refund) -> Value {
    json!({
        "id": refund.id,
        "object": "refund",
        "charge": refund.charge,
        "amount": refund.amount,
        "status": "succeeded",
        "created": refund.created,
    })
}

/// The `Idempotency-Key` header: required, 1..=255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get("idempotency-key").ok_or_else(|| {
        ApiError::invalid_request(
            "missing_idempotency_key",
            "the Idempotency-Key header is required",
        )
    })?;
    value
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len()))
        .ok_or_else(|| {
            ApiError::invalid_request(
                "invalid_idempotency_key",
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            )
        })
}

/// `POST /v1/charges`.
#[tracing::instrument(
    name = "create_charge",
    skip_all,
    fields(idempotency_key, charge, status)
)]
pub async fn create_charge(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    Counters::bump(&state.counters.charge_requests);
    if state.faults.take_charge_failure() {
        tracing::info!("failing charge request (fail_next_charges fault)");
        return Err(ApiError::internal(
            "sandbox_fault",
            "injected failure: fail_next_charges",
        ));
    }
    let key = idempotency_key(&headers)?;
    tracing::Span::current().record("idempotency_key", key);
    let request: ChargeRequest = parse_json(&body)?;
    if request.amount < 1 {
        return Err(ApiError::invalid_request(
            "amount_too_small",
            "amount must be a positive number of minor units",
        ));
    }
    let currency = request.currency.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ApiError::invalid_request(
            "invalid_currency",
            "currency must be a 3-letter ISO code",
        ));
    }
    let metadata = serde_json::to_string(&request.metadata.unwrap_or_default()).map_err(|_| {
        ApiError::invalid_request("parameter_invalid", "metadata must map strings to strings")
    })?;
    let new = NewCharge {
        idempotency_key: key,
        amount: request.amount,
        currency: &currency,
        source: &request.source,
        description: request.description.as_deref(),
        metadata,
    };

    let outcome = state
        .store
        .create_charge(&new, state.faults.decline_all())
        .await?;
    if matches!(outcome, Outcome::Replayed(_)) {
        Counters::bump(&state.counters.idempotent_replays);
    }
    let charge = outcome.into_inner();
    let span = tracing::Span::current();
    span.record("charge", charge.id.as_str());
    span.record("status", charge.status.as_str());
    if state.faults.take_lost_response() {
        tracing::info!("dropping the connection after charging (lose_next_charge_responses fault)");
        drop_connection();
    }
    if charge.succeeded() {
        Ok(Json(charge_json(&charge)).into_response())
    } else {
        let mut error = ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            "card_declined",
            "the card was declined",
        );
        error.charge = Some(charge.id);
        Err(error)
    }
}

/// `GET /v1/charges/{id}`.
#[tracing::instrument(name = "get_charge", skip(state))]
pub async fn get_charge(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let charge = state
        .store
        .charge_by_id(&id)
        .await
        .map_err(crate::store::StoreError::from)?;
    let charge = charge.ok_or_else(|| ApiError::resource_missing("no such charge"))?;
    Ok(Json(charge_json(&charge)).into_response())
}

/// `GET /v1/charges`, optionally `?idempotency_key=K`, `?status=succeeded|failed`, `?limit=n`.
#[tracing::instrument(name = "list_charges", skip_all)]
pub async fn list_charges(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query
        .map_err(|_| ApiError::invalid_request("parameter_invalid", "malformed query string"))?;
    let charges = if let Some(key) = query.get("idempotency_key") {
        let charge = state
            .store
            .charge_by_idempotency_key(key)
            .await
            .map_err(crate::store::StoreError::from)?;
        charge.into_iter().collect()
    } else {
        let status = query.get("status").map(String::as_str);
        if status.is_some_and(|s| s != "succeeded" && s != "failed") {
            return Err(ApiError::invalid_request(
                "parameter_invalid",
                "status must be succeeded or failed",
            ));
        }
        let limit = query
            .get("limit")
            .map(|limit| {
                limit
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_request("parameter_invalid", "limit must be 1 to 10000")
                    })
            })
            .transpose()?;
        state
            .store
            .list_charges(status, limit)
            .await
            .map_err(crate::store::StoreError::from)?
    };
    let data: Vec<Value> = charges.iter().map(charge_json).collect();
    Ok(Json(json!({ "object": "list", "data": data })).into_response())
}

/// `POST /v1/refunds`.
#[tracing::instrument(name = "create_refund", skip_all, fields(idempotency_key, charge))]
pub async fn create_refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    tracing::Span::current().record("idempotency_key", key);
    let request: RefundRequest = parse_json(&body)?;
    tracing::Span::current().record("charge", request.charge.as_str());
    if request.amount.is_some_and(|amount| amount < 1) {
        return Err(ApiError::invalid_request(
            "parameter_invalid",
            "amount must be a positive number of minor units",
        ));
    }
    let refund = state
        .store
        .create_refund(key, &request.charge, request.amount)
        .await?
        .into_inner();
    tracing::info!(refund = %refund.id, amount = refund.amount, "refund answered");
    Ok(Json(refund_json(&refund)).into_response())
}
