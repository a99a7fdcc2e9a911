//! The proxy's own endpoints: liveness, readiness (every route holds a valid token), metrics.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::Proxy;

/// `200 ok`; not request-logged.
pub async fn health_check() -> &'static str {
    "ok"
}

/// `200` only when every token-authenticated route holds a valid token (and the proxy is not shutting down);
/// otherwise `503` naming the others.
pub async fn ready(State(proxy): State<Proxy>) -> impl IntoResponse {
    if proxy.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "shutting_down": true})),
        );
    }
    let waiting: Vec<&str> = proxy
        .routes()
        .iter()
        .filter(|r| !r.has_valid_credentials())
        .map(|r| r.prefix())
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "routes_without_token": waiting})),
        )
    }
}

pub async fn metrics(State(proxy): State<Proxy>) -> impl IntoResponse {
    proxy.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        proxy.metrics.render(),
    )
}

/// The process's Prometheus recorder (installed once; a second installer in the same process gets a detached
/// handle rather than a panic).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ])
                .expect("valid buckets")
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}
