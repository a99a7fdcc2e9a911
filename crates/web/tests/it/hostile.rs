//! What an outside probe tried against the API, and what each now gets: one traveller under every spelling is
//! charged once, a booking is read only with proof, guessing is throttled, and bad requests are named.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::CARD_OK;

use crate::harness::{key, TestApp};

/// The same traveller written two ways, booked with two keys on the same flight and card: the first is charged,
/// the second is refused (`409` duplicate, or `422` when the spelling itself is refused), and the sandbox has
/// exactly one charge.
async fn one_traveller_under_any_spelling_is_charged_once(engine: Engine) {
    // (case, first traveller (given, family), second traveller, what the second gets)
    type Name = (&'static str, &'static str);
    let cases: [(&str, Name, Name, u16); 8] = [
        (
            "zero-width space",
            ("Zoe", "Wu"),
            ("Z\u{200B}oe", "Wu"),
            422,
        ),
        ("soft hyphen", ("Zoe", "Wu"), ("Zo\u{AD}e", "Wu"), 422),
        ("bidi override", ("Zoe", "Wu"), ("Zoe\u{202E}", "Wu"), 422),
        ("accents", ("Seán", "Ó Briain"), ("Sean", "O Briain"), 409),
        (
            "hyphen and space",
            ("Jean-Luc", "Picard"),
            ("Jean Luc", "Picard"),
            409,
        ),
        ("look-alike letter", ("Zoe", "Wu"), ("Z\u{43E}e", "Wu"), 409),
        ("case", ("Zoe", "Wu"), ("ZOE", "wu"), 409),
        (
            "extra spaces",
            ("Zoe Ann", "Wu"),
            ("  Zoe   Ann ", " Wu"),
            409,
        ),
    ];
    for (i, (case, first, second, refused)) in cases.into_iter().enumerate() {
        let app = TestApp::start(engine, &format!("spelling_{i}"), 5).await;
        let body = |(given, family): (&str, &str)| {
            let mut body = app.body("Zoe", "Wu", CARD_OK);
            body["passengers"] = json!([{"given_name": given, "family_name": family}]);
            body["contact_email"] = json!("zoe@example.com");
            body
        };
        let (status, answer) = app.book(&key("first", i), &body(first)).await;
        assert_eq!(status, StatusCode::CREATED, "{case}: {answer}");
        let (status, answer) = app.book(&key("second", i), &body(second)).await;
        assert_eq!(status.as_u16(), refused, "{case}: {answer}");
        if refused == 422 {
            assert!(
                answer["fields"]["passengers[0].given_name"].is_array(),
                "{case}: the field is named: {answer}"
            );
        }
        assert_eq!(app.charges().await, 1, "{case}: one charge");
    }
}

async fn the_same_traveller_twice_in_one_booking_is_refused(engine: Engine) {
    let app = TestApp::start(engine, "twice_in_one", 5).await;
    let mut body = app.body("Zoe", "Wu", CARD_OK);
    body["passengers"] = json!([
        {"given_name": "Zoe", "family_name": "Wu"},
        {"given_name": "Ann", "family_name": "Lee"},
        {"given_name": "ZOË", "family_name": "WU"},
    ]);
    let (status, answer) = app.book(&key("twice", 0), &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        answer["fields"]["passengers[2]"][0],
        "is the same traveller as passengers[0]"
    );
    assert_eq!(app.charges().await, 0);
    assert_eq!(app.seats_left().await, 5);
}

async fn a_booking_is_read_only_with_proof(engine: Engine) {
    let app = TestApp::start(engine, "read_proof", 5).await;
    let mut body = app.body("Siobhán", "O'Brien", CARD_OK);
    body["contact_email"] = json!("Siobhan@Example.com");
    let (status, booked) = app.book(&key("proof", 0), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let reference = booked["booking"]["reference"].as_str().unwrap();
    let path = |query: &str| format!("/api/v1/tenants/air/bookings/{reference}{query}");
    for query in [
        "",
        "?email=",
        "?email=someone@example.com",
        "?family_name=Brien",
        "?family_name=",
        "?email=a@example.com&email=siobhan@example.com",
        "?family_name=%FF%FE",
    ] {
        let (status, answer) = app.get(&path(query)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query}: {answer}");
        assert_eq!(
            answer,
            json!({"error": "not_found", "resource": "booking"}),
            "a wrong proof reads like an unknown reference"
        );
    }
    let (_, unknown) = app
        .get("/api/v1/tenants/air/bookings/ZZZZZZ?family_name=OBrien")
        .await;
    assert_eq!(
        unknown,
        json!({"error": "not_found", "resource": "booking"})
    );
    for query in [
        "?email=siobhan@example.com",
        "?family_name=OBRIEN",
        "?family_name=o%E2%80%99brien",
    ] {
        let (status, shown) = app.get(&path(query)).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(shown, booked);
    }
}

/// Beyond the per-client quota a lookup is a 429 with `Retry-After`, whatever the reference.
async fn booking_lookups_are_throttled(engine: Engine) {
    let app = TestApp::start(engine, "lookup_throttle", 5).await;
    let quota = skybook_web::throttle::ThrottleOptions::default()
        .booking_lookup
        .burst;
    for i in 0..quota {
        let (status, _) = app
            .get(&format!(
                "/api/v1/tenants/air/bookings/ZZZ{i:03}?family_name=Lee"
            ))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "guess {i}");
    }
    let (status, headers, body) = app
        .request(
            Request::get("/api/v1/tenants/air/bookings/ZZZZZZ?family_name=Lee")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "too_many_requests");
}

async fn bad_requests_are_named(engine: Engine) {
    let app = TestApp::start(engine, "bad_requests", 5).await;
    let body = app.body("Ann", "Lee", CARD_OK).to_string();
    let post =
        || Request::post("/api/v1/tenants/air/bookings").header("idempotency-key", key("bad", 0));
    // Not declared JSON: 415, in the API's error shape.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = post();
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, _, answer) = app
            .request(request.body(Body::from(body.clone())).unwrap())
            .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"], "unsupported_media_type");
    }
    // Two keys: which request is this? A 400, not the first one silently.
    let request = post()
        .header("idempotency-key", key("bad", 1))
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, _, answer) = app.request(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer.contains("exactly one Idempotency-Key"), "{answer}");
    // Every bad card field at once.
    let mut card = app.body("Ann", "Lee", CARD_OK);
    card["card"]["exp_month"] = json!(13);
    card["card"]["exp_year"] = json!(1800);
    let (status, answer) = app.book(&key("bad", 2), &card).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["fields"]["card.exp_month"].is_array(), "{answer}");
    assert!(answer["fields"]["card.exp_year"].is_array(), "{answer}");
    assert_eq!(app.charges().await, 0);
}

backend_tests!(
    one_traveller_under_any_spelling_is_charged_once,
    the_same_traveller_twice_in_one_booking_is_refused,
    a_booking_is_read_only_with_proof,
    booking_lookups_are_throttled,
    bad_requests_are_named,
);
