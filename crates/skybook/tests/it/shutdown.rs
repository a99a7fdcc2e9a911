//! `skybook serve` stopping for a rollout (SIGTERM): not ready at once, the booking in flight — between its
//! charge and its settle — finishes, and the process exits 0 within its grace period.

use std::time::{Duration, Instant};

use serde_json::json;
use skybook_storage::{Store, Tenant};
use skybook_testkit::fixtures::{booking_body, tenant_with_flight, CARD_OK};
use skybook_testkit::process::{self, post_booking, sandbox_faults, sandbox_stats, Running};
use skybook_testkit::Engine;

const EXE: &str = env!("CARGO_BIN_EXE_skybook");

/// One `serve` node on a fresh SQLite database with a tenant and a flight, and the sandbox as its provider.
struct Node {
    dir: std::path::PathBuf,
    url: String,
    store: Store,
    tenant: Tenant,
    flight: skybook_domain::Flight,
    _sandbox: Running,
    sandbox_url: String,
    node: Running,
    base: String,
}

impl Node {
    async fn start(name: &str, drain: &str, grace: &str) -> Self {
        let dir = skybook_testkit::test_dir(name);
        let url =
            skybook_testkit::fresh_database_url(Engine::Sqlite, &name.replace('-', "_")).await;
        let store = skybook_testkit::store_at(&url).await;
        let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
        let (sandbox, sandbox_url) = process::start_sandbox(EXE, &dir);
        let mut cmd = process::deployment(EXE, "serve", &url, &sandbox_url);
        cmd.args(["--listen", "127.0.0.1:0", "--no-workers"])
            .env("SKYBOOK_SHUTDOWN_DRAIN", drain)
            .env("SKYBOOK_SHUTDOWN_GRACE", grace);
        let node = Running::start(cmd, &dir, "serve");
        let base = node.serving_url();
        Self {
            dir,
            url,
            store,
            tenant,
            flight,
            _sandbox: sandbox,
            sandbox_url,
            node,
            base,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigtermed_node_finishes_its_booking_and_exits_cleanly() {
    let Node {
        store,
        tenant,
        flight,
        sandbox_url,
        mut node,
        base,
        // Bound, not dropped: the sandbox lives for the test.
        _sandbox,
        ..
    } = Node::start("serve-sigterm", "1s", "15s").await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Every answer from the provider comes 3 s late: the booking is charged, then waits for the answer — past
    // the 1 s drain, so it is still in flight when the node stops taking connections.
    sandbox_faults(&sandbox_url, json!({"latency_ms": 3000})).await;
    let booking = tokio::spawn({
        let (client, base) = (client.clone(), base.clone());
        let body = booking_body(&flight, "Ann", "Lee", CARD_OK);
        async move { post_booking(&client, &base, "air", "sigterm-booking-0001", &body).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox_stats(&sandbox_url).await["charges"]
        .as_i64()
        .unwrap()
        == 0
    {
        assert!(Instant::now() < deadline, "the booking was never charged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stopped_at = Instant::now();
    node.terminate();
    // Not ready at once, while still answering (the load balancer is told before anything is refused).
    let ready = loop {
        let status = client
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap()
            .status();
        if status != 200 || stopped_at.elapsed() > Duration::from_secs(1) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready, 503, "readiness turns off at SIGTERM");

    let (status, answer) = booking.await.unwrap();
    assert_eq!(status, 201, "the booking in flight finished: {answer}");
    assert_eq!(node.wait_exit(), Some(0), "exits cleanly");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(15),
        "within the grace period: {:?}",
        stopped_at.elapsed()
    );
    assert_eq!(sandbox_stats(&sandbox_url).await["charges"], 1);
    let booked = answer["booking"]["reference"].as_str().unwrap();
    let stored = store
        .booking_by_reference(
            tenant.id,
            &skybook_domain::BookingReference::parse(booked).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status.as_str(), "confirmed");
}

/// A request still running when the grace period ends does not keep the node: it exits 0 at the grace, and the
/// booking it was making is left as after a crash — charged at most once — and settled by the sentinel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_grace_period_the_node_exits_and_the_booking_resumes() {
    let Node {
        dir,
        url,
        store,
        tenant,
        flight,
        sandbox_url,
        mut node,
        base,
        _sandbox,
    } = Node::start("serve-grace", "0s", "2s").await;
    let client = reqwest::Client::new();
    // Every provider answer 4 s late: the charge is made, and its answer is still on its way at the 2 s grace.
    sandbox_faults(&sandbox_url, json!({"latency_ms": 4000})).await;
    let in_flight = tokio::spawn({
        let body = booking_body(&flight, "Ann", "Lee", CARD_OK);
        // The node goes away under it: the client sees the connection cut.
        async move {
            client
                .post(format!("{base}/api/v1/tenants/air/bookings"))
                .header("idempotency-key", "grace-booking-key-0001")
                .json(&body)
                .send()
                .await
                .is_err()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox_stats(&sandbox_url).await["charges"]
        .as_i64()
        .unwrap()
        == 0
    {
        assert!(Instant::now() < deadline, "the booking was never charged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped_at = Instant::now();
    node.terminate();
    assert_eq!(node.wait_exit(), Some(0), "exits 0 at the grace");
    let stopped_after = stopped_at.elapsed();
    assert!(
        stopped_after < Duration::from_secs(4),
        "at the grace, not when the request would have ended: {stopped_after:?}"
    );
    assert!(
        in_flight.await.unwrap(),
        "the request was cut off, not answered"
    );

    // The sentinel (a worker) finds the booking the node left and settles it from the provider's record.
    sandbox_faults(&sandbox_url, json!({})).await;
    let mut worker = process::deployment(EXE, "worker", &url, &sandbox_url);
    worker
        .env("SKYBOOK_SENTINEL_SCHEDULE", "* * * * * *")
        .env("SKYBOOK_SENTINEL_SETTLE_AFTER", "1s");
    let _worker = Running::start(worker, &dir, "worker");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !store
        .unsettled_bookings(chrono::Utc::now() + chrono::Duration::hours(1), 10)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the booking was never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seats = store.flight(tenant.id, flight.id).await.unwrap().unwrap();
    assert_eq!(seats.seats_left(), 4, "settled confirmed: its seat kept");
    assert_eq!(
        sandbox_stats(&sandbox_url).await["charges"],
        1,
        "charged once"
    );
}
