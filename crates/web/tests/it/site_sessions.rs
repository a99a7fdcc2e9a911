//! What a website visit keeps: the session cookie, its timeouts, admin sign-in, and the error pages.

use axum::http::StatusCode;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_web::site::SessionOptions;

use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

async fn session_cookie_is_signed_http_only_and_lax(engine: Engine) {
    let app = TestApp::start(engine, "site_cookie", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    // A search has something to keep (it is remembered): a session is stored.
    let date = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    visitor
        .get(&format!("/?origin=DUB&destination=LHR&date={date}"))
        .await;
    let set = visitor.last_set_cookie.clone().expect("a session cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(set.contains("Secure"), "{set}");
    let max_age: u64 = set
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (30 * 86_400 - 60..=30 * 86_400).contains(&max_age),
        "idle timeout 30 days: {set}"
    );

    // The cookies are signed with the deployment's secret: a node of this deployment accepts them (the CSRF
    // check passes and the form is judged), while a node with another secret on the same database refuses
    // them, though the session id inside names a row it could read.
    let form = visitor.get("/find").await;
    let find = [
        ("csrf", form.csrf()),
        ("reference", "ABC234".to_owned()),
        ("email", "a@example.com".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = find.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut same = Visitor::new(app.another_node());
    same.cookie = visitor.cookie.clone();
    same.csrf_cookie = visitor.csrf_cookie.clone();
    assert_eq!(
        same.post("/find", &fields).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let other_secret =
        skybook_domain::SecretKey::parse("another-deployments-secret-0123456789abcdef").unwrap();
    let mut foreign = Visitor::new(app.node_with_secret(other_secret));
    foreign.cookie = visitor.cookie.clone();
    foreign.csrf_cookie = visitor.csrf_cookie.clone();
    assert_eq!(
        foreign.post("/find", &fields).await.status,
        StatusCode::FORBIDDEN
    );
}

async fn sessions_end_at_the_absolute_timeout(engine: Engine) {
    let sessions = SessionOptions {
        absolute_timeout: std::time::Duration::ZERO,
        ..SessionOptions::default()
    };
    let app = TestApp::start_with(engine, "site_absolute", 5, sessions).await;
    let mut visitor = Visitor::new(app.router.clone());
    let date = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    visitor
        .get(&format!("/?origin=DUB&destination=LHR&date={date}"))
        .await;
    assert!(visitor.cookie.is_some(), "the search is kept");
    // With a zero lifetime the session is over by the next request: the search is gone with it.
    let again = visitor.get("/").await;
    assert_ne!(
        again.input("origin").as_deref(),
        Some("DUB"),
        "{}",
        again.html
    );
}

async fn admin_login_cycles_the_session(engine: Engine) {
    let app = TestApp::start(engine, "site_admin", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let gate = visitor.get("/admin").await;
    assert_eq!(gate.location.as_deref(), Some("/admin/login"));
    let login = visitor.get("/admin/login").await;
    let wrong = visitor
        .post(
            "/admin/login",
            &[
                ("csrf", &login.csrf()),
                ("token", "guess-guess-guess-guess"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("is not an admin or operator token"));

    let before = visitor.cookie.clone();
    let csrf_before = login.csrf();
    let ok = visitor
        .post(
            "/admin/login",
            &[("csrf", &login.csrf()), ("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(ok.location.as_deref(), Some("/admin"));
    assert_ne!(visitor.cookie, before, "the session id changes at login");
    let admin = visitor.get("/admin").await;
    assert_ne!(admin.csrf(), csrf_before, "and so does the CSRF token");
    let stale = visitor
        .post("/admin/logout", &[("csrf", csrf_before.as_str())])
        .await;
    assert_eq!(
        stale.status,
        StatusCode::FORBIDDEN,
        "a token seen before sign-in is worth nothing after it"
    );
    let admin = visitor.get("/admin").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.html.contains("Operations"));

    // Scripts use the token as a bearer header instead; a wrong one is sent to sign in.
    let mut script = Visitor::new(app.router.clone());
    script.bearer = Some(ADMIN_TOKEN.to_owned());
    assert_eq!(script.get("/admin").await.status, StatusCode::OK);
    script.bearer = Some("not-the-admin-token-at-all".to_owned());
    assert_eq!(
        script.get("/admin").await.location.as_deref(),
        Some("/admin/login")
    );

    // The old cookie (seen before login) is not an admin session.
    let mut old = Visitor::new(app.router.clone());
    old.cookie = before;
    assert_eq!(
        old.get("/admin").await.location.as_deref(),
        Some("/admin/login")
    );
}

async fn error_pages_match_the_site(engine: Engine) {
    let app = TestApp::start(engine, "site_errors", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let missing = visitor.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.html.contains("Page not found") && missing.html.contains("/static/site.css"));
    let (status, json) = app.get("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"], "not_found", "API clients get JSON");

    let unknown_flight = visitor
        .get(&format!("/book/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(unknown_flight.status, StatusCode::NOT_FOUND);

    let crash = visitor.post("/debug/panic", &[]).await;
    assert_eq!(crash.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(crash.html.contains("Something went wrong on our side"));
    let id = crash.request_id.clone().expect("x-request-id");
    assert_eq!(
        crash.text_of_id("request-id"),
        Some(id),
        "the page shows the request id"
    );
    assert!(
        !crash.html.contains("fault injection"),
        "the cause stays in the log"
    );
}

backend_tests!(
    session_cookie_is_signed_http_only_and_lax,
    sessions_end_at_the_absolute_timeout,
    admin_login_cycles_the_session,
    error_pages_match_the_site,
);
