//! `POST /api/v1/tenants/{tenant}/bookings` and `GET .../bookings/{reference}`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use skybook_booking::Reply;
use skybook_domain::{BookingReference, IdempotencyKey, PersonName};
use skybook_storage::BookingRecord;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::render::{BookingEnvelope, BookingJson};
use crate::throttle::Client;
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
        (status = 400, description = "Missing, invalid or repeated Idempotency-Key"),
        (status = 402, description = "Card declined; seats released"),
        (status = 404, description = "Unknown tenant or flight"),
        (status = 409, description = "sold_out, duplicate_booking (with the existing reference), or request_in_progress"),
        (status = 413, description = "Body over 64 KiB"),
        (status = 415, description = "The body is not declared application/json"),
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
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let key = idempotency_key(&headers)?;
    let request =
        crate::parse::booking_request(&body, Utc::now().date_naive()).map_err(ApiError::Invalid)?;
    let reply = state.bookings.create(&tenant, &key, request).await?;
    Ok(reply_response(reply))
}

/// The one `Idempotency-Key` header, parsed. Two of them are refused rather than one picked: a client that
/// sends two does not know which request it is making.
fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let mut keys = headers.get_all("idempotency-key").iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) => key
            .to_str()
            .ok()
            .and_then(|v| IdempotencyKey::parse(v).ok())
            .ok_or(ApiError::IdempotencyKeyRequired),
        (Some(_), Some(_)) => Err(ApiError::IdempotencyKeyTwice),
        (None, _) => Err(ApiError::IdempotencyKeyRequired),
    }
}

/// Whether the body is declared JSON (`application/json`, parameters such as `charset` allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
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

/// What proves a caller may read a booking, as an airline asks for the reference and a surname: the contact
/// email, or the family name of one of its passengers (compared on its machine-readable form, so "O'Brien"
/// proves "OBRIEN").
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingProof {
    /// The booking's contact email (any case).
    email: Option<String>,
    /// The family name of one of the booking's passengers.
    family_name: Option<String>,
}

impl BookingProof {
    fn proves(&self, booking: &BookingRecord) -> bool {
        let email = self.email.as_deref().map(str::trim).is_some_and(|email| {
            !email.is_empty() && email.eq_ignore_ascii_case(booking.contact_email.as_str())
        });
        let family = self
            .family_name
            .as_deref()
            .and_then(|raw| PersonName::parse(raw).ok())
            .is_some_and(|name| {
                let form = name.normalized();
                booking
                    .passengers
                    .iter()
                    .any(|p| p.family_name.normalized() == form)
            });
        email || family
    }
}

/// A booking by its reference and a proof (the contact email or a passenger's family name), within the tenant
/// only. An unknown reference and a wrong proof answer the same 404; lookups are throttled per client.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/bookings/{reference}",
    params(
        ("tenant" = String, Path, description = "Tenant slug"),
        ("reference" = String, Path, description = "6-character reference"),
        BookingProof,
    ),
    responses(
        (status = 200, body = BookingEnvelope),
        (status = 404, description = "No such booking for this tenant, or the proof does not match it"),
        (status = 429, description = "Too many lookups from this client; see Retry-After"),
    ),
    tag = "bookings"
)]
pub async fn show(
    State(state): State<AppState>,
    client: Client,
    Path((tenant, reference)): Path<(String, String)>,
    proof: Result<Query<BookingProof>, QueryRejection>,
) -> Result<Json<BookingEnvelope>, ApiError> {
    state.throttles.booking_lookup.attempt(client)?;
    // A query that does not parse (a repeated field, bad escapes) proves nothing: the same 404 as a wrong proof,
    // in the API's shape rather than the framework's plain-text 400.
    let Ok(Query(proof)) = proof else {
        return Err(ApiError::NotFound("booking"));
    };
    let tenant = super::tenant(&state, &tenant).await?;
    let reference =
        BookingReference::parse(&reference).map_err(|_| ApiError::NotFound("booking"))?;
    let view = super::booking_view(&state, tenant.id, &reference).await?;
    if !proof.proves(&view.booking) {
        return Err(ApiError::NotFound("booking"));
    }
    Ok(Json(BookingEnvelope {
        booking: BookingJson::from(&view),
    }))
}
