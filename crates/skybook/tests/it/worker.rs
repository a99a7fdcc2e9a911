//! `skybook worker`: the background loops as their own process — killed mid-job, and two of them sharing cron.

use std::time::{Duration, Instant};

use chrono::Utc;
use skybook_storage::{Enqueued, NewJob, Store};
use skybook_testkit::process::{deployment, start_sandbox};
use skybook_testkit::{backend_tests, Engine};

use crate::process::{skybook, Running};

const EXE: &str = env!("CARGO_BIN_EXE_skybook");

fn job(kind: &str, payload: serde_json::Value) -> NewJob {
    NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: payload.to_string(),
        priority: 0,
        max_attempts: 3,
        run_at: Utc::now(),
        unique_key: None,
        tenant_id: None,
    }
}

async fn wait_for_state(store: &Store, id: skybook_domain::JobId, state: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = store.job(id).await.unwrap().unwrap().state;
        if now == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job still {now}, expected {state}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_process_runs_the_queue_and_stops_cleanly_on_sigterm() {
    let dir = skybook_testkit::test_dir("worker-process");
    let url = format!("sqlite://{}", dir.join("skybook.db").display());
    let store = skybook_testkit::store_at(&url).await;
    // A job no handler knows: the queue marks it failed, which shows the loop is claiming and running.
    let Enqueued::New(id) = store
        .enqueue_job(&job("not-a-real-kind", serde_json::json!({})), Utc::now())
        .await
        .unwrap()
    else {
        panic!("a new job")
    };

    let mut cmd = skybook();
    cmd.arg("worker")
        .env("SKYBOOK_DATABASE_URL", &url)
        .env(
            "SKYBOOK_SECRET_KEY",
            skybook_testkit::process::DEPLOYMENT_SECRET,
        )
        // Nothing listens there: this test needs no provider.
        .env("SKYBOOK_PAYMENTS_URL", "http://127.0.0.1:9");
    let mut worker = Running::start(cmd, &dir, "worker");
    worker.wait_for_line("background workers starting");
    wait_for_state(&store, id, "failed", Duration::from_secs(20)).await;
    worker.terminate();
    assert_eq!(
        worker.wait_exit(),
        Some(0),
        "SIGTERM stops the loops and exits cleanly"
    );
}

/// A worker killed with SIGKILL in the middle of a job: once its lease lapses another worker runs the job
/// again, and it completes exactly once.
/// A `debug.slow` job (logging its start and end to `<dir>/slow-job.log`) on a fresh database, and a way to
/// start workers that run it with `lease`.
struct SlowJob {
    dir: std::path::PathBuf,
    url: String,
    /// A real provider, so the sentinel job the workers also run is quick and never holds their queue.
    _sandbox: Running,
    sandbox_url: String,
    store: Store,
    log: std::path::PathBuf,
    id: skybook_domain::JobId,
}

impl SlowJob {
    async fn enqueue(engine: Engine, name: &str, millis: u64) -> Self {
        let dir = skybook_testkit::test_dir(name);
        let url = skybook_testkit::fresh_database_url(engine, &name.replace('-', "_")).await;
        let store = skybook_testkit::store_at(&url).await;
        let log = dir.join("slow-job.log");
        let payload = serde_json::json!({ "log": log, "millis": millis });
        let Enqueued::New(id) = store
            .enqueue_job(&job("debug.slow", payload), Utc::now())
            .await
            .unwrap()
        else {
            panic!("a new job")
        };
        let (sandbox, sandbox_url) = start_sandbox(EXE, &dir);
        Self {
            dir,
            url,
            _sandbox: sandbox,
            sandbox_url,
            store,
            log,
            id,
        }
    }

    fn worker(&self, name: &str, lease: &str) -> Running {
        let mut cmd = deployment(EXE, "worker", &self.url, &self.sandbox_url);
        cmd.env("SKYBOOK_ENABLE_FAULT_INJECTION", "1")
            .env("SKYBOOK_JOB_LEASE", lease)
            // "listening for wake-ups" is a DEBUG line.
            .env("RUST_LOG", "info,skybook_worker=debug");
        Running::start(cmd, &self.dir, name)
    }
}

async fn a_job_of_a_killed_worker_is_rescued_and_completes_once(engine: Engine) {
    let slow = SlowJob::enqueue(engine, "worker-sigkill", 1500).await;
    let (store, log, id) = (&slow.store, &slow.log, slow.id);
    let worker = |name: &str| slow.worker(name, "2s");

    let mut first = worker("worker-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("start")
    {
        assert!(
            Instant::now() < deadline,
            "the first worker never started the job"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    let held = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        (held.state.as_str(), held.attempts),
        ("running", 1),
        "the dead worker still holds the job"
    );

    let _second = worker("worker-2");
    wait_for_state(store, id, "done", Duration::from_secs(30)).await;
    let lines = std::fs::read_to_string(log).unwrap();
    let starts = lines.lines().filter(|l| l.starts_with("start")).count();
    let dones = lines.lines().filter(|l| l.starts_with("done")).count();
    assert_eq!(
        (starts, dones),
        (2, 1),
        "run twice, completed once: {lines}"
    );
    let finished = store.job(id).await.unwrap().unwrap();
    assert_eq!(finished.attempts, 2);
    // The second run started only once the dead worker's lease had lapsed.
    let second_start = lines
        .lines()
        .filter(|l| l.starts_with("start"))
        .nth(1)
        .and_then(|l| l.rsplit(" at ").next())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("the second start is logged with its time");
    assert!(
        second_start >= held.locked_until.unwrap(),
        "rescued at {second_start}, lease until {:?}",
        held.locked_until
    );
}

/// A worker stopped with SIGTERM in the middle of a job hands the job back: another worker takes it over at
/// once — on PostgreSQL woken by a notification, on SQLite at its next one-second poll; long before the 60 s
/// lease would have lapsed — and it completes once; the stopped worker exits 0.
async fn a_sigtermed_worker_hands_its_jobs_back_at_once(engine: Engine) {
    let slow = SlowJob::enqueue(engine, "worker-sigterm", 2000).await;
    let (store, log, id) = (&slow.store, &slow.log, slow.id);
    let worker = |name: &str| slow.worker(name, "60s");
    let starts = || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("start"))
            .count()
    };

    let mut first = worker("worker-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while starts() == 0 {
        assert!(
            Instant::now() < deadline,
            "the first worker never started the job"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = worker("worker-2");
    second.wait_for_line(match engine {
        // Woken by the handback's notification, once it listens.
        Engine::Postgres => "listening for wake-ups",
        Engine::Sqlite => "background workers starting",
    });
    let stopped_at = Instant::now();
    first.terminate();
    while starts() < 2 {
        assert!(
            stopped_at.elapsed() < Duration::from_secs(10),
            "the job was not taken over (its lease runs 60 s)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let taken_over = stopped_at.elapsed();
    assert_eq!(first.wait_exit(), Some(0), "SIGTERM exits cleanly");
    wait_for_state(store, id, "done", Duration::from_secs(30)).await;
    let lines = std::fs::read_to_string(log).unwrap();
    let dones = lines.lines().filter(|l| l.starts_with("done")).count();
    assert_eq!(dones, 1, "completed once: {lines}");
    eprintln!("taken over {taken_over:?} after SIGTERM");
    if engine == Engine::Postgres {
        assert!(
            taken_over < Duration::from_secs(1),
            "on PostgreSQL the other worker is woken: {taken_over:?}"
        );
    }
}

backend_tests!(
    a_job_of_a_killed_worker_is_rescued_and_completes_once,
    a_sigtermed_worker_hands_its_jobs_back_at_once,
);

/// Two worker processes on one PostgreSQL, a schedule every two seconds, for twelve ticks: every tick fires once —
/// none twice, none skipped — and enqueues at most one sentinel run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_fire_each_cron_tick_once() {
    let dir = skybook_testkit::test_dir("worker-cron");
    let url = skybook_testkit::fresh_database_url(Engine::Postgres, "worker_cron").await;
    let store = skybook_testkit::store_at(&url).await;
    let (_sandbox, sandbox_url) = start_sandbox(EXE, &dir);
    let workers: Vec<Running> = (0..2)
        .map(|i| {
            let mut cmd = deployment(EXE, "worker", &url, &sandbox_url);
            cmd.env("SKYBOOK_SENTINEL_SCHEDULE", "*/2 * * * * *")
                // "cron fired" is a DEBUG line (routine at INFO would flood the log).
                .env("RUST_LOG", "info,skybook_worker=debug");
            let worker = Running::start(cmd, &dir, &format!("worker-{i}"));
            worker.wait_for_line("background workers starting");
            worker
        })
        .collect();

    // The measurement window: until twelve ticks have fired (the database says so), not a fixed time.
    const TICKS: usize = 12;
    let deadline = Instant::now() + Duration::from_secs(90);
    while store.cron_ticks("sentinel").await.unwrap().len() < TICKS {
        assert!(
            Instant::now() < deadline,
            "twelve ticks of a two-second schedule within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut workers = workers;
    assert!(
        workers.iter_mut().all(Running::is_running),
        "both workers ran throughout"
    );
    let logs: Vec<std::path::PathBuf> = workers.iter().map(|w| w.log.clone()).collect();
    drop(workers);

    let ticks = store.cron_ticks("sentinel").await.unwrap();
    assert!(ticks.len() >= TICKS, "{ticks:?}");
    for pair in ticks.windows(2) {
        assert_eq!(
            (pair[1].0 - pair[0].0).num_seconds(),
            2,
            "no tick skipped or doubled: {ticks:?}"
        );
    }
    let jobs: i64 = store
        .job_counts("sentinel")
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    // Each tick enqueues at most one run. (The sentinel's schedule is exclusive: a tick that finds the last
    // sweep unfinished enqueues none, so a slow machine shows fewer.)
    let ticks_n = ticks.len() as i64;
    assert!(jobs <= ticks_n, "{jobs} sentinel runs for {ticks_n} ticks");
    // What each worker says it claimed (fired, or skipped while the last sweep ran): every tick by exactly one
    // worker. (The last few seconds are left out: a log line may trail its database row at the kill.)
    let mut claimed: std::collections::BTreeMap<String, usize> = Default::default();
    let mut skipped: i64 = 0;
    for log in &logs {
        for line in std::fs::read_to_string(log).unwrap().lines() {
            let line: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let message = line["message"].as_str().unwrap_or_default();
            if line["schedule"] == "sentinel" && message.contains("tick skipped") {
                skipped += 1;
            }
            if line["schedule"] == "sentinel"
                && (message == "cron fired" || message.contains("tick skipped"))
            {
                *claimed
                    .entry(line["tick"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }
    assert!(
        claimed.values().all(|n| *n == 1),
        "a tick claimed twice: {claimed:?}"
    );
    // Every tick either enqueued a run or was logged as skipped (the last few log lines may trail).
    assert!(
        jobs + skipped >= ticks_n - 2,
        "{jobs} runs and {skipped} skipped ticks for {ticks_n} ticks"
    );
    let settled = ticks.last().unwrap().0 - chrono::Duration::seconds(4);
    for (tick, by) in ticks.iter().filter(|(t, _)| *t < settled) {
        assert!(
            claimed.contains_key(&tick.to_string()),
            "tick {tick} (fired by {by}) not in the logs"
        );
    }
    let firers: std::collections::BTreeSet<&str> =
        ticks.iter().map(|(_, by)| by.as_str()).collect();
    eprintln!("{} ticks fired by {} worker(s)", ticks.len(), firers.len());
}
