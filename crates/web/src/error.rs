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
use skybook_domain::{ErrorChain, FieldErrors};
use skybook_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("idempotency key required")]
    IdempotencyKeyRequired,
    #[error("more than one idempotency key")]
    IdempotencyKeyTwice,
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// Too many attempts from one client; retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("request in progress")]
    RequestInProgress,
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    #[error("unauthorized")]
    Unauthorized,
    /// A form POST without this session's CSRF token, or with a form key the session did not mint.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
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
                cause: ErrorChain(&e).to_string(),
            }
        } else {
            Self::Internal(ErrorChain(&e).to_string())
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
            BookingError::Aborted(cause) => Self::Unavailable {
                what: "booking service",
                cause,
            },
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyKeyRequired | Self::IdempotencyKeyTwice => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestInProgress => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Marks a 5xx response with its hidden cause for the reporting middleware (and a 503 with `Retry-After`).
    pub(crate) fn mark_server_error(&self, response: &mut Response) {
        if let Self::Unavailable { .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if let Self::TooManyRequests { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if self.status().is_server_error() {
            response
                .extensions_mut()
                .insert(ServerErrorDetail(self.to_string()));
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            Self::NotFound(what) => json!({"error": "not_found", "resource": what}),
            Self::Invalid(fields) => json!({"error": "invalid", "fields": fields}),
            Self::IdempotencyKeyRequired => json!({"error": "idempotency_key_required",
                "message": "send an Idempotency-Key header of 16 to 255 visible ASCII characters"}),
            Self::IdempotencyKeyTwice => json!({"error": "idempotency_key_required",
                "message": "send exactly one Idempotency-Key header"}),
            Self::UnsupportedMediaType => json!({"error": "unsupported_media_type",
                "message": "send the body as application/json"}),
            Self::TooManyRequests { retry_after_secs } => json!({"error": "too_many_requests",
                "retry_after": retry_after_secs}),
            Self::RequestInProgress => json!({"error": "request_in_progress"}),
            Self::IdempotencyKeyReused => json!({"error": "idempotency_key_reused"}),
            Self::Unauthorized => json!({"error": "unauthorized"}),
            Self::Forbidden(reason) => json!({"error": "forbidden", "reason": reason}),
            Self::Unavailable { what, .. } => json!({"error": "service_unavailable",
                "message": format!("the {what} is unavailable; retry shortly")}),
            // Replaced by the reporting middleware with the request id.
            Self::Internal(_) => json!({"error": "internal"}),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        self.mark_server_error(&mut response);
        response
    }
}
