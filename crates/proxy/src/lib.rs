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
mod probes;
mod route;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceExt;

pub use config::{ConfigError, ProxyConfig, RouteAuth, RouteConfig};
pub use route::Route;

/// What request handlers share. The routes (and their token managers) are shared by every worker; the
/// upstream connection pools belong to one worker ([`Proxy::for_worker`]), so a connection is always driven by
/// the thread that uses it.
#[derive(Clone)]
pub struct Proxy {
    routes: Arc<Vec<Route>>,
    clients: Arc<Vec<upstream::UpstreamPool>>,
    metrics: PrometheusHandle,
    /// Set at shutdown: `/ready` answers 503 so callers stop being sent here while requests still are served.
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    /// Builds the routes (token managers start cold: the first request fetches).
    pub fn new(config: &ProxyConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .expect("HTTP client for token endpoints");
        // The recorder first: the routes register their metric handles with it.
        let metrics = probes::metrics_handle();
        let routes: Vec<Route> = config.routes.iter().map(|r| Route::new(r, &http)).collect();
        let clients = routes
            .iter()
            .map(|r| upstream::UpstreamPool::new(&r.config))
            .collect();
        Self {
            routes: Arc::new(routes),
            clients: Arc::new(clients),
            metrics,
            draining: Arc::default(),
        }
    }

    /// The same routes and tokens with connection pools of its own, for one worker thread.
    pub fn for_worker(&self) -> Self {
        Self {
            routes: Arc::clone(&self.routes),
            clients: Arc::new(
                self.routes
                    .iter()
                    .map(|r| upstream::UpstreamPool::new(&r.config))
                    .collect(),
            ),
            metrics: self.metrics.clone(),
            draining: Arc::clone(&self.draining),
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// From now on `/ready` answers 503 (every worker's): the process is about to stop.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Asks every route for its token now and then every few seconds, whether or not requests come: the proxy
    /// is ready (`/ready`) without waiting for traffic — which an orchestrator sends only once it is ready —
    /// and a quiet route's token is still refreshed at half-life, never left to expire. Runs until dropped.
    pub async fn keep_tokens_fresh(&self) {
        loop {
            for route in self.routes.iter() {
                // Failures are logged and counted by the token manager; requests meanwhile get their 503.
                let _ = route.credential().await;
            }
            tokio::time::sleep(TOKEN_KEEPALIVE).await;
        }
    }

    /// The router of the proxy's own endpoints ([`PROBE_PATHS`]); every other path is forwarded by prefix.
    fn probes_router(self) -> Router {
        Router::new()
            .route("/health_check", get(probes::health_check))
            .route("/ready", get(probes::ready))
            .route("/metrics", get(probes::metrics))
            .with_state(self)
    }
}

/// How often [`Proxy::keep_tokens_fresh`] asks for the tokens (cheap: a cached token is a lock and a clone).
const TOKEN_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves on `listen` with `workers` threads, each a single-threaded runtime with its own `SO_REUSEPORT`
/// listener and upstream pools (nginx's worker model: no work stealing, no cross-thread wakeups on the hot
/// path). `bound` is told the address once the first worker listens. Returns when `shutdown` has resolved
/// and every worker has let its in-flight requests finish.
pub async fn serve_workers(
    listen: SocketAddr,
    proxy: Proxy,
    workers: usize,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut addr = listen;
    let mut threads = Vec::new();
    for i in 0..workers.max(1) {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (worker, mut stop) = (proxy.for_worker(), stop_rx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("proxy-worker-{i}"))
            .spawn(move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = match reuseport_listener(addr) {
                        Ok(l) => {
                            let _ = ready_tx.send(l.local_addr());
                            l
                        }
                        Err(e) => {
                            let _ =
                                ready_tx.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    };
                    serve(listener, worker, async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await
                })
            })?;
        // Workers after the first bind the port the first one got (it may have been 0).
        addr = ready_rx
            .await
            .map_err(|_| std::io::Error::other("proxy worker died while binding"))??;
        threads.push(thread);
    }
    bound(addr);
    let keeper = tokio::spawn({
        let proxy = proxy.clone();
        async move { proxy.keep_tokens_fresh().await }
    });
    shutdown.await;
    keeper.abort();
    let _ = stop_tx.send(true);
    tokio::task::spawn_blocking(move || {
        for thread in threads {
            thread
                .join()
                .map_err(|_| std::io::Error::other("proxy worker panicked"))??;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves `proxy` on `listener` until `shutdown` resolves; in-flight requests are allowed to finish (idle
/// keep-alive connections are closed).
///
/// HTTP/1.1 straight on hyper rather than through `axum::serve` and a router: every forwarded request skips
/// the router, the body boxing and the protocol sniffing, which measurably costs CPU per request (see
/// bench/README.md). The three probe endpoints still go to an axum [`Router`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    proxy: Proxy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let probes = proxy.clone().probes_router();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let http = hyper::server::conn::http1::Builder::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A client that gave up before we accepted: nothing to do.
                Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin on the error.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (proxy, probes) = (proxy.clone(), probes.clone());
        let service = hyper::service::service_fn(move |request| {
            handle(proxy.clone(), probes.clone(), peer, request)
        });
        let connection =
            graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn handle(
    proxy: Proxy,
    probes: Router,
    peer: SocketAddr,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<forward::ProxyBody>, std::convert::Infallible> {
    if PROBE_PATHS.contains(&request.uri().path()) {
        let response = probes
            .oneshot(request.map(axum::body::Body::new))
            .await
            .unwrap_or_else(|never| match never {});
        return Ok(forward::ours(response));
    }
    Ok(forward::forward(&proxy, peer, request).await)
}

const PROBE_PATHS: [&str; 3] = ["/health_check", "/ready", "/metrics"];
