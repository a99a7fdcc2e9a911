//! The proxy's connections to upstreams: kept alive and reused, replaced when the upstream closes them, and
//! failures answered as 502/504 naming the route.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::Setup;

/// A static-credential route `/up` to `upstream`, plus `extra` config lines for it.
fn up_route(upstream: &str, extra: &str) -> String {
    format!(
        "[[route]]\nprefix = \"/up\"\nupstream = \"{upstream}\"\nstatic_header = \"X-Api-Key\"\nstatic_value_env = \"SECRET\"\n{extra}"
    )
}

/// A bare HTTP/1.1 upstream answering every GET with `200 ok`. With `close_after_answer` it closes the
/// connection after each answer without saying so (no `Connection: close`), as an upstream whose keep-alive
/// timer fires does. Returns its URL and the number of connections it has accepted.
async fn bare_upstream(close_after_answer: bool) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    // Requests are bodiless GETs: each ends with its blank line.
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                        if close_after_answer {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, accepted)
}

/// `GET /up/...` through the proxy: status and the body as JSON (null when it is not).
async fn get(setup: &Setup) -> (u16, serde_json::Value, String) {
    let (status, text) = setup.get_any("/up/thing").await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_default(),
        text,
    )
}

/// 30 requests one after another through the proxy to a [`bare_upstream`]; all must succeed. Returns the
/// connections the upstream accepted.
async fn thirty_requests(name: &str, close_after_answer: bool) -> usize {
    let (upstream, accepted) = bare_upstream(close_after_answer).await;
    let route = up_route(&upstream, "");
    let setup = Setup::start(name, Duration::from_secs(3600), move |_| route.clone()).await;
    for _ in 0..30 {
        let (status, _, body) = get(&setup).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    accepted.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_one_upstream_connection() {
    assert_eq!(
        thirty_requests("reuse", false).await,
        1,
        "kept alive and reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_upstream_closes_are_replaced_without_failing_requests() {
    assert_eq!(
        thirty_requests("closing", true).await,
        30,
        "one connection per answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_502_naming_the_route() {
    // A port that was just free: nothing listens on it.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let route = up_route(&upstream, "");
    let setup = Setup::start("unreachable", Duration::from_secs(3600), move |_| {
        route.clone()
    })
    .await;
    let (status, error, _) = get(&setup).await;
    assert_eq!(status, 502);
    assert_eq!(error["error"], "upstream_unreachable");
    assert_eq!(error["route"], "/up");
    assert!(
        error["cause"].as_str().unwrap().contains("connecting to"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_is_a_504_after_the_read_timeout() {
    // Accepts connections and reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let route = up_route(&upstream, "read_timeout_ms = 300\n");
    let setup = Setup::start("silent", Duration::from_secs(3600), move |_| route.clone()).await;
    let (status, error, _) = get(&setup).await;
    assert_eq!(status, 504);
    assert_eq!(error["error"], "upstream_timeout");
    assert_eq!(error["route"], "/up");
}
