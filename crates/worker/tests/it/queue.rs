use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use skybook_domain::RetryPolicy;
use skybook_storage::{Engine, Enqueued, Job, NewJob, Store};
use skybook_testkit::backend_tests;
use skybook_worker::{JobEvent, JobHandler, QueueWorker, QueueWorkerConfig};

/// Fails its first `failures` runs, then succeeds; counts runs.
struct Flaky {
    failures: u32,
    runs: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl JobHandler for Flaky {
    async fn run(&self, _job: &Job) -> anyhow::Result<()> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        anyhow::ensure!(
            run >= self.failures,
            "attempt {} failed on purpose",
            run + 1
        );
        Ok(())
    }
}

fn config() -> QueueWorkerConfig {
    QueueWorkerConfig {
        retry: RetryPolicy {
            initial_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
            max_retries: 5,
            max_elapsed: Duration::from_secs(600),
        },
        ..QueueWorkerConfig::default()
    }
}

async fn enqueue(store: &Store, kind: &str, max_attempts: i32) -> skybook_domain::JobId {
    let job = NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts,
        run_at: Utc::now() - chrono::Duration::seconds(1),
        unique_key: None,
        tenant_id: None,
    };
    match store.enqueue_job(&job, Utc::now()).await.unwrap() {
        Enqueued::New(id) => id,
        Enqueued::Duplicate => panic!("no unique key, no duplicate"),
    }
}

async fn a_job_runs_once_and_is_done(engine: Engine) {
    let store = skybook_testkit::store(engine, "worker_done").await;
    let runs = Arc::new(AtomicU32::new(0));
    let worker = QueueWorker::new(store.clone(), config()).handle(
        "ok",
        Flaky {
            failures: 0,
            runs: Arc::clone(&runs),
        },
    );
    let mut events = worker.events();
    let id = enqueue(&store, "ok", 3).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(worker.run_once().await.unwrap(), 0, "nothing left");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(store.job(id).await.unwrap().unwrap().state, "done");
    assert!(matches!(
        events.recv().await.unwrap(),
        JobEvent::Started { attempt: 1, .. }
    ));
    assert_eq!(
        events.recv().await.unwrap(),
        JobEvent::Done {
            id,
            tenant: None,
            kind: "ok".into()
        }
    );
}

/// What a job goes through is published for the dashboards of every node: running, then its outcome.
async fn a_jobs_states_reach_the_dashboards(engine: Engine) {
    let store = skybook_testkit::store(engine, "worker_events").await;
    let mut events = store.subscribe_events().await;
    let worker = QueueWorker::new(store.clone(), config()).handle(
        "ok",
        Flaky {
            failures: 0,
            runs: Arc::new(AtomicU32::new(0)),
        },
    );
    let id = enqueue(&store, "ok", 3).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let mut states = Vec::new();
    while states.len() < 2 {
        let text = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("the job's events never arrived")
            .unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        if event["id"] == id.to_string() {
            assert_eq!(
                (&event["type"], &event["kind"]),
                (&"job".into(), &"ok".into()),
                "{event}"
            );
            states.push(event["state"].as_str().unwrap().to_owned());
        }
    }
    // Published in the background, so in either order.
    states.sort();
    assert_eq!(states, ["done", "running"]);
}

async fn failures_back_off_then_fail_for_good(engine: Engine) {
    let store = skybook_testkit::store(engine, "worker_backoff").await;
    let runs = Arc::new(AtomicU32::new(0));
    let worker = QueueWorker::new(store.clone(), config()).handle(
        "flaky",
        Flaky {
            failures: 10,
            runs: Arc::clone(&runs),
        },
    );
    let id = enqueue(&store, "flaky", 2).await;

    let before = Utc::now();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, "queued", "retried later");
    let delay = (job.run_at - before).num_milliseconds();
    assert!(
        (5_000..=10_500).contains(&delay),
        "first retry after 5–10 s (10 s with equal jitter): {delay} ms"
    );
    assert_eq!(
        job.last_error.as_deref(),
        Some("attempt 1 failed on purpose")
    );
    assert_eq!(worker.run_once().await.unwrap(), 0, "not due yet");

    // A job on its last attempt is not retried: it fails for good.
    let last = enqueue(&store, "flaky", 1).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let job = store.job(last).await.unwrap().unwrap();
    assert_eq!(job.state, "failed");
    assert_eq!(job.attempts, 1);
}

async fn an_unknown_kind_fails_without_retries(engine: Engine) {
    let store = skybook_testkit::store(engine, "worker_unknown").await;
    let worker = QueueWorker::new(store.clone(), config());
    let id = enqueue(&store, "nobody-handles-this", 5).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, "failed");
    assert!(job.last_error.unwrap().contains("no handler"));
}

/// Panics on its first run, then succeeds.
struct PanicsOnce(Arc<AtomicU32>);

#[async_trait::async_trait]
impl JobHandler for PanicsOnce {
    async fn run(&self, _job: &Job) -> anyhow::Result<()> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("handler bug on the first run");
        }
        Ok(())
    }
}

/// A panicking handler is a failed run: the job is released for a retry (no heartbeat keeps holding it), and
/// the retry completes it.
async fn a_panicking_handler_fails_the_run_and_the_job_is_retried(engine: Engine) {
    let store = skybook_testkit::store(engine, "worker_panic").await;
    let runs = Arc::new(AtomicU32::new(0));
    let retry_at_once = QueueWorkerConfig {
        retry: RetryPolicy {
            initial_delay: Duration::ZERO,
            ..RetryPolicy::outbound()
        },
        ..config()
    };
    let worker = QueueWorker::new(store.clone(), retry_at_once)
        .handle("buggy", PanicsOnce(Arc::clone(&runs)));
    let id = enqueue(&store, "buggy", 3).await;

    assert_eq!(
        worker.run_once().await.unwrap(),
        1,
        "the round survives the panic"
    );
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        (job.state.as_str(), job.locked_by.as_deref()),
        ("queued", None),
        "released, not held"
    );
    assert!(job
        .last_error
        .unwrap()
        .contains("handler bug on the first run"));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(store.job(id).await.unwrap().unwrap().state, "done");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

backend_tests!(
    a_jobs_states_reach_the_dashboards,
    a_panicking_handler_fails_the_run_and_the_job_is_retried,
    a_job_runs_once_and_is_done,
    failures_back_off_then_fail_for_good,
    an_unknown_kind_fails_without_retries,
);
