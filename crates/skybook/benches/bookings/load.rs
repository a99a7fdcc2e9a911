//! The load generator: `serve` and the sandbox as real processes, and keep-alive HTTP/1.1 clients booking
//! one new traveller after another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use skybook_testkit::process;

use crate::cpu::{machine_cpu, peak_rss_kib, postgres_cpu, process_cpu, steal_cpu, CpuReport};
use crate::seed::{seed, Seeded};
use crate::Knobs;

#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) bookings: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// Including the warm-up, for CPU per booking.
    pub(crate) total_bookings: u64,
    pub(crate) cpu: CpuReport,
}

impl Measured {
    pub(crate) fn per_second(&self) -> f64 {
        self.bookings as f64 / self.elapsed.as_secs_f64()
    }
}

/// Starts sandbox + serve on `url`, drives the load, stops them.
pub(crate) async fn run_skybook(
    url: &str,
    flights: usize,
    knobs: &Knobs,
    label: &str,
) -> Result<(Measured, Seeded)> {
    let dir = skybook_testkit::test_dir(&format!("bench-{label}"));
    let exe = env!("CARGO_BIN_EXE_skybook");
    process::migrate(exe, url);
    let seeded = seed(url, flights).await?;

    let (sandbox, sandbox_url) = process::start_sandbox(exe, &dir);
    let (server, base) = process::start_serve(exe, &dir, "serve", url, &sandbox_url);

    let (serve_pid, sandbox_pid) = (server.pid().to_string(), sandbox.pid().to_string());
    let before = [
        process_cpu(&serve_pid),
        process_cpu(&sandbox_pid),
        process_cpu("self"),
        postgres_cpu(),
        machine_cpu(),
        steal_cpu(),
    ];
    let mut measured = drive(&base, &seeded.flights, knobs).await?;
    let after = [
        process_cpu(&serve_pid),
        process_cpu(&sandbox_pid),
        process_cpu("self"),
        postgres_cpu(),
        machine_cpu(),
        steal_cpu(),
    ];
    let used: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    measured.cpu = CpuReport {
        serve: used[0],
        sandbox: used[1],
        load: used[2],
        postgres: used[3],
        machine: used[4],
        steal: used[5],
        serve_rss_kib: peak_rss_kib(&serve_pid),
        sandbox_rss_kib: peak_rss_kib(&sandbox_pid),
    };
    drop(server);
    drop(sandbox);
    Ok((measured, seeded))
}

/// One keep-alive HTTP/1.1 connection to `addr` (`host:port`), straight on hyper: the load generator shares the
/// two cores with what it measures, so it should cost as little as it can.
pub(crate) async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// Sends one booking request on `conn` (reconnecting if it was closed); returns whether it was booked (201).
pub(crate) async fn book(
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    addr: &str,
    path: &str,
    key: String,
    body: String,
) -> bool {
    if let Some(send) = conn.as_mut() {
        if send.ready().await.is_err() {
            *conn = None;
        }
    }
    if conn.is_none() {
        *conn = connect(addr).await.ok();
    }
    let Some(send) = conn.as_mut() else {
        return false;
    };
    let request = hyper::Request::post(path)
        .header("host", addr)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request");
    match send.send_request(request).await {
        // The body is read to its end so the connection can carry the next request.
        Ok(response) => {
            let booked = response.status() == 201;
            response.into_body().collect().await.is_ok() && booked
        }
        Err(_) => {
            *conn = None;
            false
        }
    }
}

/// `clients` loops, each booking one new traveller after another; only the post-warm-up window counts.
pub(crate) async fn drive(base: &str, flights: &[String], knobs: &Knobs) -> Result<Measured> {
    let flights: Arc<Vec<String>> = Arc::new(flights.to_vec());
    let addr: Arc<str> = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .into();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(200_000)));
    let (ok, errors, all) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut tasks = Vec::new();
    for client in 0..knobs.clients {
        let (addr, flights) = (addr.clone(), flights.clone());
        let (measuring, stop, latencies) = (measuring.clone(), stop.clone(), latencies.clone());
        let (ok, errors, all) = (ok.clone(), errors.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut mine = Vec::new();
            let mut n = 0u64;
            let run = uuid::Uuid::new_v4().simple();
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let flight = &flights[(client * 7 + n as usize) % flights.len()];
                let body = format!(
                    r#"{{"flight_id":"{flight}","contact_email":"bench@example.com","passengers":[{{"given_name":"Bench","family_name":"Client{client}x{n}"}}],"card":{{"number":"4242424242424242","exp_month":12,"exp_year":2031,"cvc":"123"}}}}"#
                );
                let key = format!("bench-{client}-{n}-{run}");
                let started = Instant::now();
                let booked = book(&mut conn, &addr, "/api/v1/tenants/bench/bookings", key, body).await;
                let took = started.elapsed();
                if booked {
                    all.fetch_add(1, Ordering::Relaxed);
                }
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                if booked {
                    mine.push(took);
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_secs(knobs.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(knobs.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let total_bookings = all.load(Ordering::Relaxed);
    let mut all = std::mem::take(&mut *latencies.lock().unwrap());
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Measured {
        bookings: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        total_bookings,
        cpu: CpuReport::default(),
    })
}
