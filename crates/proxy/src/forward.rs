//! Forwarding one request: pick the route, set credentials and forwarding headers, stream the bodies, and
//! handle an upstream `401` by refetching the token once.
//!
//! Bodies pass through as hyper's own `Incoming` streams both ways (no boxing, no copies); only a small
//! replayable request body is collected, into `Full`, so it can be sent again after a `401`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use serde_json::json;

use crate::route::{Credential, Route};
use crate::upstream::UpstreamPool;
use crate::Proxy;

/// What goes upstream: the client's body streamed as is, or a small one kept for a retry.
pub(crate) type UpstreamBody = Either<Incoming, Full<Bytes>>;
/// What goes back to the client: the upstream's body streamed as is, or one of ours (errors, probe endpoints).
pub(crate) type ProxyBody = Either<Incoming, Body>;

/// Request bodies up to this size (with a known length) are buffered when the request may be retried after
/// a `401`; anything else streams straight through and is never retried.
const RETRY_BUFFER_LIMIT: u64 = 64 * 1024;

/// RFC 9110 §7.6.1: connection-specific headers never forwarded (plus any the `Connection` header names).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Forwards `request` from `peer` on its route; a path no route owns gets a `404` naming the known prefixes.
pub(crate) async fn forward(
    proxy: &Proxy,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let start = Instant::now();
    let Some(index) = proxy
        .routes()
        .iter()
        .position(|r| r.matches(request.uri().path()))
    else {
        let known: Vec<&str> = proxy.routes().iter().map(Route::prefix).collect();
        return ours(
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "unknown_route", "path": request.uri().path(), "known_prefixes": known})),
            )
                .into_response(),
        );
    };
    let (route, client) = (&proxy.routes()[index], &proxy.clients[index]);
    let method = request.method().clone();
    tracing::debug!(route = route.prefix(), method = %method, "forwarding");
    let response = forward_on(&Upstream { route, client }, peer, request).await;
    let status = response.status();
    let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
    route.metrics.requests[class].increment(1);
    tracing::info!(route = route.prefix(), method = %method, status = status.as_u16(),
        latency_ms = start.elapsed().as_millis() as u64, "proxied");
    response
}

/// One of our own responses (an error, a probe endpoint) in the proxy's body type.
pub(crate) fn ours(response: Response<Body>) -> Response<ProxyBody> {
    response.map(Either::Right)
}

/// A route and this worker's connection pool to its upstream.
struct Upstream<'a> {
    route: &'a Route,
    client: &'a UpstreamPool,
}

async fn forward_on(
    up: &Upstream<'_>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let route = up.route;
    let (mut parts, body) = request.into_parts();
    let uri = route.upstream_uri(parts.uri.path(), parts.uri.query());
    // A body is kept for a retry only when replaying it is safe and it is small and of known length.
    let replayable = is_idempotent(&parts.method) || parts.headers.contains_key("idempotency-key");
    let length = body_length(&parts.headers);
    let headers = forwarded_headers(route, std::mem::take(&mut parts.headers), peer);

    let bytes: Bytes = if replayable {
        match length {
            Some(0) => Bytes::new(),
            Some(n) if n <= RETRY_BUFFER_LIMIT => {
                match Limited::new(body, n as usize).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            route,
                            "request_body",
                            e.to_string(),
                        )
                    }
                }
            }
            _ => return send_streaming(up, parts.method, uri, headers, body).await,
        }
    } else {
        return send_streaming(up, parts.method, uri, headers, body).await;
    };

    let credential = match route.credential().await {
        Ok(c) => c,
        Err(e) => return token_unavailable(route, e),
    };
    let mut first = send(
        up,
        &parts.method,
        &uri,
        headers.clone(),
        &credential,
        Either::Right(Full::new(bytes.clone())),
    )
    .await;
    if first.extensions().get::<FailedOnOpenConnection>().is_some() {
        // A pooled connection the upstream had closed (its keep-alive timer fired as we sent): the request is
        // safe to replay, and the pool hands out a fresh connection. Once.
        first = send(
            up,
            &parts.method,
            &uri,
            headers.clone(),
            &credential,
            Either::Right(Full::new(bytes.clone())),
        )
        .await;
    }
    if first.status() != StatusCode::UNAUTHORIZED || !route.reject(&credential) {
        return first;
    }
    // The token was refused: one refetch (shared by every request that saw the same 401), one retry.
    let credential = match route.credential().await {
        Ok(c) => c,
        Err(e) => return token_unavailable(route, e),
    };
    route.metrics.unauthorized_retries.increment(1);
    send(
        up,
        &parts.method,
        &uri,
        headers,
        &credential,
        Either::Right(Full::new(bytes)),
    )
    .await
}

/// A request whose body cannot be replayed: sent once, and a `401` is passed back (after dropping the token,
/// so the next request gets a fresh one).
async fn send_streaming(
    up: &Upstream<'_>,
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Incoming,
) -> Response<ProxyBody> {
    let route = up.route;
    let credential = match route.credential().await {
        Ok(c) => c,
        Err(e) => return token_unavailable(route, e),
    };
    let response = send(up, &method, &uri, headers, &credential, Either::Left(body)).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        route.reject(&credential);
    }
    response
}

/// Marks a `502` for a request that failed on an established connection (not while connecting): a replayable
/// request is sent once more.
#[derive(Clone, Copy)]
struct FailedOnOpenConnection;

async fn send(
    up: &Upstream<'_>,
    method: &Method,
    uri: &str,
    headers: HeaderMap,
    credential: &Credential,
    body: UpstreamBody,
) -> Response<ProxyBody> {
    let route = up.route;
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = match uri.parse() {
        Ok(uri) => uri,
        Err(e) => return error(StatusCode::BAD_REQUEST, route, "bad_path", e.to_string()),
    };
    *request.headers_mut() = headers;
    request
        .headers_mut()
        .insert(credential.header.clone(), credential.value.clone());

    let start = Instant::now();
    let result = tokio::time::timeout(route.config.read_timeout, up.client.send(request)).await;
    route
        .metrics
        .upstream_seconds
        .record(start.elapsed().as_secs_f64());
    match result {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Either::Left(body))
        }
        Ok(Err(e)) => {
            let mut response = error(
                StatusCode::BAD_GATEWAY,
                route,
                "upstream_unreachable",
                e.to_string(),
            );
            if matches!(e, crate::upstream::UpstreamError::Http(_)) {
                response.extensions_mut().insert(FailedOnOpenConnection);
            }
            response
        }
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            route,
            "upstream_timeout",
            format!(
                "no response within {} ms",
                route.config.read_timeout.as_millis()
            ),
        ),
    }
}

/// The client's headers minus hop-by-hop ones, `Host` and any credentials, plus `X-Forwarded-*` and the
/// route's own headers.
fn forwarded_headers(route: &Route, mut headers: HeaderMap, peer: SocketAddr) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    let host = headers.remove(header::HOST);
    headers.remove(header::AUTHORIZATION);
    let ip = peer.ip().to_string();
    let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {ip}"),
        None => ip,
    };
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    for (name, value) in &route.config.headers {
        headers.insert(name.clone(), value.clone());
    }
    headers
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::try_from(name.trim()).ok())
            .collect();
        for name in &named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The body's length when it is known: `Content-Length`, or zero for a request with neither it nor chunking.
fn body_length(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    match headers.get(header::CONTENT_LENGTH) {
        Some(v) => v.to_str().ok()?.parse().ok(),
        None => Some(0),
    }
}

fn token_unavailable(route: &Route, e: skybook_clients::TokenError) -> Response<ProxyBody> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        route,
        "token_unavailable",
        e.to_string(),
    )
}

fn error(status: StatusCode, route: &Route, code: &str, cause: String) -> Response<ProxyBody> {
    if status.is_server_error() {
        tracing::warn!(route = route.prefix(), code, %cause, "proxy error");
    }
    ours(
        (
            status,
            Json(json!({"error": code, "route": route.prefix(), "cause": cause})),
        )
            .into_response(),
    )
}
