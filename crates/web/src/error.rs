//! The one HTTP error type.
//!
//! Error policy:
//! - Client errors (4xx) say exactly what was wrong, in the JSON shape CONTRACT.md fixes
//!   (`{"error": "<code>", ...}`); a 422 names every bad field at once.
//! - Server errors (5xx) never show their cause to the client. The cause travels in a response extension to
//!   [`crate::middleware::report_server_errors`], which logs it with the request id and answers
//!   `{"error": "internal", "request_id": "..."}`, so an operator can find the log line from what the customer saw.
//! - A database that is away is a `503` with `Retry-After`, not a 500: the request may succeed shortly.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use skybook_booking::BookingError;
use skybook_domain::FieldErrors;
use skybook_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("idempotency key required")]
    IdempotencyKeyRequired,
    #[error("request in progress")]
    RequestInProgress,
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    #[error("unauthorized")]
    Unauthorized,
    #[error("{what} unavailable: {cause}")]
    Unavailable { what: &'static str, cause: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// The hidden cause of a 5xx, read by the error-reporting middleware.
#[derive(Debug, Clone)]
pub struct ServerErrorDetail(pub String);

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_transient() {
            Self::Unavailable {
                what: "database",
                cause: e.to_string(),
            }
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<BookingError> for ApiError {
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::FlightNotFound => Self::NotFound("flight"),
            BookingError::RequestInProgress => Self::RequestInProgress,
            BookingError::KeyReused => Self::IdempotencyKeyReused,
            BookingError::FlightDeparted => {
                let mut fields = FieldErrors::new();
                fields.add("flight_id", "this flight has already departed");
                Self::Invalid(fields)
            }
            BookingError::AmountOutOfRange => {
                let mut fields = FieldErrors::new();
                fields.add(
                    "passengers",
                    "the total for this many passengers is out of range",
                );
                Self::Invalid(fields)
            }
            BookingError::PaymentUnavailable(cause) => Self::Unavailable {
                what: "payment provider",
                cause,
            },
            BookingError::Storage(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "resource": what}),
            ),
            Self::Invalid(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "invalid", "fields": fields}),
            ),
            Self::IdempotencyKeyRequired => (
                StatusCode::BAD_REQUEST,
                json!({"error": "idempotency_key_required",
                       "message": "send an Idempotency-Key header of 16 to 255 visible ASCII characters"}),
            ),
            Self::RequestInProgress => (
                StatusCode::CONFLICT,
                json!({"error": "request_in_progress"}),
            ),
            Self::IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "idempotency_key_reused"}),
            ),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"})),
            Self::Unavailable { what, .. } => {
                let body = json!({"error": "service_unavailable", "message": format!("the {what} is unavailable; retry shortly")});
                let mut response =
                    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                response
                    .extensions_mut()
                    .insert(ServerErrorDetail(self.to_string()));
                return response;
            }
            Self::Internal(cause) => {
                let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
                response
                    .extensions_mut()
                    .insert(ServerErrorDetail(cause.clone()));
                return response;
            }
        };
        (status, axum::Json(body)).into_response()
    }
}
