//! PostgreSQL stopped for five seconds while bookings stream in: nothing acknowledged is lost, nothing is
//! charged twice, everything pending is settled afterwards, and the server never exits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use skybook_testkit::fixtures::{booking_body, tenant_with_flight, CARD_OK};
use skybook_testkit::postgres::PrivatePostgres;
use skybook_testkit::process::{
    deployment, sandbox_faults, sandbox_stats, settled_status, start_sandbox,
};

use crate::process::Running;

const EXE: &str = env!("CARGO_BIN_EXE_skybook");
const CLIENTS: usize = 4;

/// Books until acknowledged (201 or 202), retrying with the same key as a careful client does on 503,
/// 409 `request_in_progress` or a failed connection. Returns (status, reference, attempts).
async fn book_until_acknowledged(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> (u16, String, usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    for attempt in 1.. {
        assert!(
            Instant::now() < deadline,
            "booking {key} never acknowledged"
        );
        let response = client
            .post(format!("{base}/api/v1/tenants/air/bookings"))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        if let Ok(response) = response {
            let status = response.status().as_u16();
            let json: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                201 | 202 => {
                    return (
                        status,
                        json["booking"]["reference"].as_str().unwrap().to_owned(),
                        attempt,
                    )
                }
                503 | 409 => {}
                other => panic!("unexpected {other} for {key}: {json}"),
            }
        }
        // Pacing between a client's retries (Retry-After says 2 s; a test client is more eager).
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unreachable!()
}

/// `n` in letters (a, b, ..., z, ba, bb, ...): passenger names take no digits.
fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

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

    // The stream: each client books one traveller after another until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, base, stop, flight) = (
                client.clone(),
                base.clone(),
                Arc::clone(&stop),
                flight.clone(),
            );
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let family = format!("Stream{}{}", letters(c), letters(i));
                    let key = format!("outage-{c}-{i}-{}", uuid::Uuid::new_v4().simple());
                    let body = booking_body(&flight, "Ann", &family, CARD_OK);
                    acknowledged.push(book_until_acknowledged(&client, &base, &key, &body).await);
                    i += 1;
                }
                acknowledged
            })
        })
        .collect();

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
    stop.store(true, Ordering::SeqCst);

    let mut acknowledged = Vec::new();
    for stream in streams {
        acknowledged.extend(stream.await.unwrap());
    }
    let retried = acknowledged
        .iter()
        .filter(|(_, _, attempts)| *attempts > 1)
        .count();
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
        acknowledged.iter().any(|(status, _, _)| *status == 202),
        "some booking was left pending for the sentinel"
    );

    // Every acknowledged booking ends confirmed (pending ones are settled by the sentinel).
    for (_, reference, _) in &acknowledged {
        assert_eq!(
            settled_status(&client, &base, "air", reference, "ann@example.com").await,
            "confirmed",
            "{reference}"
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
