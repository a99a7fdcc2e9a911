//! One worker's keep-alive connections to one route's upstream: HTTP/1.1 on `hyper::client::conn::http1`.
//!
//! Why not `hyper_util`'s pooled `Client`: a worker is one thread with pools of its own, so none of that
//! client's machinery for sharing pays here, while its cost is paid on every request — a checkout future, and
//! a task spawned after each response to wait until the connection is ready again and put it back. Here a
//! connection goes back on the list as soon as its request is handed to it, and is taken again once hyper
//! reports it ready (its previous response read to the end). A connection the upstream closed drops off the
//! list; one that closes just as a request is handed to it gives the request back unsent, and the request goes
//! out once more on a new connection.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::config::RouteConfig;
use crate::forward::UpstreamBody;

/// More connections than this per worker and route are closed once their response is done, not kept.
const MAX_KEPT: usize = 512;

/// A kept connection unused for this long is closed rather than reused: well inside common upstream
/// keep-alive timeouts (nginx: 75 s), so we close first and do not race the upstream's close with a request.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

pub(crate) struct UpstreamPool {
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header requests get (unless the route sets its own): the upstream's authority.
    host: HeaderValue,
    connect_timeout: Duration,
    /// Kept connections, each with when it was last handed a request.
    connections: Mutex<Vec<(SendRequest<UpstreamBody>, Instant)>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("connecting to {address}: {cause}")]
    Connect { address: String, cause: String },
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl UpstreamPool {
    pub(crate) fn new(config: &RouteConfig) -> Self {
        let url = &config.upstream;
        // Config validation guarantees an http:// URL with a host.
        let host = url.host_str().unwrap_or("localhost");
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Self {
            address: format!("{host}:{}", url.port_or_known_default().unwrap_or(80)),
            host: HeaderValue::from_str(&authority)
                .unwrap_or(HeaderValue::from_static("localhost")),
            connect_timeout: config.connect_timeout,
            connections: Mutex::new(Vec::new()),
        }
    }

    /// Sends `request` (its URI in origin form, `/path?query`) on a ready kept connection, else a new one.
    pub(crate) async fn send(
        &self,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        let (mut sender, kept) = match self.take_ready() {
            Some(sender) => (sender, true),
            None => (self.connect().await?, false),
        };
        let response = sender.try_send_request(request);
        self.keep(sender);
        match response.await {
            Ok(response) => Ok(response),
            Err(mut refused) => match refused.take_message() {
                // Never written: a kept connection closed under us. Once more, on a new connection.
                Some(request) if kept => {
                    let mut sender = self.connect().await?;
                    let response = sender.try_send_request(request);
                    self.keep(sender);
                    response.await.map_err(|e| e.into_error().into())
                }
                _ => Err(refused.into_error().into()),
            },
        }
    }

    /// A kept connection that can take a request now, if any (closed and long-idle ones are dropped on the
    /// way; dropping the last handle closes an idle connection).
    fn take_ready(&self) -> Option<SendRequest<UpstreamBody>> {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        connections.retain(|(c, used)| !c.is_closed() && now.duration_since(*used) < IDLE_LIMIT);
        let ready = connections.iter().position(|(c, _)| c.is_ready())?;
        Some(connections.swap_remove(ready).0)
    }

    /// Back on the list, busy until hyper has read its response to the end.
    fn keep(&self, sender: SendRequest<UpstreamBody>) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if connections.len() < MAX_KEPT {
            connections.push((sender, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<SendRequest<UpstreamBody>, UpstreamError> {
        let failed = |cause: String| UpstreamError::Connect {
            address: self.address.clone(),
            cause,
        };
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(&self.address),
        )
        .await
        .map_err(|_| {
            failed(format!(
                "no connection within {} ms",
                self.connect_timeout.as_millis()
            ))
        })?
        .map_err(|e| failed(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}
