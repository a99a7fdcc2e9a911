//! `skybook worker`: the background loops as their own process.

use chrono::Utc;
use skybook_storage::{Enqueued, NewJob};

use crate::process::{skybook, Running};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_process_runs_the_queue_and_stops_cleanly_on_sigterm() {
    let dir = skybook_testkit::test_dir("worker-process");
    let url = format!("sqlite://{}", dir.join("skybook.db").display());
    let store = skybook_testkit::store_at(&url).await;
    // A job no handler knows yet: the queue marks it failed, which shows the loop is claiming and running.
    let job = NewJob {
        queue: "default".into(),
        kind: "not-a-real-kind".into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 3,
        run_at: Utc::now(),
        unique_key: None,
    };
    let Enqueued::New(id) = store.enqueue_job(&job, Utc::now()).await.unwrap() else {
        panic!("a new job")
    };

    let mut cmd = skybook();
    cmd.arg("worker").env("SKYBOOK_DATABASE_URL", &url);
    let mut worker = Running::start(cmd, &dir, "worker");
    worker.wait_for_line("background workers started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let state = store.job(id).await.unwrap().unwrap().state;
        if state == "failed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never ran the job (state {state})"
        );
        tokio::task::yield_now().await;
    }
    worker.terminate();
    assert_eq!(
        worker.wait_exit(),
        Some(0),
        "SIGTERM stops the loops and exits cleanly"
    );
}
