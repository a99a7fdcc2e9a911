//! The booking API's answers, one behaviour per test, on both engines.

use axum::http::StatusCode;
use serde_json::json;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{CARD_DECLINED, CARD_OK, CARD_OK_2};

use crate::harness::{key, TestApp};

/// Redactions for values that differ per run.
macro_rules! assert_booking_snapshot {
    ($name:expr, $value:expr) => {
        insta::assert_json_snapshot!($name, $value, {
            ".**.reference" => "[reference]",
            ".**.id" => "[id]",
            ".**.departs_at" => "[time]",
            ".**.created_at" => "[time]",
        })
    };
}

async fn a_booking_is_confirmed_and_readable(engine: Engine) {
    let app = TestApp::start(engine, "confirmed", 5).await;
    let (status, body) = app
        .book(&key("ok", 0), &app.body("Ann", "Lee", CARD_OK))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_booking_snapshot!("booking_confirmed", &body);
    let reference = body["booking"]["reference"].as_str().unwrap();
    assert_eq!(reference.len(), 6);

    let (status, shown) = app
        .get(&format!(
            "/api/v1/tenants/air/bookings/{reference}?email=ann@example.com"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, body, "GET shows what POST answered");
    let (status, _) = app
        .get(&format!(
            "/api/v1/tenants/air/bookings/{}?family_name=LEE",
            reference.to_lowercase()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "references are case-insensitive");

    // The confirmation email waits in the outbox, with a deterministic Message-ID.
    let booking = app
        .store
        .booking_by_reference(app.tenant.id, &reference.parse_ref())
        .await
        .unwrap()
        .unwrap();
    let outbox = app
        .store
        .outbox_for_booking(app.tenant.id, booking.id)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        outbox[0].message_id,
        format!("<booking-{}.confirmation@skybook>", booking.id)
    );
    assert_eq!(outbox[0].recipient.as_str(), "ann@example.com");
    assert_eq!(
        booking.charge_id.as_deref().map(|c| c.starts_with("ch_")),
        Some(true)
    );
}

trait ParseRef {
    fn parse_ref(&self) -> skybook_domain::BookingReference;
}
impl ParseRef for str {
    fn parse_ref(&self) -> skybook_domain::BookingReference {
        skybook_domain::BookingReference::parse(self).unwrap()
    }
}

async fn every_invalid_field_is_named_at_once(engine: Engine) {
    let app = TestApp::start(engine, "invalid", 5).await;
    let body = json!({
        "flight_id": "not-a-flight",
        "contact_email": "nobody@",
        "passengers": [{"given_name": "Ann", "family_name": ""}, {"given_name": 7}],
        "card": {"number": "4242424242424241", "exp_month": 13, "exp_year": 2031, "cvc": "12"}
    });
    let (status, errors) = app.book(&key("invalid", 0), &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    insta::assert_json_snapshot!("invalid_fields", errors);
    let (status, errors) = app.book(&key("invalid", 1), &json!([1, 2])).await;
    assert_eq!(
        (status, errors["fields"]["body"][0].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("must be a JSON object")
        )
    );
    // Bytes that are not JSON at all.
    let request = axum::http::Request::post("/api/v1/tenants/air/bookings")
        .header("idempotency-key", key("invalid", 2))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let (status, _, body) = app.request(request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("is not valid JSON"), "{body}");
    assert_eq!(
        app.sandbox_stats().await["card_tokens"],
        0,
        "nothing reached the provider"
    );
    assert_eq!(app.seats_left().await, 5);
}

/// The document says `exp_month` and `exp_year` are integers: JSON's `2031.0` is one (JSON Schema agrees), a
/// string of digits is not.
async fn card_expiry_is_a_json_integer(engine: Engine) {
    let app = TestApp::start(engine, "integers", 5).await;
    let mut body = app.body("Ann", "Lee", CARD_OK);
    body["card"]["exp_month"] = json!("12");
    let (status, errors) = app.book(&key("integers", 0), &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{errors}");
    assert_eq!(
        errors["fields"]["card.exp_month"],
        json!(["must be a whole number"])
    );
    body["card"]["exp_month"] = json!(12.0);
    body["card"]["exp_year"] = json!(2031.0);
    let (status, answer) = app.book(&key("integers", 1), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn idempotency_key_rules(engine: Engine) {
    let app = TestApp::start(engine, "keys", 5).await;
    let body = app.body("Ann", "Lee", CARD_OK);
    let (status, answer) = app.book_raw(None, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.contains("\"idempotency_key_required\""), "{answer}");
    let (status, _) = app.book_raw(Some("too-short"), &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let k = key("reuse", 0);
    assert_eq!(app.book(&k, &body).await.0, StatusCode::CREATED);
    let other = app.body("Ann", "Lee", CARD_OK_2);
    let (status, answer) = app.book(&k, &other).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    assert_eq!(app.charges().await, 1);
}

async fn a_declined_card_releases_its_seats(engine: Engine) {
    let app = TestApp::start(engine, "declined", 3).await;
    let k = key("declined", 0);
    let (status, body) = app.book(&k, &app.body("Dee", "Klein", CARD_DECLINED)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["error"], "card_declined");
    assert_eq!(body["booking"]["status"], "failed");
    assert_eq!(app.seats_left().await, 3, "seats released");
    let (again, replay) = app.book(&k, &app.body("Dee", "Klein", CARD_DECLINED)).await;
    assert_eq!(
        (again, &replay),
        (StatusCode::PAYMENT_REQUIRED, &body),
        "replayed, not re-tried"
    );
    let stats = app.sandbox_stats().await;
    assert_eq!(
        (stats["charges"].as_i64(), stats["declines"].as_i64()),
        (Some(0), Some(1))
    );

    // The failed booking does not block a new attempt with another card.
    let (status, _) = app
        .book(&key("declined", 1), &app.body("Dee", "Klein", CARD_OK))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn sold_out_and_unknown_things(engine: Engine) {
    let app = TestApp::start(engine, "sold_out", 1).await;
    assert_eq!(
        app.book(&key("s", 0), &app.body("Ann", "One", CARD_OK))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, body) = app
        .book(&key("s", 1), &app.body("Ben", "Two", CARD_OK))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("sold_out"))
    );

    let (status, _) = app.get("/api/v1/tenants/nobody/flights").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut body = app.body("Ann", "Lee", CARD_OK);
    body["flight_id"] = json!(skybook_domain::FlightId::new().to_string());
    let (status, answer) = app.book(&key("s", 2), &body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(app.charges().await, 1);
}

async fn another_tenants_booking_is_not_found(engine: Engine) {
    let app = TestApp::start(engine, "tenancy", 5).await;
    let (_, body) = app
        .book(&key("t", 0), &app.body("Ann", "Lee", CARD_OK))
        .await;
    let reference = body["booking"]["reference"].as_str().unwrap();
    skybook_testkit::fixtures::tenant_with_flight(&app.store, "rival", 5).await;
    let (status, _) = app
        .get(&format!(
            "/api/v1/tenants/rival/bookings/{reference}?family_name=Lee"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get("/api/v1/tenants/air/bookings/ZZZZZZ?family_name=Lee")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A dropped charge response and provider 5xx: retried with the same provider key, still exactly one charge.
async fn lost_responses_and_5xx_still_charge_once(engine: Engine) {
    let app = TestApp::start(engine, "faults", 5).await;
    app.sandbox_faults(json!({"lose_next_charge_responses": 1}))
        .await;
    let (status, body) = app
        .book(&key("lost", 0), &app.body("Ann", "Lee", CARD_OK))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(app.charges().await, 1);

    app.sandbox_faults(json!({"fail_next_charges": 2})).await;
    let (status, body) = app
        .book(&key("5xx", 0), &app.body("Ben", "Lee", CARD_OK))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["charges"], 2);
    assert_eq!(
        stats["idempotent_replays"], 1,
        "the lost response was recovered by replaying its key"
    );
}

/// The provider stays down past the retries: 202 payment_pending, never a failure; the client's retry with the
/// same key resumes and confirms with one charge.
async fn an_unknown_outcome_is_pending_then_resumed(engine: Engine) {
    let app = TestApp::start(engine, "pending", 5).await;
    app.sandbox_faults(json!({"fail_next_charges": 1000})).await;
    let k = key("pending", 0);
    let body = app.body("Ann", "Lee", CARD_OK);
    let (status, pending) = app.book(&k, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert_eq!(pending["booking"]["status"], "payment_pending");
    assert_eq!(app.charges().await, 0);
    assert_eq!(
        app.seats_left().await,
        4,
        "the seat stays held while the outcome is unknown"
    );

    // A fresh browser meanwhile is told the booking exists.
    let (status, dup) = app.book(&key("pending", 1), &body).await;
    assert_eq!(
        (status, dup["existing"]["status"].as_str()),
        (StatusCode::CONFLICT, Some("payment_pending"))
    );

    let confirmed = recovered_then_retried(&app, &k, &body, &pending).await;
    assert_eq!(app.charges().await, 1);
    let (status, replay) = app.book(&k, &body).await;
    assert_eq!((status, replay), (StatusCode::CREATED, confirmed));
}

/// The charge happens but every response to it is lost: 202, and the booking's seat stays held. The client's
/// retry with the same key finds the charge by its idempotency key and confirms — one charge, never a second.
async fn a_charge_whose_responses_were_lost_is_found_on_resume(engine: Engine) {
    let app = TestApp::start(engine, "lost_all", 5).await;
    app.sandbox_faults(json!({"lose_next_charge_responses": 1000}))
        .await;
    let k = key("lost-all", 0);
    let body = app.body("Ann", "Lee", CARD_OK);
    let (status, pending) = app.book(&k, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert_eq!(pending["booking"]["status"], "payment_pending");
    assert_eq!(
        app.charges().await,
        1,
        "the provider charged once, however often the request was retried"
    );

    // A retry while the provider is too slow to answer the lookup (longer than the client's timeout and retry
    // budget): the charge may exist, so the booking stays pending — never failed, never charged again.
    app.sandbox_faults(json!({"lose_next_charge_responses": 0, "latency_ms": 6000}))
        .await;
    let (status, still) = app.book(&k, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{still}");
    assert_eq!(still["booking"]["status"], "payment_pending");
    assert_eq!(app.seats_left().await, 4, "the seat stays held");

    recovered_then_retried(&app, &k, &body, &pending).await;
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["charges"], 1);
    assert_eq!(
        stats["card_tokens"], 1,
        "settled by looking the charge up, not by charging again"
    );
    assert_eq!(app.seats_left().await, 4);
}

/// The provider recovers (faults cleared) and the client retries with the same key: the pending booking is
/// resumed and confirmed — the same booking, not a new one. Returns the 201 body.
async fn recovered_then_retried(
    app: &TestApp,
    key: &str,
    body: &serde_json::Value,
    pending: &serde_json::Value,
) -> serde_json::Value {
    app.sandbox_faults(json!({})).await;
    let (status, confirmed) = app.book(key, body).await;
    assert_eq!(status, StatusCode::CREATED, "{confirmed}");
    assert_eq!(
        confirmed["booking"]["reference"],
        pending["booking"]["reference"]
    );
    confirmed
}

/// A pending booking resumed after its seat hold ran out is given up, not charged: the seats may already be
/// back on sale (the sentinel releases expired holds).
async fn a_resume_past_the_seat_hold_fails_without_charging(engine: Engine) {
    let pipeline = skybook_booking::PipelineConfig {
        seat_hold: std::time::Duration::from_millis(1),
        ..skybook_booking::PipelineConfig::default()
    };
    let app = TestApp::start_with_pipeline(engine, "resume_expired", 5, pipeline).await;
    app.sandbox_faults(json!({"fail_next_charges": 1000})).await;
    let k = key("expired", 0);
    let body = app.body("Ann", "Late", CARD_OK);
    let (status, pending) = app.book(&k, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    app.sandbox_faults(json!({})).await;

    let (status, failed) = app.book(&k, &body).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{failed}");
    assert_eq!(
        (
            failed["booking"]["status"].as_str(),
            failed["booking"]["failure_reason"].as_str()
        ),
        (Some("failed"), Some("hold_expired"))
    );
    assert_eq!(app.charges().await, 0, "never charged past the hold");
    assert_eq!(app.seats_left().await, 5, "the seat is back on sale");
}

backend_tests!(
    a_resume_past_the_seat_hold_fails_without_charging,
    a_charge_whose_responses_were_lost_is_found_on_resume,
    a_booking_is_confirmed_and_readable,
    every_invalid_field_is_named_at_once,
    card_expiry_is_a_json_integer,
    idempotency_key_rules,
    a_declined_card_releases_its_seats,
    sold_out_and_unknown_things,
    another_tenants_booking_is_not_found,
    lost_responses_and_5xx_still_charge_once,
    an_unknown_outcome_is_pending_then_resumed,
);
