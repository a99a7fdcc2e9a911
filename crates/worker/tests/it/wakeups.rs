//! LISTEN/NOTIFY: on PostgreSQL a job or an outbox email inserted by another node wakes this node's workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use skybook_storage::{Engine, NewJob, Store, JOBS_CHANNEL, OUTBOX_CHANNEL};
use skybook_testkit::fixtures::{confirmed_booking, tenant_with_flight};
use skybook_worker::Wakeups;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

async fn enqueue(store: &Store) {
    let job = NewJob {
        queue: "default".into(),
        kind: "noop".into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 1,
        run_at: Utc::now(),
        unique_key: None,
        tenant_id: None,
    };
    store.enqueue_job(&job, Utc::now()).await.unwrap();
}

/// Waits for `woken`, inserting work again each half second until it fires: the listener subscribes
/// asynchronously, and a notification sent before that is (by design) lost.
async fn woken_by<F, Fut>(woken: &Notify, mut insert: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        insert().await;
        if tokio::time::timeout(Duration::from_millis(500), woken.notified())
            .await
            .is_ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "never woken");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_inserted_by_another_node_wakes_this_one_on_postgres() {
    let url = skybook_testkit::fresh_database_url(Engine::Postgres, "wakeups").await;
    let store = skybook_testkit::store_at(&url).await;
    let (jobs, outbox) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let wakeups = Wakeups::new()
        .on(JOBS_CHANNEL, Arc::clone(&jobs))
        .on(OUTBOX_CHANNEL, Arc::clone(&outbox));
    let cancel = CancellationToken::new();
    let listening = tokio::spawn({
        let (store, cancel) = (store.clone(), cancel.clone());
        async move { wakeups.run(&store, cancel).await }
    });

    let other_node = skybook_testkit::store_at(&url).await;
    woken_by(&jobs, || enqueue(&other_node)).await;
    let (tenant, flight) = tenant_with_flight(&other_node, "air", 50).await;
    let mut n = 0;
    woken_by(&outbox, || {
        n += 1;
        let (store, tenant, flight) = (other_node.clone(), tenant.clone(), flight.clone());
        async move {
            confirmed_booking(
                &store,
                &tenant,
                &flight,
                &format!("Wake{}", "x".repeat(n)),
                &format!("ch_{n}"),
            )
            .await;
        }
    })
    .await;

    cancel.cancel();
    listening.await.unwrap().unwrap();
}

#[tokio::test]
async fn sqlite_has_nothing_to_listen_to() {
    let store = skybook_testkit::store(Engine::Sqlite, "wakeups_sqlite").await;
    let wakeups = Wakeups::new().on(JOBS_CHANNEL, Arc::new(Notify::new()));
    wakeups.run(&store, CancellationToken::new()).await.unwrap();
}
