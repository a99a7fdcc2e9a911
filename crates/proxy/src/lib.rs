//! `skybook auth-proxy`: an in-cluster HTTP proxy that gets OAuth2 access tokens for third-party APIs, keeps
//! them fresh, and injects them into calls forwarded from internal services, which send no credentials.
//!
//! `GET <prefix>/rest?query` → `GET <upstream>/rest?query` with `Authorization: Bearer <token>`. Bodies stream
//! both ways (memory stays flat however large they are); hop-by-hop headers are dropped; `X-Forwarded-*` are
//! set; connections to upstreams are pooled (HTTP/1.1 keep-alive).
//!
//! Tokens come from [`skybook_clients::TokenManager`], one per route: one fetch in flight whatever the
//! concurrency; refreshed in the background at half-life, so no request waits while the cached token is valid;
//! an unreachable token endpoint is retried with backoff while the cached token serves; once it has expired
//! and none can be had, requests get a fast `503` naming the route and the cause.
//!
//! An upstream `401` drops the token (one refetch however many requests saw it) and the request is retried once
//! when that is safe: an idempotent method, or a small buffered body carrying an `Idempotency-Key`.

pub mod config;
mod forward;
mod ops;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

pub use config::{ConfigError, ProxyConfig, RouteAuth, RouteConfig};
pub use route::Route;

/// What request handlers share.
#[derive(Clone)]
pub struct Proxy {
    routes: Arc<Vec<Route>>,
    metrics: PrometheusHandle,
}

impl Proxy {
    /// Builds the routes (token managers start cold: the first request fetches).
    pub fn new(config: &ProxyConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .expect("HTTP client for token endpoints");
        let routes = config.routes.iter().map(|r| Route::new(r, &http)).collect();
        Self {
            routes: Arc::new(routes),
            metrics: ops::metrics_handle(),
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The proxy's router: ops endpoints, then every other path forwarded by prefix.
    pub fn router(self) -> Router {
        Router::new()
            .route("/health_check", get(ops::health_check))
            .route("/ready", get(ops::ready))
            .route("/metrics", get(ops::metrics))
            .fallback(forward::forward)
            .with_state(self)
    }
}

/// Serves `proxy` on `listener` until `shutdown` resolves; in-flight requests are allowed to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    proxy: Proxy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        proxy
            .router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
