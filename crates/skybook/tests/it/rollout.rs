//! A rolling restart under load, as Kubernetes does one: two `serve` nodes on one PostgreSQL behind a load
//! balancer that stops sending to a node once its readiness fails; each node in turn is SIGTERMed and
//! replaced while clients book. Nothing acknowledged is lost, no draining node answers 5xx, nobody is charged
//! twice, every booking settles, and the old nodes exit 0 within their grace period.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use skybook_testkit::fixtures::{booking_body, tenant_with_flight, CARD_OK};
use skybook_testkit::process::{self, sandbox_stats, settled_status, Running};
use skybook_testkit::Engine;

const EXE: &str = env!("CARGO_BIN_EXE_skybook");

/// The backends and whether each was ready at its last probe.
#[derive(Clone, Default)]
struct Balancer {
    backends: Arc<Mutex<Vec<(String, bool)>>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    http: reqwest::Client,
}

impl Balancer {
    fn add(&self, url: &str) {
        self.backends.lock().unwrap().push((url.to_owned(), false));
    }

    fn remove(&self, url: &str) {
        self.backends.lock().unwrap().retain(|(u, _)| u != url);
    }

    fn pick(&self) -> Option<String> {
        let ready: Vec<String> = self
            .backends
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, ready)| *ready)
            .map(|(u, _)| u.clone())
            .collect();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (!ready.is_empty()).then(|| ready[n % ready.len()].clone())
    }

    /// Probes every backend's `/ready` every 100 ms, as a readiness probe with a short period would.
    async fn probe_forever(self) {
        loop {
            let urls: Vec<String> = self
                .backends
                .lock()
                .unwrap()
                .iter()
                .map(|(u, _)| u.clone())
                .collect();
            for url in urls {
                let ready = matches!(
                    self.http
                        .get(format!("{url}/ready"))
                        .timeout(Duration::from_millis(500))
                        .send()
                        .await,
                    Ok(r) if r.status() == 200
                );
                for backend in self.backends.lock().unwrap().iter_mut() {
                    if backend.0 == url {
                        backend.1 = ready;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Forwards one request to a ready backend, answering what it answered (or 502 when none is ready or the
/// chosen one fails at the transport: a load balancer's own error, counted apart from the nodes').
async fn forward(State(lb): State<Balancer>, request: Request) -> Response {
    let Some(backend) = lb.pick() else {
        return (StatusCode::BAD_GATEWAY, "lb: no ready backend").into_response();
    };
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = lb
        .http
        .request(parts.method.clone(), format!("{backend}{path}"))
        .body(body);
    for name in ["content-type", "idempotency-key"] {
        if let Some(v) = parts.headers.get(name) {
            out = out.header(name, v);
        }
    }
    match out.send().await {
        Ok(answer) => {
            let status = answer.status();
            let body = answer.bytes().await.unwrap_or_default();
            (status, body).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("lb: {e}")).into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_loses_nothing() {
    let dir = skybook_testkit::test_dir("rollout");
    let url = skybook_testkit::fresh_database_url(Engine::Postgres, "rollout").await;
    process::migrate(EXE, &url);
    let store = skybook_testkit::store_at(&url).await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 100_000).await;
    let (_sandbox, sandbox_url) = process::start_sandbox(EXE, &dir);
    let node = |name: &str| {
        let mut cmd = process::deployment(EXE, "serve", &url, &sandbox_url);
        cmd.args(["--listen", "127.0.0.1:0", "--no-workers"])
            .env("SKYBOOK_SHUTDOWN_DRAIN", "1s")
            .env("SKYBOOK_SHUTDOWN_GRACE", "15s");
        let running = Running::start(cmd, &dir, name);
        let base = running.serving_url();
        (running, base)
    };
    // The sentinel settles whatever a client left pending.
    let mut worker = process::deployment(EXE, "worker", &url, &sandbox_url);
    worker.env("SKYBOOK_SENTINEL_SCHEDULE", "* * * * * *");
    let _worker = Running::start(worker, &dir, "worker");

    let lb = Balancer::default();
    tokio::spawn(lb.clone().probe_forever());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(forward).with_state(lb.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let wait_ready = |base: String| {
        let lb = lb.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let ready = lb
                    .backends
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|(u, r)| *u == base && *r);
                if ready {
                    return;
                }
                assert!(Instant::now() < deadline, "{base} never became ready");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (mut a, a_url) = node("a");
    let (mut b, b_url) = node("b");
    for base in [&a_url, &b_url] {
        lb.add(base);
        wait_ready(base.clone()).await;
    }

    // Clients booking through the balancer: distinct travellers, each retried with its key until answered.
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<Vec<(String, u16, serde_json::Value)>>> = Arc::default();
    let lb_errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let node_errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (stop, answers, lb_errors, node_errors, front) = (
            stop.clone(),
            answers.clone(),
            lb_errors.clone(),
            node_errors.clone(),
            front.clone(),
        );
        let flight = flight.clone();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let family = format!("Roll{}{}", letter(c), word(i));
                let key = format!("rollout-{c}-{i:06}-key");
                let body = booking_body(&flight, "Ann", &family, CARD_OK);
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let sent = http
                        .post(format!("{front}/api/v1/tenants/air/bookings"))
                        .header("idempotency-key", &key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let status = sent.status().as_u16();
                    let text = sent.text().await.unwrap();
                    // Every 5xx counts, retried or not: a node's own, or the balancer's (no ready node, or
                    // a node that refused the connection while it was still being sent traffic).
                    if text.starts_with("lb:") {
                        lb_errors.fetch_add(1, Ordering::Relaxed);
                    } else if status >= 500 {
                        node_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    // 409 request_in_progress: the first attempt is still running; ask again.
                    let retry = status >= 500 || value["error"] == "request_in_progress";
                    if !retry || Instant::now() > deadline {
                        answers.lock().unwrap().push((key.clone(), status, value));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }

    // The rollout: each old node in turn is told to stop, leaves, and a new one takes its place.
    let mut replacements = Vec::new();
    for (old, old_url, name) in [(&mut a, &a_url, "a2"), (&mut b, &b_url, "b2")] {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let stopped = Instant::now();
        old.terminate();
        let code = tokio::task::block_in_place(|| old.wait_exit());
        assert_eq!(code, Some(0), "{old_url} exits cleanly");
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "within the grace period"
        );
        lb.remove(old_url);
        let (new, new_url) = node(name);
        lb.add(&new_url);
        wait_ready(new_url.clone()).await;
        replacements.push((new, new_url));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let answers = answers.lock().unwrap().clone();
    let by_status: BTreeMap<u16, usize> =
        answers.iter().fold(BTreeMap::new(), |mut m, (_, s, _)| {
            *m.entry(*s).or_default() += 1;
            m
        });
    eprintln!("answers by status: {by_status:?}");
    assert!(answers.len() >= 40, "the stream ran: {}", answers.len());
    assert!(
        answers.iter().all(|(_, s, _)| *s == 201 || *s == 202),
        "every booking was acknowledged, none answered 5xx by a draining node: {by_status:?}"
    );
    assert_eq!(
        lb_errors.load(Ordering::Relaxed),
        0,
        "the balancer never lacked a ready node"
    );

    // Every acknowledged booking is there and settles confirmed; one charge each.
    let base = &replacements[1].1;
    let client = reqwest::Client::new();
    for (_, _, body) in &answers {
        let reference = body["booking"]["reference"].as_str().unwrap();
        assert_eq!(
            settled_status(&client, base, "air", reference, "ann@example.com").await,
            "confirmed",
            "{reference}"
        );
    }
    let charges = sandbox_stats(&sandbox_url).await["charges"]
        .as_i64()
        .unwrap();
    assert_eq!(
        charges as usize,
        answers.len(),
        "one charge per booking, none twice"
    );
    let sold = store
        .flight(tenant.id, flight.id)
        .await
        .unwrap()
        .unwrap()
        .seats_sold;
    assert_eq!(sold as usize, answers.len());
}

fn letter(i: usize) -> char {
    (b'A' + (i % 26) as u8) as char
}

/// `i` as letters only (names are compared on their letters).
fn word(mut i: usize) -> String {
    let mut out = String::new();
    loop {
        out.push(letter(i % 26));
        i /= 26;
        if i == 0 {
            return out;
        }
    }
}
