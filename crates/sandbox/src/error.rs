//! The two error shapes the sandbox speaks. Payment, feed and bearer errors are Stripe-like
//! (`{"error": {"type", "code", "message"}}`); the token endpoint answers RFC 6749 §5.2 shapes
//! (`{"error": "invalid_client"}`). Every rejection of client input goes through here so bad input
//! is a 4xx with a body a client can act on, never a bare 500 or an axum plain-text rejection.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::store::StoreError;

/// A Stripe-like error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    /// The failed charge, for `card_declined`.
    pub charge: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            charge: None,
        }
    }

    /// `400 invalid_request_error`.
    pub fn invalid_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// `404 invalid_request_error / resource_missing`.
    pub fn resource_missing(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            message,
        )
    }

    /// `401 authentication_error / invalid_token`, answered with `WWW-Authenticate`.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_token",
            "a valid bearer access token is required",
        )
    }

    /// `500 api_error`: something on our side, never the client's input.
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            code,
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "type": self.kind, "code": self.code, "message": self.message });
        if let Some(charge) = self.charge {
            error["charge"] = json!(charge);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyKeyReused => Self::new(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                "idempotency_key_reused",
                "this Idempotency-Key was already used with different parameters",
            ),
            StoreError::UnknownSource => Self::resource_missing("no such card token"),
            StoreError::UnknownCharge => Self::resource_missing("no such charge"),
            StoreError::ChargeNotRefundable => Self::invalid_request(
                "charge_not_refundable",
                "a failed charge cannot be refunded",
            ),
            StoreError::ChargeAlreadyRefunded => Self::invalid_request(
                "charge_already_refunded",
                "the charge has been refunded in full",
            ),
            StoreError::AmountTooLarge { remaining } => Self::invalid_request(
                "amount_too_large",
                format!("refund amount exceeds what is left to refund ({remaining})"),
            ),
            StoreError::Database(error) => {
                tracing::error!(%error, "sandbox database error");
                Self::internal("database_error", "the sandbox database failed")
            }
        }
    }
}

/// Parses a JSON body into `T`, mapping every failure to a `400` in the Stripe-like shape.
///
/// The serde message is passed on so a client sees which field is wrong; callers handling secrets
/// (card numbers) replace it, since serde quotes offending values.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        let code = match error.classify() {
            serde_json::error::Category::Data => "parameter_invalid",
            _ => "invalid_json",
        };
        ApiError::invalid_request(code, format!("invalid request body: {error}"))
    })
}

/// An OAuth2 token-endpoint error (RFC 6749 §5.2).
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: &'static str,
    /// `WWW-Authenticate` to send, for `invalid_client`.
    pub challenge: Option<&'static str>,
}

impl OAuthError {
    pub fn invalid_request(description: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description,
            challenge: None,
        }
    }

    pub fn unsupported_grant_type() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            description: "only grant_type=client_credentials is supported",
            challenge: None,
        }
    }

    pub fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "client authentication failed",
            challenge: Some("Basic realm=\"sandbox\""),
        }
    }

    pub fn temporarily_unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: "the token endpoint is down (sandbox fault)",
            challenge: None,
        }
    }

    pub fn server_error() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the sandbox could not issue a token",
            challenge: None,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
