//! What every answer carries and every request must be, whatever route it reaches: security headers, a
//! request id that is ours to trust, a body read within bounds, and one JSON error shape for the statuses the
//! framework answers before a handler runs (405, 408, 413).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::middleware::REQUEST_ID_HEADER;

/// How long a client may take to send a request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body read (a booking is a few hundred bytes; a form for nine travellers a few KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The site's own pages pass this policy: scripts and styles come only from `/static/`, nothing inline, and no
/// other site may frame a page (the pay form and the admin included).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Adds the security headers to every response. `hsts`: the deployment serves HTTPS (its cookies are
/// `Secure`), so browsers are told to use nothing else.
pub async fn security_headers(State(hsts): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    // References travel in paths (`/bookings/ABC234`): never hand them to another site.
    set(header::REFERRER_POLICY, "no-referrer");
    // Nothing dynamic is cached by browsers or shared caches (booking, payment and admin pages above all);
    // the static assets say otherwise themselves.
    set(header::CACHE_CONTROL, "no-store");
    if hsts {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}

/// A client's `X-Request-Id` is kept only when it is a plain token of sane length; anything else (spaces,
/// `=`, control characters, a second header) is dropped, so the id layer mints one and no client can write
/// its own fields into the log.
pub async fn trusted_request_id(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let mut ids = headers.get_all(REQUEST_ID_HEADER).iter();
    let plain = match (ids.next(), ids.next()) {
        (Some(id), None) => is_plain_token(id.as_bytes()),
        (None, _) => true,
        _ => false,
    };
    if !plain {
        headers.remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

fn is_plain_token(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Reads the request body before any handler does, within [`BODY_READ_TIMEOUT`] and [`MAX_BODY_BYTES`]: a
/// slow body is a JSON `408`, a large one a JSON `413`, and a handler never waits on a client.
pub async fn bounded_body(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    // The admin's file upload streams its body to disk under the importer's own limits (size, compression
    // ratio), behind an operator's token: a partner file is many times this limit.
    if request.uri().path() == crate::site::UPLOAD_PATH {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_length_limit(&e) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("the body may be at most {MAX_BODY_BYTES} bytes"),
            )
        }
        Ok(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body could not be read",
            )
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                &format!("the body did not arrive within {BODY_READ_TIMEOUT:?}"),
            )
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// `405` in the API's error shape (the framework's own is an empty body).
pub async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take that method",
    )
}

/// `{"error": code, "message": ...}` with `status`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "message": message })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_request_ids_are_kept() {
        for ok in ["abc", "3f2a-11", "trace.id:42", &"a".repeat(64)] {
            assert!(is_plain_token(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "spoofed-id=1 status=200 injected=yes",
            "a\nb",
            &"a".repeat(65),
            "caf\u{e9}",
        ] {
            assert!(!is_plain_token(bad.as_bytes()), "{bad:?}");
        }
    }
}
