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
use crate::render::{BookingEnvelope, BookingJson, ErrorJson};
use crate::throttle::Client;
use crate::AppState;

/// The request body (documentation; the handler parses it field by field to report every error at once).
#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
pub struct BookingRequestJson {
    /// A flight id from the flight search.
    #[schema(format = Uuid)]
    flight_id: String,
    /// Where the confirmation goes; also the proof that reads the booking back.
    #[schema(format = Email, max_length = 254, pattern = r"^\s*[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[^\s@]+\.[^\s@]+\s*$")]
    contact_email: String,
    #[schema(min_items = 1, max_items = 9)]
    passengers: Vec<PassengerRequestJson>,
    card: CardRequestJson,
}

#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
pub struct PassengerRequestJson {
    /// As on the passport: at most 100 characters, not only spaces, no control characters. (The server also
    /// refuses invisible and formatting characters and a name without a letter, which the fuzzers' regex
    /// dialects cannot say.)
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    given_name: String,
    /// As `given_name`.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    family_name: String,
}

#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
pub struct CardRequestJson {
    /// 12–19 digits (spaces and hyphens between them are ignored), Luhn-valid. Sent on to the payment
    /// provider's tokeniser; never stored or logged.
    #[schema(pattern = r"^[ -]*([0-9][ -]*){12,19}$")]
    number: String,
    #[schema(minimum = 1, maximum = 12)]
    exp_month: u8,
    /// Four digits, or two (`31` is 2031); not in the past.
    #[schema(schema_with = expiry_year)]
    exp_year: u16,
    #[schema(pattern = r"^[0-9]{3,4}$")]
    cvc: String,
}

/// `exp_year`: 2000–2100, or 0–99 for the years of this century.
fn expiry_year() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    let years = |min: i32, max: i32| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
    };
    AnyOfBuilder::new()
        .item(years(2000, 2100))
        .item(years(0, 99))
        .description(Some(
            "2000–2100, or 0–99 for this century's years (31 is 2031); not in the past",
        ))
        .build()
        .into()
}

/// Book seats and pay. Safe to retry with the same `Idempotency-Key`: the customer is charged at most once.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/bookings",
    params(
        ("tenant" = String, Path, description = "Tenant slug", pattern = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$", example = "demo"),
        ("Idempotency-Key" = String, Header,
            description = "16–255 visible ASCII characters, unique per booking attempt. The same key with the same body answers what the first request answered (without a second charge); with another body, 422 `idempotency_key_reused`; while the first is still running, 409 `request_in_progress`",
            min_length = 16, max_length = 255, pattern = r"^[!-~]+$", example = "booking-2026-0001-abcd"),
    ),
    request_body = BookingRequestJson,
    responses(
        (status = 201, description = "Booked and charged", body = BookingEnvelope, links(
            ("ShowBooking" = (operation_id = "show_booking", parameters(
                ("path.tenant" = "$request.path.tenant"),
                ("path.reference" = "$response.body#/booking/reference"),
                ("query.email" = "$response.body#/booking/contact_email")
            ), description = "Read the booking back: its reference, with the contact email as proof"))
        )),
        (status = 202, description = "Accepted; the payment outcome is not known yet and will be settled without a second charge", body = BookingEnvelope, links(
            ("ShowBooking" = (operation_id = "show_booking", parameters(
                ("path.tenant" = "$request.path.tenant"),
                ("path.reference" = "$response.body#/booking/reference"),
                ("query.email" = "$response.body#/booking/contact_email")
            ), description = "Follow the booking until it settles"))
        )),
        (status = 400, description = "`idempotency_key_required`: missing, invalid or repeated Idempotency-Key", body = ErrorJson),
        (status = 402, description = "`card_declined`, with the failed booking; seats released", body = ErrorJson),
        (status = 404, description = "`not_found`: unknown tenant or flight", body = ErrorJson),
        (status = 409, description = "`sold_out`, `duplicate_booking` (with the existing booking), or `request_in_progress`", body = ErrorJson),
        (status = 413, description = "`payload_too_large`: body over 64 KiB", body = ErrorJson),
        (status = 415, description = "`unsupported_media_type`: the body is not declared application/json", body = ErrorJson),
        (status = 422, description = "`invalid` (every bad field named) or `idempotency_key_reused`", body = ErrorJson),
        (status = 500, description = "`internal`, with the request id the log has the cause under", body = ErrorJson),
        (status = 502, description = "`payment_failed`, with the failed booking: the provider refused the payment; nothing charged", body = ErrorJson),
        (status = 503, description = "`service_unavailable`: database or payment provider unavailable; retry with the same key after Retry-After", body = ErrorJson),
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
    operation_id = "show_booking",
    params(
        ("tenant" = String, Path, description = "Tenant slug", pattern = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$", example = "demo"),
        ("reference" = String, Path, description = "6-character reference (any case)", pattern = "^[A-Za-z0-9]{6}$"),
        BookingProof,
    ),
    responses(
        (status = 200, description = "The booking", body = BookingEnvelope),
        (status = 404, description = "`not_found`: no such booking for this tenant, or the proof does not match it", body = ErrorJson),
        (status = 429, description = "`too_many_requests`: too many lookups from this client; see Retry-After", body = ErrorJson),
        (status = 500, description = "`internal`, with the request id", body = ErrorJson),
        (status = 503, description = "`service_unavailable`: the database is unavailable; retry", body = ErrorJson),
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
