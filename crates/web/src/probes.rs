//! Operations endpoints: liveness, readiness, metrics.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use skybook_storage::MigrationStatus;

use crate::{ApiError, AppState};

/// `200 ok` while the process serves. Mounted outside the request log so probes do not flood it.
pub async fn health_check() -> &'static str {
    "ok"
}

/// `200` when the database answers and its schema is the one this build expects; `503` otherwise (a node on a
/// database whose migrations have not run yet takes no traffic, and its log says to run them).
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    // A probe wants a quick answer: a database that takes longer than this is as good as away.
    let checked = tokio::time::timeout(READY_TIMEOUT, async {
        state.store.ping().await?;
        // A schema once current stays current for this build (migrations only add): checked until then.
        if state.schema_current.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match state.store.migration_status().await? {
            MigrationStatus::UpToDate => {
                state.schema_current.store(true, Ordering::Relaxed);
                Ok(None)
            }
            MigrationStatus::Pending(pending) => Ok(Some(pending)),
        }
    })
    .await;
    match checked {
        Ok(Ok(None)) => (StatusCode::OK, "ready"),
        Ok(Ok(Some(pending))) => {
            tracing::warn!(
                pending = pending.len(),
                first = %pending[0],
                "not ready: the database schema is behind this build; run `skybook migrate`"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database schema out of date",
            )
        }
        Ok(Err(e)) => {
            let e: skybook_storage::StorageError = e;
            tracing::warn!(error = %skybook_domain::ErrorChain(&e), "not ready: database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
        Err(_) => {
            tracing::warn!("not ready: database did not answer within {READY_TIMEOUT:?}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Who may read `/metrics` on the main listener. Metrics say how busy the business is and which routes fail:
/// they are for the operator's scraper, not the public.
#[derive(Debug, Clone, Default)]
pub enum MetricsAccess {
    /// Anyone (the demo, on loopback).
    #[default]
    Open,
    /// With `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// Not here: served on a listener of its own ([`metrics_router`]) that only the cluster reaches, or not at all.
    Elsewhere,
}

/// Prometheus text format, to whom [`MetricsAccess`] allows.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match &state.options.metrics {
        MetricsAccess::Open => {}
        MetricsAccess::Bearer(token) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            let allowed = presented.is_some_and(|p| {
                crate::site::constant_time_eq(p.as_bytes(), token.expose_secret().as_bytes())
            });
            if !allowed {
                return ApiError::Unauthorized.into_response();
            }
        }
        MetricsAccess::Elsewhere => return ApiError::NotFound("route").into_response(),
    }
    render(&state.metrics)
}

fn render(handle: &PrometheusHandle) -> Response {
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// `/metrics` alone, open, for a listener of its own (`--metrics-listen`): bind it where only the scraper
/// reaches (a port the public Service does not expose).
pub fn metrics_router() -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { render(&metrics_handle()) }),
    )
}

/// The process-wide Prometheus recorder, installed on first use (a process has one global recorder; tests
/// build many routers in one process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then that one records and ours stays empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
