//! Wiring: building the components from configuration and serving them. Shared by `serve` and `demo`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use skybook_booking::{BookingService, PipelineConfig};
use skybook_clients::{
    ClientCredentials, HttpPaymentProvider, HttpPaymentProviderConfig, PaymentProvider,
    TokenManager, TokenManagerConfig, TokenSource,
};
use skybook_domain::{RetryPolicy, SecretKey};
use skybook_storage::{Engine, MigrationStatus, PoolSettings, Store};
use skybook_web::{AppState, WebOptions};
use tokio::net::TcpListener;

use crate::config::PaymentsConfig;

/// How `connect` treats the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply pending migrations (SQLite always; the demo on PostgreSQL too).
    Migrate,
    /// SQLite migrates; PostgreSQL must already be current (`skybook migrate` runs as its own job).
    MigrateSqliteOnly,
}

pub async fn connect(url: &str, pool: &PoolSettings, schema: Schema) -> Result<Store> {
    let redacted = skybook_storage::redact(url);
    let store = Store::connect(url, pool)
        .await
        .with_context(|| format!("cannot open the database at {redacted}"))?;
    let migrate = schema == Schema::Migrate || store.engine() == Engine::Sqlite;
    if migrate {
        store
            .migrate()
            .await
            .with_context(|| format!("migrating {redacted}"))?;
    } else if let MigrationStatus::Pending(pending) = store.migration_status().await? {
        bail!(
            "the database schema at {redacted} is out of date ({} pending migration(s), e.g. {}): run `skybook migrate` first",
            pending.len(),
            pending[0]
        );
    }
    Ok(store)
}

pub fn payment_provider(config: PaymentsConfig) -> Result<Arc<dyn PaymentProvider>> {
    let mut provider_config = HttpPaymentProviderConfig {
        base_url: config.url,
        auth: None,
        retry: RetryPolicy::outbound(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
    };
    let http = provider_config
        .http_client()
        .context("building the HTTP client")?;
    provider_config.auth = config.credentials.map(|credentials| {
        TokenManager::new(
            http.clone(),
            TokenManagerConfig {
                name: "payments".into(),
                source: TokenSource::ClientCredentials(credentials),
                default_ttl: Duration::from_secs(300),
                retry: RetryPolicy::outbound(),
            },
        )
    });
    Ok(Arc::new(HttpPaymentProvider::new(http, provider_config)))
}

/// The client of the partners' feed endpoint, fetching its own tokens when given credentials.
pub fn feed_client(
    url: url::Url,
    credentials: Option<ClientCredentials>,
) -> Result<skybook_clients::FeedClient> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    let auth = credentials.map(|credentials| {
        TokenManager::new(
            http.clone(),
            TokenManagerConfig {
                name: "feeds".into(),
                source: TokenSource::ClientCredentials(credentials),
                default_ttl: Duration::from_secs(300),
                retry: RetryPolicy::outbound(),
            },
        )
    });
    Ok(skybook_clients::FeedClient::new(
        http,
        url,
        auth,
        RetryPolicy::outbound(),
    ))
}

/// The HTTP surface, the booking pipeline behind it (which the background sentinel shares), and the switch
/// that turns readiness off at shutdown.
pub struct App {
    pub router: axum::Router,
    pub bookings: BookingService,
    pub draining: Arc<AtomicBool>,
}

pub fn app(
    store: Store,
    payments: Arc<dyn PaymentProvider>,
    secret: SecretKey,
    pipeline: PipelineConfig,
    options: WebOptions,
) -> Result<App> {
    // Panics outside requests (the pipeline's own tasks) are stored too.
    skybook_crash::record_background_panics(store.clone());
    let state = AppState::new(store, payments, Arc::new(secret), pipeline, options);
    let (bookings, draining) = (state.bookings.clone(), state.draining.clone());
    Ok(App {
        router: skybook_web::router(state)?,
        bookings,
        draining,
    })
}

/// How `serve` stops (SIGTERM or Ctrl-C): readiness off at once, requests still taken for `drain` (while the
/// load balancer notices), then no new connections, and until `grace` after the signal for the requests in
/// flight to finish. Past it the process exits anyway: what was cut off is resumable, as after a crash.
#[derive(Debug, Clone)]
pub struct Shutdown {
    pub draining: Arc<AtomicBool>,
    pub drain: Duration,
    pub grace: Duration,
}

/// The booking pipeline without the web server (`skybook worker`: the sentinel settles bookings with it).
pub fn booking_service(
    store: Store,
    payments: Arc<dyn PaymentProvider>,
    secret: SecretKey,
    db_retry: RetryPolicy,
) -> BookingService {
    BookingService::new(
        store,
        payments,
        Arc::new(secret),
        Arc::new(skybook_web::JsonRenderer),
        PipelineConfig {
            db_retry,
            ..PipelineConfig::default()
        },
    )
}

pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what}"))
}

/// Serves until SIGINT/SIGTERM, then lets in-flight requests finish.
/// A connection that has not sent a complete request head this long after it opened or after its last
/// answer (a slow-header client, or an idle keep-alive connection) is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` until the shutdown signal, then finishes the requests in flight.
///
/// An HTTP/1.1 accept loop on hyper (as behind any ingress) rather than `axum::serve`, for what that one does not offer:
/// [`HEADER_READ_TIMEOUT`] (a client sending one header line every few seconds held a connection open for
/// minutes), and the peer address on every request (`ConnectInfo`, which the throttles key on).
pub async fn serve(listener: TcpListener, router: axum::Router, shutdown: Shutdown) -> Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use tower::ServiceExt;

    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let signal = async {
        shutdown_signal_with_deadline(shutdown.grace).await;
        shutdown.draining.store(true, Ordering::Relaxed);
        tracing::info!(drain = ?shutdown.drain, grace = ?shutdown.grace, "not ready; draining");
        tokio::time::sleep(shutdown.drain).await;
    };
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(request.map(axum::body::Body::new))
            },
        );
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are a client's (reset, timed out, malformed): nothing to act on.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let left = shutdown.grace.saturating_sub(shutdown.drain);
    if tokio::time::timeout(left, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: requests still in flight are cut off (each resumes like after a crash)");
    }
    Ok(())
}

/// `serve` for the metrics listener: stops with the signal, nothing to drain.
pub async fn serve_until_signal(listener: TcpListener, router: axum::Router) -> Result<()> {
    serve(
        listener,
        router,
        Shutdown {
            draining: Arc::default(),
            drain: Duration::ZERO,
            grace: Duration::from_secs(1),
        },
    )
    .await
}

/// Waits for SIGTERM/Ctrl-C, then guarantees the process is gone `grace` later: whatever is still running
/// (a request stuck on a lock, a background loop mid-round, a pool still closing) is cut off with exit 0 — and
/// left resumable, as after a crash — so the orchestrator never has to SIGKILL it.
pub async fn shutdown_signal_with_deadline(grace: Duration) {
    shutdown_signal().await;
    // A thread of its own, not a task: it fires even if the runtime is busy or already shutting down.
    std::thread::spawn(move || {
        std::thread::sleep(grace);
        tracing::warn!(
            ?grace,
            "grace period over: exiting with work unfinished (it resumes elsewhere)"
        );
        std::process::exit(0);
    });
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
