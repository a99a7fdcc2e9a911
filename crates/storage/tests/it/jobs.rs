//! The job queue's statements on both engines. Time is passed in, so leases and retries are tested without
//! waiting.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use futures::future::join_all;
use skybook_storage::{Engine, Enqueued, NewJob, Store};
use skybook_testkit::backend_tests;

fn job(kind: &str, unique_key: Option<&str>) -> NewJob {
    NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: r#"{"n": 1}"#.into(),
        priority: 0,
        max_attempts: 3,
        run_at: Utc::now() - Duration::seconds(1),
        unique_key: unique_key.map(str::to_owned),
        tenant_id: None,
    }
}

async fn unique_keys_deduplicate_unfinished_jobs(engine: Engine) {
    let store = skybook_testkit::store(engine, "jobs_unique").await;
    let now = Utc::now();
    let Enqueued::New(first) = store
        .enqueue_job(&job("email", Some("email:b1")), now)
        .await
        .unwrap()
    else {
        panic!("the first job is new")
    };
    assert_eq!(
        store
            .enqueue_job(&job("email", Some("email:b1")), now)
            .await
            .unwrap(),
        Enqueued::Duplicate
    );
    assert!(
        matches!(
            store.enqueue_job(&job("email", None), now).await.unwrap(),
            Enqueued::New(_)
        ),
        "no key, no dedupe"
    );

    let claimed = store
        .claim_jobs("default", "w1", now, Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        store
            .enqueue_job(&job("email", Some("email:b1")), now)
            .await
            .unwrap(),
        Enqueued::Duplicate,
        "running counts too"
    );
    assert!(store.complete_job(first, "w1", now).await.unwrap());
    assert!(
        matches!(
            store
                .enqueue_job(&job("email", Some("email:b1")), now)
                .await
                .unwrap(),
            Enqueued::New(_)
        ),
        "a finished job does not block"
    );
}

async fn concurrent_workers_never_claim_one_job_twice(engine: Engine) {
    let store = skybook_testkit::store(engine, "jobs_concurrent").await;
    let now = Utc::now();
    for i in 0..60 {
        store
            .enqueue_job(&job(&format!("k{i}"), None), now)
            .await
            .unwrap();
    }
    let claims = join_all((0..8).map(|w| {
        let store: Store = store.clone();
        async move {
            let worker = format!("worker-{w}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_jobs("default", &worker, now, Duration::minutes(5), 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break mine;
                }
                for job in batch {
                    assert_eq!(job.locked_by.as_deref(), Some(worker.as_str()));
                    mine.push(job.id);
                }
            }
        }
    }))
    .await;
    let all: Vec<_> = claims.iter().flatten().collect();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every job claimed");
    assert_eq!(distinct.len(), 60, "no job claimed twice");
    assert!(
        claims.iter().filter(|c| !c.is_empty()).count() > 1,
        "the work was shared"
    );
}

async fn a_dead_workers_job_is_rescued_after_its_lease(engine: Engine) {
    let store = skybook_testkit::store(engine, "jobs_rescue").await;
    let now = Utc::now();
    let Enqueued::New(id) = store
        .enqueue_job(&job("sentinel", None), now)
        .await
        .unwrap()
    else {
        panic!()
    };
    let lease = Duration::seconds(30);
    assert_eq!(
        store
            .claim_jobs("default", "dead", now, lease, 1)
            .await
            .unwrap()
            .len(),
        1
    );

    // Within the lease nobody else gets it; a heartbeat extends it.
    assert!(store
        .claim_jobs("default", "alive", now + Duration::seconds(20), lease, 1)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .renew_job_leases("dead", now + Duration::seconds(40))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .claim_jobs("default", "alive", now + Duration::seconds(35), lease, 1)
        .await
        .unwrap()
        .is_empty());

    // The heartbeats stop (the worker was killed): after the lease, another worker takes the job over.
    let rescued = store
        .claim_jobs("default", "alive", now + Duration::seconds(41), lease, 1)
        .await
        .unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].id, id);
    assert_eq!(rescued[0].attempts, 2);
    assert!(
        !store.complete_job(id, "dead", now).await.unwrap(),
        "the old holder can no longer finish it"
    );
    assert!(store.complete_job(id, "alive", now).await.unwrap());
    assert_eq!(store.job(id).await.unwrap().unwrap().state, "done");
    assert!(
        store
            .claim_jobs("default", "alive", now + Duration::hours(1), lease, 1)
            .await
            .unwrap()
            .is_empty(),
        "done stays done"
    );
}

async fn failed_runs_retry_later_then_fail_for_good(engine: Engine) {
    let store = skybook_testkit::store(engine, "jobs_retry").await;
    let now = Utc::now();
    let Enqueued::New(id) = store.enqueue_job(&job("email", None), now).await.unwrap() else {
        panic!()
    };
    store
        .claim_jobs("default", "w", now, Duration::minutes(1), 1)
        .await
        .unwrap();
    let retry_at = now + Duration::seconds(10);
    assert!(store
        .fail_job(id, "w", "smtp: connection refused", Some(retry_at), now)
        .await
        .unwrap());
    assert!(
        store
            .claim_jobs(
                "default",
                "w",
                now + Duration::seconds(5),
                Duration::minutes(1),
                1
            )
            .await
            .unwrap()
            .is_empty(),
        "not before its retry time"
    );
    let again = store
        .claim_jobs("default", "w", retry_at, Duration::minutes(1), 1)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        again[0].last_error.as_deref(),
        Some("smtp: connection refused")
    );
    assert!(store
        .fail_job(id, "w", "still refused", None, retry_at)
        .await
        .unwrap());
    let failed = store.job(id).await.unwrap().unwrap();
    assert_eq!(failed.state, "failed");
    assert!(store
        .claim_jobs(
            "default",
            "w",
            now + Duration::hours(1),
            Duration::minutes(1),
            1
        )
        .await
        .unwrap()
        .is_empty());

    // Finished jobs are pruned after the retention period.
    assert_eq!(
        store
            .prune_jobs(retry_at - Duration::seconds(1))
            .await
            .unwrap(),
        0,
        "not yet"
    );
    assert_eq!(
        store
            .prune_jobs(retry_at + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.job(id).await.unwrap().is_none());
}

async fn higher_priority_runs_first(engine: Engine) {
    let store = skybook_testkit::store(engine, "jobs_priority").await;
    let now = Utc::now();
    for (kind, priority) in [("low", 0), ("high", 10), ("mid", 5)] {
        let mut new = job(kind, None);
        new.priority = priority;
        store.enqueue_job(&new, now).await.unwrap();
    }
    let mut other_queue = job("elsewhere", None);
    other_queue.queue = "other".into();
    store.enqueue_job(&other_queue, now).await.unwrap();
    let kinds: Vec<String> = store
        .claim_jobs("default", "w", now, Duration::minutes(1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.kind)
        .collect();
    assert_eq!(
        kinds,
        ["high", "mid", "low"],
        "by priority, and only this queue"
    );
}

backend_tests!(
    unique_keys_deduplicate_unfinished_jobs,
    concurrent_workers_never_claim_one_job_twice,
    a_dead_workers_job_is_rescued_after_its_lease,
    failed_runs_retry_later_then_fail_for_good,
    higher_priority_runs_first,
);
