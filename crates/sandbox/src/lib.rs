//! # skybook-sandbox: the outside world, as a real HTTP service
//!
//! skybook depends on systems it cannot reach in development or tests: an OAuth2 authorisation
//! server, a Stripe-like payment provider and partner data feeds. This crate stands in for all
//! three, speaking the wire format of `docs/sandbox.md` over real sockets, so skybook's clients are
//! exercised end to end (token caching, retries, idempotency keys, lost responses) without knowing
//! they talk to a stand-in.
//!
//! State (tokens, card tokens, charges, refunds) is kept in SQLite, so a restart behaves like a
//! provider that remembers; injected faults live in memory. Run it as its own process (`skybook
//! sandbox`), inside `skybook demo`, or from a test with [`spawn`].
//!
//! Modules: [`config`] (settings), `store` (the database), `oauth` (token endpoint), `jwt`
//! (`private_key_jwt` client assertions), `auth` (bearer checks), `cards` (tokenisation),
//! `payments` (charges, refunds), `feeds` (partner files), `echo` (request echo, any status) and
//! `blobs` (large streamed bodies) for testing proxies, `faults` (fault injection), `controls`
//! (`/health_check`, `/sandbox/*`), `state`, `error`, `ids`.

mod auth;
mod blobs;
mod cards;
pub mod config;
mod controls;
mod echo;
mod error;
mod faults;
mod feeds;
mod ids;
mod jwt;
mod oauth;
mod payments;
mod state;
mod store;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use blobs::{blob_byte, MAX_BLOB_BYTES};
pub use config::{JwtClientError, JwtPublicKey, SandboxConfig};
pub use feeds::{Departure, Timetable};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Store;

/// How long [`RunningSandbox::shutdown`] waits for in-flight requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The sandbox as an axum router. Opens (creating if needed) `<data_dir>/sandbox.db` and its
/// schema.
pub async fn router(config: SandboxConfig) -> anyhow::Result<Router> {
    Ok(build(config).await?.0)
}

/// Serves the sandbox on `listener` until `shutdown` completes, then finishes in-flight requests
/// and closes the database.
pub async fn serve(
    config: SandboxConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (app, store) = build(config).await?;
    run(listener, app, store, shutdown).await
}

/// Binds `listen` (port 0 picks a free port), and serves the sandbox in a background task.
pub async fn spawn(config: SandboxConfig, listen: SocketAddr) -> anyhow::Result<RunningSandbox> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the sandbox to {listen}"))?;
    let addr = listener
        .local_addr()
        .context("reading the sandbox's bound address")?;
    let (app, store) = build(config).await?;
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let shutdown = async move {
        // Dropping the handle without calling `shutdown` keeps the sandbox serving.
        if shutdown_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let task = tokio::spawn(run(listener, app, store, shutdown));
    tracing::info!(%addr, "sandbox listening");
    Ok(RunningSandbox {
        addr,
        shutdown: shutdown_tx,
        task,
    })
}

/// A sandbox serving in a background task (see [`spawn`]). Dropping it leaves the sandbox serving
/// until the runtime stops; call [`RunningSandbox::shutdown`] to stop it and release its database.
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningSandbox {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (a wildcard bind is reported as loopback).
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops accepting connections, lets in-flight requests finish (for at most 10 s) and closes
    /// the database, so the same data dir can be opened again straight away.
    pub async fn shutdown(self) {
        let Self {
            shutdown, mut task, ..
        } = self;
        let _ = shutdown.send(());
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "sandbox stopped with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "sandbox task failed"),
            Err(_) => {
                tracing::warn!("sandbox did not stop in time; aborting it");
                task.abort();
            }
        }
    }
}

async fn build(config: SandboxConfig) -> anyhow::Result<(Router, Store)> {
    let store = Store::open(&config.data_dir).await?;
    let state = AppState::load(config, store.clone()).await?;
    Ok((routes(state), store))
}

async fn run(
    listener: TcpListener,
    app: Router,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    store.close().await;
    result.context("serving the sandbox")
}

fn routes(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/tokens", post(cards::create_token))
        .route(
            "/v1/charges",
            post(payments::create_charge).get(payments::list_charges),
        )
        .route("/v1/charges/{id}", get(payments::get_charge))
        .route("/v1/refunds", post(payments::create_refund))
        .route("/v1/echo", get(echo::echo).post(echo::echo))
        .route("/v1/status/{code}", get(echo::status))
        .route("/v1/blobs", post(blobs::upload))
        .route("/v1/blobs/{bytes}", get(blobs::download))
        .route_layer(from_fn_with_state(state.clone(), auth::require_bearer))
        .route_layer(from_fn_with_state(state.clone(), faults::inject_latency));
    let feeds = Router::new()
        .route("/feeds/{tenant}/{feed}", get(feeds::get_feed))
        .route_layer(from_fn_with_state(state.clone(), auth::require_bearer));
    Router::new()
        .route("/oauth/token", post(oauth::token))
        .route("/health_check", get(controls::health_check))
        .route("/sandbox/stats", get(controls::stats))
        .route(
            "/sandbox/faults",
            get(controls::get_faults).post(controls::set_faults),
        )
        .merge(v1)
        .merge(feeds)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "unknown_endpoint",
                "no such endpoint",
            )
        })
        .with_state(state)
}
