//! The website against forged forms, idle visitors and token guessing.

use axum::http::StatusCode;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::CARD_OK;

use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

/// A form with more travellers than a booking may hold is refused as the API refuses it, never cut down to
/// the limit and charged.
async fn a_forged_form_with_too_many_travellers_is_refused(engine: Engine) {
    let app = TestApp::start(engine, "site_forged", 20).await;
    let mut visitor = Visitor::new(app.router.clone());
    let path = format!("/book/{}", app.flight.id);
    let form = visitor.get(&path).await;
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), form.csrf()),
        (
            "idempotency_key".into(),
            form.input("idempotency_key").unwrap(),
        ),
        ("contact_email".into(), "ann@example.com".into()),
        ("card.number".into(), CARD_OK.into()),
        ("card.exp_month".into(), "12".into()),
        ("card.exp_year".into(), "2031".into()),
        ("card.cvc".into(), "123".into()),
    ];
    for i in 0..12 {
        fields.push((
            format!("passengers[{i}].given_name"),
            format!("Ann{}", "a".repeat(i)),
        ));
        fields.push((format!("passengers[{i}].family_name"), "Lee".into()));
    }
    // And one absurd index, which must cost nothing.
    fields.push(("passengers[999999999].given_name".into(), "X".into()));
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = visitor.post(&path, &borrowed).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.html
    );
    assert!(
        page.html.contains("must list 1 to 9 passengers"),
        "{}",
        page.html
    );
    assert_eq!(app.charges().await, 0);
    assert_eq!(app.seats_left().await, 20);
}

/// A visitor who only looks — the search page, the find form, the booking form, a script with the admin token —
/// leaves no session behind: no cookie is set, so no row was stored.
async fn looking_stores_no_session(engine: Engine) {
    let app = TestApp::start(engine, "site_no_session", 5).await;
    let book = format!("/book/{}", app.flight.id);
    for path in ["/", "/find", "/admin/login", book.as_str()] {
        let mut visitor = Visitor::new(app.router.clone());
        let page = visitor.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(visitor.cookie, None, "{path} stored a session");
    }
    let mut script = Visitor::new(app.router.clone());
    script.bearer = Some(ADMIN_TOKEN.to_owned());
    assert_eq!(script.get("/admin").await.status, StatusCode::OK);
    assert_eq!(script.cookie, None, "a bearer request stored a session");

    // Something to keep (a search) stores one, and the find form still works without one.
    let mut visitor = Visitor::new(app.router.clone());
    let find = visitor.get("/find").await;
    let wrong = visitor
        .post(
            "/find",
            &[
                ("csrf", &find.csrf()),
                ("reference", "ZZZZZZ"),
                ("email", "a@example.com"),
            ],
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.html
    );
    let date = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    visitor
        .get(&format!("/?origin=DUB&destination=LHR&date={date}"))
        .await;
    assert!(visitor.cookie.is_some(), "a remembered search is kept");
}

/// `bearer` in any case (RFC 7235); repeated wrong tokens get 429 and raise one alert.
async fn admin_tokens_are_throttled_and_alerted(engine: Engine) {
    let app = TestApp::start(engine, "site_admin_throttle", 5).await;
    let request = |auth: String| {
        axum::http::Request::get("/admin/api/alerts")
            .header("authorization", auth)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, _, _) = app.request(request(format!("bearer {ADMIN_TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK, "lower-case scheme");
    let quota = skybook_web::throttle::ThrottleOptions::default()
        .admin_sign_in
        .burst;
    let mut statuses = Vec::new();
    for i in 0..quota + 2 {
        let (status, headers, _) = app
            .request(request(format!("Bearer wrong-token-{i:04}-xxxxxxxx")))
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(headers.contains_key("retry-after"));
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u32,
        quota,
        "the right token did not count: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2);
    let (status, _, _) = app.request(request(format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right token waits: guesses are throttled before they are judged"
    );
    let alerts = app.store.recent_alerts(None, 10).await.unwrap();
    let raised: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(raised, ["admin_sign_in_failures"], "alerted once");
}

backend_tests!(
    a_forged_form_with_too_many_travellers_is_refused,
    looking_stores_no_session,
    admin_tokens_are_throttled_and_alerted,
);
