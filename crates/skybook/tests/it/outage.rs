//! PostgreSQL stopped for five seconds while bookings stream in: nothing acknowledged is lost, nothing is
//! charged twice, everything pending is settled afterwards, and the server never exits.

use std::time::{Duration, Instant};

use skybook_testkit::fixtures::tenant_with_flight;
use skybook_testkit::postgres::PrivatePostgres;
use skybook_testkit::process::{
    deployment, sandbox_faults, sandbox_stats, settled_status, start_sandbox,
};
use skybook_testkit::stream::{BookingStream, STREAM_EMAIL};

use crate::process::Running;

const EXE: &str = env!("CARGO_BIN_EXE_skybook");
const CLIENTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_survive_five_seconds_without_postgres() {
    let dir = skybook_testkit::test_dir("outage");
    let pg = PrivatePostgres::start(&dir.join("pg"));
    let store = skybook_testkit::store_at(&pg.url).await;
    let (_tenant, flight) = tenant_with_flight(&store, "air", 5000).await;
    store.close().await;
    let (_sandbox, sandbox) = start_sandbox(EXE, &dir);
    let mut cmd = deployment(EXE, "serve", &pg.url, &sandbox);
    cmd.args(["--listen", "127.0.0.1:0"])
        .env("SKYBOOK_SENTINEL_SCHEDULE", "* * * * * *")
        .env("SKYBOOK_SENTINEL_SETTLE_AFTER", "2s");
    let mut node = Running::start(cmd, &dir, "serve");
    let base = node.serving_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // The first bookings' charge answers are all lost: they are acknowledged 202 `payment_pending` and left for
    // the sentinel to settle — after the outage, so the sentinel's path goes through it too.
    sandbox_faults(
        &sandbox,
        serde_json::json!({"lose_next_charge_responses": 40}),
    )
    .await;

    let stream = BookingStream::start(
        std::slice::from_ref(&base),
        "air",
        &flight,
        CLIENTS,
        "outage",
    );

    let ready = |client: reqwest::Client, base: String| async move {
        client
            .get(format!("{base}/ready"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.stop();
    let outage = Instant::now();
    assert_eq!(
        ready(client.clone(), base.clone()).await,
        503,
        "/ready reports the database away"
    );
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(outage.elapsed())).await;
    pg.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(client.clone(), base.clone()).await != 200 {
        assert!(Instant::now() < deadline, "/ready never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acknowledged = stream.finish().await.acknowledged;
    let retried = acknowledged.iter().filter(|a| a.attempts > 1).count();
    eprintln!(
        "{} bookings acknowledged, {retried} after retries through the outage",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() >= CLIENTS * 2,
        "the stream ran: {}",
        acknowledged.len()
    );
    // The outage reached the pipeline: phases were retried inside the server (and perhaps by clients).
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth(skybook_testkit::process::METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let db_retries: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("skybook_db_retries_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!("{db_retries} phase retries inside the server");
    assert!(db_retries > 0.0 || retried > 0, "no booking met the outage");
    assert!(
        acknowledged.iter().any(|a| a.status == 202),
        "some booking was left pending for the sentinel"
    );

    // Every acknowledged booking ends confirmed (pending ones are settled by the sentinel).
    for a in &acknowledged {
        assert_eq!(
            settled_status(&client, &base, "air", &a.reference, STREAM_EMAIL).await,
            "confirmed",
            "{}",
            a.reference
        );
    }
    let stats = sandbox_stats(&sandbox).await;
    assert_eq!(
        stats["charges"].as_i64(),
        Some(acknowledged.len() as i64),
        "one charge per booking: {stats}"
    );
    assert_eq!(stats["refunds"].as_i64(), Some(0), "{stats}");
    assert!(node.is_running(), "the server never exited");
}
