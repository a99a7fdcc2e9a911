//! Concurrency: the duplicate storms and the oversell race, through a real port, on both engines.

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::Value;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{assert_one_booking_rest_duplicates, CARD_OK};

use crate::harness::{key, TestApp};

async fn post(client: &reqwest::Client, base: &str, key: &str, body: &Value) -> (u16, Value) {
    skybook_testkit::process::post_booking(client, base, "air", key, body).await
}

/// 50 concurrent requests with one key: one booking, one charge; a replay returns the stored response.
async fn same_key_storm_charges_once(engine: Engine) {
    let app = TestApp::start(engine, "same_key_storm", 10).await;
    let base = app.serve().await;
    let client = reqwest::Client::new();
    let body = app.body("Ann", "Lee", CARD_OK);
    let k = key("storm", 0);
    let results = join_all((0..50).map(|_| post(&client, &base, &k, &body))).await;

    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    let in_progress = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"] == "request_in_progress")
        .count();
    assert!(!created.is_empty(), "one request must book: {results:?}");
    assert_eq!(
        created.len() + in_progress,
        50,
        "every other request is told the first is in progress: {results:?}"
    );
    let references: HashSet<&str> = created
        .iter()
        .map(|b| b["booking"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(references.len(), 1, "all 201s are the same booking");
    assert_eq!(app.charges().await, 1);
    assert_eq!(app.seats_left().await, 9);

    let (status, replay) = post(&client, &base, &k, &body).await;
    assert_eq!(
        (status, &replay),
        (201, created[0]),
        "a replay returns the stored response"
    );
    assert_eq!(app.charges().await, 1);
}

/// 20 concurrent requests with fresh keys for the same booking (the "fresh browser" retry): one charge, the
/// others 409 duplicate_booking naming the existing reference.
async fn fresh_key_storm_is_one_booking(engine: Engine) {
    let app = TestApp::start(engine, "fresh_key_storm", 30).await;
    let base = app.serve().await;
    let client = reqwest::Client::new();
    let body = app.body("Bryan", "Hunt", CARD_OK);
    let results = join_all((0..20).map(|i| {
        let (client, base, body) = (&client, &base, &body);
        async move { post(client, base, &key("fresh", i), body).await }
    }))
    .await;

    assert_one_booking_rest_duplicates(&results);
    assert_eq!(app.charges().await, 1);
    assert_eq!(app.seats_left().await, 29);
}

/// 30 different travellers at once on a flight with 10 seats: no oversell, charges = successful bookings.
async fn no_oversell_under_a_rush(engine: Engine) {
    let app = TestApp::start(engine, "rush", 10).await;
    let base = app.serve().await;
    let client = reqwest::Client::new();
    let results = join_all((0..30).map(|i| {
        let (client, base) = (&client, &base);
        let body = app.body(
            "Traveller",
            // Letters only: "Number^" and "Number_" would be one traveller ("NUMBER") to the fingerprint.
            &format!(
                "Number{}{}",
                (b'A' + (i / 26) as u8) as char,
                (b'A' + (i % 26) as u8) as char
            ),
            CARD_OK,
        );
        async move { post(client, base, &key("rush", i), &body).await }
    }))
    .await;
    let booked = results.iter().filter(|(s, _)| *s == 201).count();
    let sold_out = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"] == "sold_out")
        .count();
    assert_eq!((booked, sold_out), (10, 20), "{results:?}");
    assert_eq!(app.charges().await, 10);
    assert_eq!(app.seats_left().await, 0);
}

backend_tests!(
    same_key_storm_charges_once,
    fresh_key_storm_is_one_booking,
    no_oversell_under_a_rush
);
