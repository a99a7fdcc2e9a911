//! Endpoints for testing what sits between a client and the sandbox (an auth proxy): `/v1/echo`
//! reports the request exactly as it arrived here (which headers were replaced, added or removed on
//! the way), `/v1/status/{code}` answers any status a test asks for.

use std::collections::BTreeMap;

use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::blobs;
use crate::error::ApiError;

/// `GET|POST /v1/echo`: `{"method", "path", "query", "headers", "body_bytes"}`. Header names are
/// lowercase; a header sent several times is reported once, its values joined by `", "` in the
/// order received. The body is counted as it streams in, never held.
pub async fn echo(request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let body_bytes = blobs::consume(body, |_| {}).await?;
    Ok(Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_bytes": body_bytes,
    }))
    .into_response())
}

/// `GET /v1/status/{code}`: that status (200..=599) with `{"status", "reason"}`, or no body for
/// the statuses that must not have one (204, 205, 304).
pub async fn status(Path(code): Path<String>) -> Result<Response, ApiError> {
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| {
            ApiError::invalid_request(
                "parameter_invalid",
                "the status must be a number from 200 to 599",
            )
        })?;
    if matches!(status.as_u16(), 204 | 205 | 304) {
        return Ok(status.into_response());
    }
    let body = json!({ "status": status.as_u16(), "reason": status.canonical_reason() });
    Ok((status, Json(body)).into_response())
}
