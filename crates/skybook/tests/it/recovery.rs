//! The promise end to end, with real processes: a lost charge response, a provider failing charges, and the
//! skybook process SIGKILLed between charge and settle. Afterwards every booking is either `confirmed` with
//! exactly one charge and exactly one email accepted by a real SMTP server, or `failed` with its seats released
//! and no charge.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use skybook_testkit::fixtures::{booking_body, tenant_with_flight, CARD_OK};
use skybook_testkit::process::{
    deployment, post_booking, sandbox_faults, sandbox_stats, settled_status, start_sandbox,
};
use skybook_testkit::smtp::SmtpSink;
use skybook_testkit::{backend_tests, Engine};

use crate::process::Running;

const EXE: &str = env!("CARGO_BIN_EXE_skybook");
const SEATS: u32 = 10;

async fn every_booking_ends_confirmed_once_or_failed_and_released(engine: Engine) {
    let dir = skybook_testkit::test_dir("recovery");
    let url = skybook_testkit::fresh_database_url(engine, "recovery").await;
    let store = skybook_testkit::store_at(&url).await;
    let (_tenant, flight) = tenant_with_flight(&store, "air", SEATS).await;
    let (_sandbox, sandbox) = start_sandbox(EXE, &dir);
    let smtp = SmtpSink::start(&dir);
    let node = |name: &str, sentinel: &str| {
        let mut cmd = deployment(EXE, "serve", &url, &sandbox);
        cmd.args(["--listen", "127.0.0.1:0"])
            .env("SKYBOOK_SMTP_URL", smtp.url())
            .env("SKYBOOK_SEAT_HOLD", "3s")
            .env("SKYBOOK_SENTINEL_SCHEDULE", sentinel)
            .env("SKYBOOK_SENTINEL_SETTLE_AFTER", "1s");
        let node = Running::start(cmd, &dir, name);
        let base = node.serving_url();
        (node, base)
    };
    let client = reqwest::Client::new();
    let key = |name: &str| format!("recovery-{name}-{}", uuid::Uuid::new_v4().simple());
    let body = |family: &str| booking_body(&flight, "Ann", family, CARD_OK);

    // The first node's sentinel sweeps only once a year: what happens to the bookings below is the request
    // path's doing until the node dies.
    let (mut first, base) = node("node-1", "0 0 0 1 1 *");
    let mut references = BTreeMap::new();

    // The provider charges but the answer is lost: the retry under the same idempotency key finds the charge.
    sandbox_faults(&sandbox, json!({"lose_next_charge_responses": 1})).await;
    let (status, lost) = post_booking(&client, &base, "air", &key("lost"), &body("Lost")).await;
    assert_eq!(
        (status, lost["booking"]["status"].as_str()),
        (201, Some("confirmed")),
        "{lost}"
    );
    references.insert(
        "lost",
        lost["booking"]["reference"].as_str().unwrap().to_owned(),
    );

    // The provider fails a few charge attempts with 5xx before charging: the retries get through.
    sandbox_faults(&sandbox, json!({"fail_next_charges": 2})).await;
    let (status, flaky) = post_booking(&client, &base, "air", &key("flaky"), &body("Flaky")).await;
    assert_eq!(status, 201, "{flaky}");
    references.insert(
        "flaky",
        flaky["booking"]["reference"].as_str().unwrap().to_owned(),
    );

    // The provider fails every attempt: the outcome is unknown, the booking stays pending, nobody is charged.
    sandbox_faults(&sandbox, json!({"fail_next_charges": 50})).await;
    let (status, down) = post_booking(&client, &base, "air", &key("down"), &body("Down")).await;
    assert_eq!(
        (status, down["booking"]["status"].as_str()),
        (202, Some("payment_pending")),
        "{down}"
    );
    references.insert(
        "down",
        down["booking"]["reference"].as_str().unwrap().to_owned(),
    );
    sandbox_faults(&sandbox, json!({})).await;

    // The provider charges and is slow to answer; the node is killed before it can settle.
    let charges_before = sandbox_stats(&sandbox).await["charges"].as_i64().unwrap();
    sandbox_faults(&sandbox, json!({"latency_ms": 5000})).await;
    let crash_key = key("crash");
    let in_flight = tokio::spawn({
        let (client, base, crash_key, body) = (
            client.clone(),
            base.clone(),
            crash_key.clone(),
            body("Crash"),
        );
        async move {
            client
                .post(format!("{base}/api/v1/tenants/air/bookings"))
                .header("idempotency-key", crash_key)
                .json(&body)
                .send()
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox_stats(&sandbox).await["charges"].as_i64().unwrap() == charges_before {
        assert!(
            Instant::now() < deadline,
            "the crash booking was never charged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the client saw the node die"
    );
    sandbox_faults(&sandbox, json!({})).await;

    // A fresh node whose sentinel sweeps every second finishes what the first left.
    let (_second, base) = node("node-2", "* * * * * *");
    let (status, existing) =
        post_booking(&client, &base, "air", &key("crash-again"), &body("Crash")).await;
    assert_eq!(
        (status, existing["error"].as_str()),
        (409, Some("duplicate_booking")),
        "{existing}"
    );
    references.insert(
        "crash",
        existing["existing"]["reference"]
            .as_str()
            .unwrap()
            .to_owned(),
    );

    let mut outcomes = BTreeMap::new();
    for (name, reference) in &references {
        outcomes.insert(
            *name,
            settled_status(&client, &base, "air", reference, "ann@example.com").await,
        );
    }
    let expected: BTreeMap<&str, String> = [
        ("crash", "confirmed"),
        ("down", "failed"),
        ("flaky", "confirmed"),
        ("lost", "confirmed"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    assert_eq!(outcomes, expected);

    let stats = sandbox_stats(&sandbox).await;
    assert_eq!(
        (stats["charges"].as_i64(), stats["refunds"].as_i64()),
        (Some(3), Some(0)),
        "one charge per confirmed booking: {stats}"
    );
    let seats_left = store
        .flight(flight.tenant_id, flight.id)
        .await
        .unwrap()
        .unwrap()
        .seats_left();
    assert_eq!(
        seats_left,
        SEATS - 3,
        "the failed booking's seat is back on sale"
    );

    smtp.wait_for_messages(3, Duration::from_secs(30));
    // Every email handed off (marked sent): no further send can come, so a duplicate would be here now.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store
        .unsent_outbox_emails(chrono::Utc::now() + chrono::Duration::days(1), 1)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "emails left unsent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mails = smtp.messages();
    let mut ids: Vec<String> = mails
        .iter()
        .map(|m| {
            m.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .expect("a Message-ID")
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (mails.len(), ids.len()),
        (3, 3),
        "exactly one email per confirmed booking: {ids:?}"
    );
    for (name, reference) in &references {
        let mailed = mails
            .iter()
            .filter(|m| m.contains(reference.as_str()))
            .count();
        let expected = usize::from(outcomes[name] == "confirmed");
        assert_eq!(mailed, expected, "{name} ({reference}): {mailed} email(s)");
    }
}

backend_tests!(every_booking_ends_confirmed_once_or_failed_and_released);
