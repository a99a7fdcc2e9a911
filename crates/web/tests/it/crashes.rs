//! Crash capture through the HTTP surface: a panic in a handler is a 500 with the request id, a crash report
//! grouped by fingerprint in `/admin/api/crashes` (admin only), an alert for the new group, and the server
//! goes on serving.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;

use crate::harness::{TestApp, ADMIN_TOKEN};

async fn panic_once(app: &TestApp) -> String {
    let (status, headers, body) = app
        .request(Request::post("/debug/panic").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = serde_json::from_str(&body).unwrap();
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(body["request_id"], id.as_str());
    id
}

pub(crate) async fn admin_get(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, _, body) = app.request(request.body(Body::empty()).unwrap()).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Waits until the crash API shows a group with `count` crashes (reports are stored just after the 500).
async fn crashes_with_count(app: &TestApp, count: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = admin_get(app, "/admin/api/crashes", Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["crashes"][0]["count"] == count {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no crash group with count {count}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `/admin/api/alerts` lists an alert of `kind`; returns the whole list.
async fn alerts_of_kind(app: &TestApp, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, alerts) = admin_get(app, "/admin/api/alerts", Some(ADMIN_TOKEN)).await;
        if alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == kind)
        {
            return alerts;
        }
        assert!(Instant::now() < deadline, "no {kind} alert: {alerts}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_handler_panic_is_reported_grouped_and_alerted(engine: Engine) {
    let app = TestApp::start(engine, "crashes", 5).await;
    let first = panic_once(&app).await;
    let body = crashes_with_count(&app, 1).await;
    let crashes = body["crashes"].as_array().unwrap();
    assert_eq!(crashes.len(), 1);
    let crash = &crashes[0];
    assert_eq!(crash["last_request_id"], first.as_str());
    assert!(
        crash["message"]
            .as_str()
            .unwrap()
            .contains("fault injection"),
        "{crash}"
    );
    assert!(
        crash["location"]
            .as_str()
            .unwrap()
            .contains("middleware.rs"),
        "{crash}"
    );
    let latest = &crash["latest"];
    assert_eq!(
        (latest["method"].as_str(), latest["route"].as_str()),
        (Some("POST"), Some("/debug/panic"))
    );
    assert_eq!(
        latest["tenant"], "air",
        "the site's tenant when the route names none"
    );
    assert!(latest["release"].as_str().unwrap().starts_with("skybook "));
    assert!(
        latest["backtrace"]
            .as_str()
            .unwrap()
            .contains("debug_panic"),
        "{latest}"
    );

    let second = panic_once(&app).await;
    let body = crashes_with_count(&app, 2).await;
    assert_eq!(
        body["crashes"].as_array().unwrap().len(),
        1,
        "the same bug is one group"
    );
    assert_eq!(body["crashes"][0]["last_request_id"], second.as_str());

    // Each report's alert is written just after its group is counted: wait for it.
    let alerts = alerts_of_kind(&app, "crash").await;
    let crash_alerts: Vec<&Value> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "crash")
        .collect();
    assert_eq!(crash_alerts.len(), 1, "a new group alerts once: {alerts}");
    assert_eq!(
        crash_alerts[0]["subject"],
        body["crashes"][0]["fingerprint"]
    );

    // The same bug firing again and again: the tenth crash raises a spike alert.
    for _ in 2..10 {
        panic_once(&app).await;
    }
    // The reports are stored off the request path, so the group's last request is whichever of the last
    // panics was recorded with the latest time; the page must show that one.
    let tenth = crashes_with_count(&app, 10).await;
    let last = tenth["crashes"][0]["last_request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alerts = alerts_of_kind(&app, "crash_spike").await;
    let fingerprint = body["crashes"][0]["fingerprint"].as_str().unwrap();
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "crash_spike"
                && a["subject"] == format!("{fingerprint}:10").as_str()),
        "{alerts}"
    );

    let (status, _, html) = app
        .request(
            Request::get("/admin")
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("fault injection") && html.contains(&last),
        "the admin page lists the crash"
    );

    let (status, _) = app.get("/api/v1/tenants/air/flights").await;
    assert_eq!(status, StatusCode::OK, "still serving");
}

async fn the_crash_api_refuses_requests_without_the_admin_token(engine: Engine) {
    let app = TestApp::start(engine, "crashes_auth", 5).await;
    panic_once(&app).await;
    for token in [None, Some("not-the-admin-token-at-all")] {
        for path in ["/admin/api/crashes", "/admin/api/alerts"] {
            let (status, body) = admin_get(&app, path, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
            assert_eq!(body["error"], "unauthorized");
            assert!(body.get("crashes").is_none());
        }
    }
}

backend_tests!(
    a_handler_panic_is_reported_grouped_and_alerted,
    the_crash_api_refuses_requests_without_the_admin_token,
);
