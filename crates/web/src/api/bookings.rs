//! `POST /api/v1/tenants/{tenant}/bookings` and `GET .../bookings/{reference}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use skybook_booking::Reply;
use skybook_domain::{BookingReference, IdempotencyKey};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::render::{BookingEnvelope, BookingJson};
use crate::AppState;

/// The request body (documentation; the handler parses it field by field to report every error at once).
#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
pub struct BookingRequestJson {
    flight_id: String,
    contact_email: String,
    passengers: Vec<PassengerRequestJson>,
    card: CardRequestJson,
}

#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
pub struct PassengerRequestJson {
    given_name: String,
    family_name: String,
}

#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
pub struct CardRequestJson {
    /// 12–19 digits, Luhn-valid. Sent on to the payment provider's tokeniser; never stored or logged.
    number: String,
    exp_month: u8,
    exp_year: u16,
    cvc: String,
}

/// Book seats and pay. Safe to retry with the same `Idempotency-Key`: the customer is charged at most once.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/bookings",
    params(
        ("tenant" = String, Path, description = "Tenant slug"),
        ("Idempotency-Key" = String, Header, description = "16–255 visible ASCII characters, unique per booking attempt"),
    ),
    request_body = BookingRequestJson,
    responses(
        (status = 201, description = "Booked and charged", body = BookingEnvelope),
        (status = 202, description = "Accepted; the payment outcome is not known yet and will be settled without a second charge", body = BookingEnvelope),
        (status = 400, description = "Missing or invalid Idempotency-Key"),
        (status = 402, description = "Card declined; seats released"),
        (status = 404, description = "Unknown tenant or flight"),
        (status = 409, description = "sold_out, duplicate_booking (with the existing reference), or request_in_progress"),
        (status = 422, description = "invalid (every bad field named) or idempotency_key_reused"),
        (status = 503, description = "Database or payment provider unavailable; retry"),
    ),
    tag = "bookings"
)]
pub async fn create(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = super::tenant(&state, &tenant).await?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| IdempotencyKey::parse(v).ok())
        .ok_or(ApiError::IdempotencyKeyRequired)?;
    let request =
        crate::parse::booking_request(&body, Utc::now().date_naive()).map_err(ApiError::Invalid)?;
    let reply = state.bookings.create(&tenant, &key, request).await?;
    Ok(reply_response(reply))
}

fn reply_response(reply: Reply) -> Response {
    let status =
        StatusCode::from_u16(reply.rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.rendered.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if reply.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// A booking by its reference, within the tenant only.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/bookings/{reference}",
    params(("tenant" = String, Path, description = "Tenant slug"), ("reference" = String, Path, description = "6-character reference")),
    responses((status = 200, body = BookingEnvelope), (status = 404, description = "No such booking for this tenant")),
    tag = "bookings"
)]
pub async fn show(
    State(state): State<AppState>,
    Path((tenant, reference)): Path<(String, String)>,
) -> Result<Json<BookingEnvelope>, ApiError> {
    let tenant = super::tenant(&state, &tenant).await?;
    let reference =
        BookingReference::parse(&reference).map_err(|_| ApiError::NotFound("booking"))?;
    let view = super::booking_view(&state, tenant.id, &reference).await?;
    Ok(Json(BookingEnvelope {
        booking: BookingJson::from(&view),
    }))
}
