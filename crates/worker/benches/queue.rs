//! The job queue's throughput and pickup latency (`scripts/bench-queue`, beside graphile-worker on the same
//! database). Env: `DATABASE_URL` (PostgreSQL or SQLite), `JOBS` (default 100,000), `CONCURRENCY` (jobs a worker
//! runs at once, default 8), `TRICKLE` (jobs for the latency run, default 2,000, at `TRICKLE_RATE` per second,
//! default 500). Prints one line per figure.
//!
//! 1. Enqueue: `JOBS` trivial jobs, one insert each, from one client.
//! 2. Throughput: one worker (claiming `CONCURRENCY` at a time, running them concurrently) drains the backlog.
//! 3. Pickup latency: with the worker idle and listening for wake-ups (as in production), jobs trickle in; the
//!    latency is from the insert to the handler's start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use skybook_storage::{Job, NewJob, PoolSettings, Store, JOBS_CHANNEL};
use skybook_worker::{JobHandler, QueueWorker, QueueWorkerConfig, Wakeups};
use tokio_util::sync::CancellationToken;

struct Count {
    done: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<f64>>>,
}

#[async_trait::async_trait]
impl JobHandler for Count {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let waited = (Utc::now() - job.created_at)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1000.0;
        self.latencies.lock().unwrap().push(waited);
        self.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn job() -> NewJob {
    NewJob {
        queue: "bench".into(),
        kind: "bench.noop".into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 1,
        run_at: Utc::now(),
        unique_key: None,
        tenant_id: None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; test runners probing every target (--list, or none) get nothing to run.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let url = std::env::var("DATABASE_URL")?;
    let (jobs, concurrency) = (env("JOBS", 100_000), env("CONCURRENCY", 8));
    let (trickle, rate) = (env("TRICKLE", 2_000), env("TRICKLE_RATE", 500));
    let store = Store::connect(&url, &PoolSettings::default()).await?;
    store.migrate().await?;

    let started = Instant::now();
    for _ in 0..jobs {
        let mut new = job();
        new.run_at = Utc::now();
        store.enqueue_job(&new, Utc::now()).await?;
    }
    let enqueue = started.elapsed().as_secs_f64();
    println!(
        "enqueue: {:.0} jobs/s ({jobs} in {enqueue:.2} s, one insert each)",
        jobs as f64 / enqueue
    );

    let done = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let config = QueueWorkerConfig {
        queue: "bench".into(),
        batch: concurrency as i64,
        // Production's poll: on PostgreSQL the insert's notification wakes the worker long before it; SQLite has
        // no notifications, so there the latency is this poll's.
        ..QueueWorkerConfig::default()
    };
    let worker = Arc::new(QueueWorker::new(store.clone(), config).handle(
        "bench.noop",
        Count {
            done: Arc::clone(&done),
            latencies: Arc::clone(&latencies),
        },
    ));
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < jobs {
        worker.run_once().await?;
    }
    let drain = started.elapsed().as_secs_f64();
    println!(
        "throughput: {:.0} jobs/s ({jobs} drained in {drain:.2} s, concurrency {concurrency})",
        jobs as f64 / drain
    );

    // Pickup latency: the worker idle, woken by the insert's notification (PostgreSQL) or its poll (SQLite).
    latencies.lock().unwrap().clear();
    done.store(0, Ordering::Relaxed);
    let cancel = CancellationToken::new();
    let wakeups = Wakeups::new().on(JOBS_CHANNEL, worker.waker());
    let (listen_store, listen_cancel) = (store.clone(), cancel.clone());
    tokio::spawn(async move { wakeups.run(&listen_store, listen_cancel).await });
    let running = {
        let (worker, cancel) = (Arc::clone(&worker), cancel.clone());
        tokio::spawn(async move { worker.run(cancel).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await; // the LISTEN connection settles (not measured)
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tick = tokio::time::interval(every);
    for _ in 0..trickle {
        tick.tick().await;
        store.enqueue_job(&job(), Utc::now()).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < trickle && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    let _ = running.await;
    let mut waited = latencies.lock().unwrap().clone();
    waited.sort_by(f64::total_cmp);
    println!(
        "pickup latency: p50 {:.1} ms, p99 {:.1} ms ({} jobs at {rate}/s)",
        percentile(&waited, 0.5),
        percentile(&waited, 0.99),
        waited.len()
    );
    store.close().await;
    Ok(())
}
