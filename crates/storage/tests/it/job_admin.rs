//! The operators' statements over the queue: listing with filters and keyset pages, counts, a job's failed
//! attempts, retry / cancel / delete by id or by filter, and pausing a queue (no claims until resumed).

use chrono::{Duration, Utc};
use skybook_domain::{JobId, TenantSlug};
use skybook_storage::{Engine, Enqueued, JobFilter, JobPage, JobSelection, NewJob, Store};
use skybook_testkit::backend_tests;

async fn enqueue(store: &Store, job: NewJob, seconds_ago: i64) -> JobId {
    let at = Utc::now() - Duration::seconds(seconds_ago);
    match store.enqueue_job(&job, at).await.unwrap() {
        Enqueued::New(id) => id,
        Enqueued::Duplicate => panic!("duplicate"),
    }
}

fn job(kind: &str, payload: &str) -> NewJob {
    NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: payload.into(),
        priority: 0,
        max_attempts: 1,
        run_at: Utc::now() - Duration::seconds(1),
        unique_key: None,
        tenant_id: None,
    }
}

async fn operators_list_filter_and_page_jobs(engine: Engine) {
    let store = skybook_testkit::store(engine, "job_admin_list").await;
    let tenant = store
        .ensure_tenant(&TenantSlug::parse("acme").unwrap(), "Acme")
        .await
        .unwrap();
    // Seven jobs, the newest last: two of acme's, one whose payload holds a needle.
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut new = job("email.send", &format!("{{\"n\": {i}}}"));
        if i == 2 || i == 5 {
            new.tenant_id = Some(tenant.id);
            new.kind = "import.feed".into();
        }
        if i == 3 {
            new.payload = "{\"to\": \"NEEDLE@example.com\"}".into();
        }
        ids.push(enqueue(&store, new, 100 - i).await);
    }
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();

    // Pages of three: the whole listing, newest first, each job once.
    let mut seen = Vec::new();
    let mut page = JobPage {
        after: None,
        limit: 3,
    };
    loop {
        let jobs = store.list_jobs(&JobFilter::default(), &page).await.unwrap();
        seen.extend(jobs.iter().map(|j| j.id));
        match jobs.last() {
            Some(last) if jobs.len() == 3 => page.after = Some((last.created_at, last.id)),
            _ => break,
        }
    }
    assert_eq!(seen, newest_first);

    let list = |filter: JobFilter| {
        let store = store.clone();
        async move {
            let page = JobPage {
                after: None,
                limit: 100,
            };
            let jobs = store.list_jobs(&filter, &page).await.unwrap();
            jobs.into_iter().map(|j| j.id).collect::<Vec<_>>()
        }
    };
    let acme = JobFilter {
        tenant_id: Some(tenant.id),
        ..JobFilter::default()
    };
    assert_eq!(list(acme.clone()).await, [ids[5], ids[2]]);
    let by_kind = JobFilter {
        kind: Some("import.feed".into()),
        ..JobFilter::default()
    };
    assert_eq!(list(by_kind).await, [ids[5], ids[2]]);
    let needle = JobFilter {
        text: Some("needle@".into()),
        ..JobFilter::default()
    };
    assert_eq!(list(needle).await, [ids[3]], "case-insensitive");
    let wildcard = JobFilter {
        text: Some("%".into()),
        ..JobFilter::default()
    };
    assert!(list(wildcard).await.is_empty(), "a % is a literal");

    let counts = store.job_state_counts(None).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (
            counts[0].queue.as_str(),
            counts[0].state.as_str(),
            counts[0].count
        ),
        ("default", "queued", 7)
    );
    let counts = store.job_state_counts(Some(tenant.id)).await.unwrap();
    assert_eq!(counts[0].count, 2);
}

async fn operators_retry_cancel_delete_and_pause(engine: Engine) {
    let store = skybook_testkit::store(engine, "job_admin_act").await;
    let a = enqueue(&store, job("a", "{}"), 30).await;
    let b = enqueue(&store, job("b", "{}"), 20).await;
    let c = enqueue(&store, job("b", "{}"), 10).await;

    // `a` runs and fails for good (one attempt): its error is kept with its worker.
    let now = Utc::now();
    let claimed = store
        .claim_jobs("default", "w1", now, Duration::seconds(60), 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, a);
    assert!(store.fail_job(a, "w1", "boom", None, now).await.unwrap());
    let errors = store.job_errors(a).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (
            errors[0].attempt,
            errors[0].worker.as_str(),
            errors[0].error.as_str()
        ),
        (1, "w1", "boom")
    );

    // Retry now: queued again, with one more attempt allowed.
    assert_eq!(
        store
            .retry_jobs(
                &JobSelection::Ids {
                    ids: vec![a],
                    tenant_id: None
                },
                Utc::now()
            )
            .await
            .unwrap(),
        1
    );
    let retried = store.job(a).await.unwrap().unwrap();
    assert_eq!(
        (
            retried.state.as_str(),
            retried.max_attempts,
            retried.finished_at
        ),
        ("queued", 2, None)
    );

    // Cancel every `b`: both end failed, "cancelled by an operator".
    let bs = JobSelection::Matching(JobFilter {
        kind: Some("b".into()),
        ..JobFilter::default()
    });
    assert_eq!(store.cancel_jobs(&bs, Utc::now()).await.unwrap(), 2);
    for id in [b, c] {
        let job = store.job(id).await.unwrap().unwrap();
        assert_eq!(job.state, "failed");
        assert_eq!(job.last_error.as_deref(), Some("cancelled by an operator"));
    }
    assert_eq!(
        store.cancel_jobs(&bs, Utc::now()).await.unwrap(),
        0,
        "finished jobs stay as they are"
    );

    // A running job is neither retried nor deleted.
    let running = store
        .claim_jobs("default", "w2", Utc::now(), Duration::seconds(60), 1)
        .await
        .unwrap();
    assert_eq!(running[0].id, a);
    let all = JobSelection::Matching(JobFilter::default());
    assert_eq!(
        store
            .retry_jobs(
                &JobSelection::Ids {
                    ids: vec![a],
                    tenant_id: None
                },
                Utc::now()
            )
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.delete_jobs(&all).await.unwrap(),
        2,
        "b and c, not the running a"
    );
    assert!(store.job(b).await.unwrap().is_none());
    assert!(store.job(a).await.unwrap().is_some());
    assert!(store.complete_job(a, "w2", Utc::now()).await.unwrap());

    // A paused queue is not claimed from until resumed.
    let d = enqueue(&store, job("d", "{}"), 1).await;
    assert!(store.pause_queue("default", Utc::now()).await.unwrap());
    assert!(
        !store.pause_queue("default", Utc::now()).await.unwrap(),
        "paused already"
    );
    assert_eq!(store.paused_queues().await.unwrap()[0].0, "default");
    let none = store
        .claim_jobs("default", "w3", Utc::now(), Duration::seconds(60), 5)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    assert!(store.resume_queue("default").await.unwrap());
    let claimed = store
        .claim_jobs("default", "w3", Utc::now(), Duration::seconds(60), 5)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [d]);
    assert!(
        store
            .delete_jobs(&JobSelection::Ids {
                ids: vec![],
                tenant_id: None
            })
            .await
            .unwrap()
            == 0
    );
}

/// The dashboard's counts: exact on a small table; on a large one (PostgreSQL), queued, running and failed still
/// exact and the finished jobs the planner's estimate, close to the truth and marked as such.
async fn counts_are_exact_where_operators_act_and_estimated_for_a_large_history(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "job_counts").await;
    let store = skybook_testkit::store_at(&url).await;
    let rows: i64 = match engine {
        Engine::Postgres => 250_000,
        Engine::Sqlite => 2_000,
    };
    // A tenth failed, a fiftieth queued, the rest done; two queues.
    let insert = match engine {
        Engine::Postgres => format!(
            "INSERT INTO jobs (id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, created_at) \
             SELECT gen_random_uuid(), CASE WHEN i % 4 = 0 THEN 'imports' ELSE 'default' END, 'k', '{{}}', 0, \
             CASE WHEN i % 50 = 1 THEN 'queued' WHEN i % 10 = 0 THEN 'failed' ELSE 'done' END, 1, 3, now(), now() \
             FROM generate_series(1, {rows}) AS i"
        ),
        Engine::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows}) \
             INSERT INTO jobs (id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, created_at) \
             SELECT randomblob(16), CASE WHEN i % 4 = 0 THEN 'imports' ELSE 'default' END, 'k', '{{}}', 0, \
             CASE WHEN i % 50 = 1 THEN 'queued' WHEN i % 10 = 0 THEN 'failed' ELSE 'done' END, 1, 3, \
             '2026-11-30T00:00:00+00:00', '2026-11-30T00:00:00+00:00' FROM s"
        ),
    };
    skybook_testkit::execute_outside(&url, &insert)
        .await
        .unwrap();
    skybook_testkit::execute_outside(&url, "ANALYZE")
        .await
        .unwrap();
    let truth = |queue: &str, state: &str| {
        (1..=rows)
            .filter(|i| (if i % 4 == 0 { "imports" } else { "default" }) == queue)
            .filter(|i| {
                let s = if i % 50 == 1 {
                    "queued"
                } else if i % 10 == 0 {
                    "failed"
                } else {
                    "done"
                };
                s == state
            })
            .count() as i64
    };
    let counts = store.job_state_counts(None).await.unwrap();
    for queue in ["default", "imports"] {
        for state in ["queued", "failed", "done"] {
            let want = truth(queue, state);
            let got = counts.iter().find(|c| c.queue == queue && c.state == state);
            let Some(got) = got else {
                assert_eq!(want, 0, "{queue} {state} missing from {counts:?}");
                continue;
            };
            let estimated = engine == Engine::Postgres && state == "done";
            assert_eq!(got.estimated, estimated, "{got:?}");
            if estimated {
                let off = (got.count - want).abs() as f64 / want as f64;
                assert!(
                    off < 0.1,
                    "{queue} {state}: estimated {} of {want}",
                    got.count
                );
            } else {
                assert_eq!(got.count, want, "{queue} {state}");
            }
        }
    }
}

/// Retrying every failed job retries only the newest run of a unique key, and none whose key has a run
/// unfinished: the unique index allows one unfinished job per key, and a retry broke it (a 500, nothing retried).
async fn a_retry_keeps_one_unfinished_job_per_unique_key(engine: Engine) {
    let store = skybook_testkit::store(engine, "job_admin_unique").await;
    let keyed = |key: &str| NewJob {
        unique_key: Some(key.into()),
        ..job("cron.tick", "{}")
    };
    let fail = |id: JobId| {
        let store = store.clone();
        async move {
            let ids = JobSelection::Ids {
                ids: vec![id],
                tenant_id: None,
            };
            assert_eq!(store.cancel_jobs(&ids, Utc::now()).await.unwrap(), 1);
        }
    };
    let older_q = enqueue(&store, keyed("q"), 40).await;
    fail(older_q).await;
    let older_k = enqueue(&store, keyed("k"), 30).await;
    fail(older_k).await;
    let newer_k = enqueue(&store, keyed("k"), 20).await;
    fail(newer_k).await;
    let queued_q = enqueue(&store, keyed("q"), 10).await;

    let failed = JobSelection::Matching(JobFilter {
        state: Some("failed".into()),
        ..JobFilter::default()
    });
    assert_eq!(store.retry_jobs(&failed, Utc::now()).await.unwrap(), 1);
    let state = |id: JobId| {
        let store = store.clone();
        async move { store.job(id).await.unwrap().unwrap().state }
    };
    assert_eq!(state(newer_k).await, "queued", "the newest run of k");
    assert_eq!(state(older_k).await, "failed", "an older run of k");
    assert_eq!(state(older_q).await, "failed", "q has a run queued");
    assert_eq!(state(queued_q).await, "queued");
}

backend_tests!(
    a_retry_keeps_one_unfinished_job_per_unique_key,
    counts_are_exact_where_operators_act_and_estimated_for_a_large_history,
    operators_list_filter_and_page_jobs,
    operators_retry_cancel_delete_and_pause,
);
