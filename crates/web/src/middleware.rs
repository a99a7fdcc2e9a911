//! Cross-cutting request handling: request ids, the request log, server-error reporting, panics, metrics.

use std::any::Any;
use std::time::Instant;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use futures::FutureExt;
use skybook_crash::{self as crash, RequestContext};

use crate::error::ServerErrorDetail;
use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// Logs the hidden cause of every 5xx with the request id, and gives the client only the id.
pub async fn report_server_errors(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let html = crate::site::wants_html(req.headers());
    let response = next.run(req).await;
    if !response.status().is_server_error() {
        return response;
    }
    let detail = response
        .extensions()
        .get::<ServerErrorDetail>()
        .map(|d| d.0.clone());
    tracing::error!(request_id = %id, %method, %path, status = response.status().as_u16(),
        cause = detail.as_deref().unwrap_or("(none recorded)"), "server error");
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let mut fresh = if html {
        crate::site::server_error_page(&id)
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "internal", "request_id": id})),
        )
            .into_response()
    };
    if let Some(value) = response.headers().get(REQUEST_ID_HEADER) {
        fresh.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
    }
    fresh
}

/// Runs the request inside a crash context, so a panic in it is reported with its id, method, route and tenant.
pub async fn crash_context(
    State(state): State<AppState>,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let tenant = params
        .iter()
        .find(|(name, _)| *name == "tenant")
        .map(|(_, value)| value.to_owned())
        .unwrap_or_else(|| state.options.site.tenant.as_str().to_owned());
    let context = RequestContext {
        request_id: Some(request_id(&req)),
        method: Some(req.method().as_str().to_owned()),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned()),
        tenant: Some(tenant),
    };
    let id = context.request_id.clone().unwrap_or_default();
    let run = std::panic::AssertUnwindSafe(crash::in_request(context, next.run(req)));
    match run.catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            // Stored off the request path; the panic goes on to the panic layer, which answers 500.
            if let Some(crash) = crash::take_request_panic(&id) {
                let store = state.store.clone();
                tokio::spawn(async move {
                    if let Err(e) = crash::record(&store, &crash).await {
                        tracing::error!(error = %skybook_domain::ErrorChain(&e), request_id = %id, "could not store a crash report");
                    }
                });
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// A panic inside a handler becomes a 500 (reported like any other, with the request id) instead of a dropped
/// connection. (Its crash report was stored by [`crash_context`].)
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = skybook_domain::panic_message(panic.as_ref());
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response
        .extensions_mut()
        .insert(ServerErrorDetail(format!("panic: {message}")));
    response
}

/// Counts requests and their latency by route template (never the raw path, which holds references).
/// A request whose client went away before the answer (the handler future is dropped) is counted with status
/// `499`, as nginx does: a browser's second click cancels the first, and operators should see that happen.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let mut guard = RequestMetrics {
        start: Instant::now(),
        method: method_label(req.method()),
        route,
        status: None,
    };
    let response = next.run(req).await;
    guard.status = Some(response.status().as_u16());
    response
}

/// A metrics label for `method`: the methods HTTP defines, or `other` (a label's values must be a small fixed
/// set: every distinct value is a series kept for the life of the process).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|m| *m == method)
        .map_or("other", Method::as_str)
}

struct RequestMetrics {
    start: Instant,
    method: &'static str,
    route: String,
    /// `None` until a response exists; still `None` when dropped means the client left first.
    status: Option<u16>,
}

impl Drop for RequestMetrics {
    fn drop(&mut self) {
        let status = self.status.unwrap_or(499).to_string();
        let (method, route) = (self.method, self.route.clone());
        metrics::counter!("skybook_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
            .increment(1);
        metrics::histogram!("skybook_http_request_duration_seconds", "method" => method, "route" => route)
            .record(self.start.elapsed().as_secs_f64());
    }
}

/// Debug-only route (`SKYBOOK_ENABLE_FAULT_INJECTION=1`): panics inside a handler.
pub async fn debug_panic() -> &'static str {
    panic!("fault injection: /debug/panic was called")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_labelled_from_a_fixed_set() {
        assert_eq!(method_label(&Method::POST), "POST");
        let invented = Method::from_bytes(&[b'X'; 30_000]).unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
