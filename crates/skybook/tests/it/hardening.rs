//! `skybook serve` on a real port against slow clients, header games and nosy scrapers, and what its log says
//! about probes.

use std::time::{Duration, Instant};

use skybook_testkit::process::{self, METRICS_TOKEN};
use skybook_testkit::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve() -> (Vec<process::Running>, String) {
    let dir = skybook_testkit::test_dir("hardening");
    let url = skybook_testkit::fresh_database_url(Engine::Sqlite, "hardening").await;
    let exe = env!("CARGO_BIN_EXE_skybook");
    let (sandbox, sandbox_url) = process::start_sandbox(exe, &dir);
    let (node, base) = process::start_serve(exe, &dir, "serve", &url, &sandbox_url);
    (vec![sandbox, node], base)
}

/// Sends one header line every `every` until the server closes the connection; returns how long that took.
async fn drip_headers(addr: &str, every: Duration) -> Duration {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    for i in 0.. {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(every, stream.read(&mut buf)).await {
            // Closed (or answered 408 and closed): the server gave up on us.
            Ok(Ok(_) | Err(_)) => return start.elapsed(),
            Err(_) => {
                assert!(
                    start.elapsed() < Duration::from_secs(40),
                    "still open after {i} lines"
                );
                if stream
                    .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return start.elapsed();
                }
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_probes_stay_out_of_the_log() {
    let (processes, base) = serve().await;
    let addr = base.trim_start_matches("http://").to_owned();

    // A header line every 2 s: closed at the header-read timeout (10 s), not held for minutes.
    let slow_headers = tokio::spawn({
        let addr = addr.clone();
        async move { drip_headers(&addr, Duration::from_secs(2)).await }
    });
    // An idle keep-alive connection (one answered request, then silence) is closed the same way.
    let idle = tokio::spawn({
        let addr = addr.clone();
        async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream
                .write_all(b"GET /health_check HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
            let start = Instant::now();
            let closed = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await;
            assert!(
                matches!(closed, Ok(Ok(0) | Err(_))),
                "the idle connection was closed"
            );
            start.elapsed()
        }
    });
    // A body that stops arriving: a JSON 408, not an empty 503.
    let slow_body = tokio::spawn({
        let addr = addr.clone();
        async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream
                .write_all(
                    b"POST /api/v1/tenants/demo/bookings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                      Idempotency-Key: slow-body-key-0001\r\nContent-Length: 100\r\n\r\n{\"flight",
                )
                .await
                .unwrap();
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
                .await;
            String::from_utf8_lossy(&answer).into_owned()
        }
    });

    // Meanwhile: probes, the metrics scraper, and a client's request id.
    let client = reqwest::Client::new();
    for _ in 0..5 {
        assert_eq!(
            client
                .get(format!("{base}/ready"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 401, "metrics are not public");
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let spoofed = client
        .get(format!("{base}/health_check"))
        .header("x-request-id", "spoofed-id=1 status=200 injected=yes")
        .send()
        .await
        .unwrap();
    let id = spoofed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!id.contains("spoofed") && !id.contains(' '), "{id}");
    let kept = client
        .get(format!("{base}/health_check"))
        .header("x-request-id", "trace-42.a")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42.a");

    let slow_headers = slow_headers.await.unwrap();
    assert!(
        (Duration::from_secs(8)..Duration::from_secs(20)).contains(&slow_headers),
        "slow headers cut off after {slow_headers:?}"
    );
    let idle = idle.await.unwrap();
    assert!(
        idle < Duration::from_secs(20),
        "idle keep-alive closed after {idle:?}"
    );
    let slow_body = slow_body.await.unwrap();
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body}");
    assert!(
        slow_body.contains(r#""error":"request_timeout""#),
        "{slow_body}"
    );

    // The probes left no INFO lines: an operator's log is for things to read.
    let log = std::fs::read_to_string(&processes[1].log).unwrap();
    let probe_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/ready") || l.contains("/metrics") || l.contains("/health_check"))
        .collect();
    assert!(probe_lines.is_empty(), "{probe_lines:#?}");
}
