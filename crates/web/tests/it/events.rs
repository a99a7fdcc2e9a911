//! The dashboard's event stream (`GET /admin/events`, server-sent events) over a real port: behind the admin
//! token; it opens with `{"type":"open"}`, then carries each event the database delivers as a `data:` line.

use std::time::Duration;

use serde_json::json;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;

use crate::harness::{TestApp, ADMIN_TOKEN};

/// Reads the stream until a chunk so far contains `needle`; returns everything read.
async fn read_until(response: &mut reqwest::Response, seen: &mut String, needle: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(needle) {
            let chunk = response.chunk().await.unwrap().expect("the stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle} in: {seen}"));
}

async fn the_event_stream_carries_what_the_database_delivers(engine: Engine) {
    let app = TestApp::start(engine, "admin_events", 5).await;
    let base = app.serve().await;
    let http = reqwest::Client::new();
    let refused = http
        .get(format!("{base}/admin/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let mut stream = http
        .get(format!("{base}/admin/events"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, r#"data: {"type":"open"}"#).await;

    let event = json!({ "type": "job", "id": "sse-1", "kind": "import.feed", "state": "done" });
    app.store.publish_event(&event);
    read_until(&mut stream, &mut seen, &format!("data: {event}")).await;
}

/// A tenant operator's stream carries its tenant's events, and none of another tenant's or the platform's.
async fn a_tenant_operators_stream_carries_its_own_tenants_events_only(engine: Engine) {
    let app = TestApp::start(engine, "admin_events_tenant", 5).await;
    let token = skybook_domain::OperatorToken::generate();
    app.store
        .create_operator_token(app.tenant.id, &token.hash(), true, chrono::Utc::now())
        .await
        .unwrap();
    let base = app.serve().await;
    let mut stream = reqwest::Client::new()
        .get(format!("{base}/admin/events"))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, r#"data: {"type":"open"}"#).await;
    let other = skybook_domain::TenantId::new();
    app.store.publish_event(
        &json!({ "type": "job", "id": "other-1", "tenant": other, "state": "done" }),
    );
    app.store
        .publish_event(&json!({ "type": "cron", "name": "sentinel" }));
    app.store
        .publish_event(&json!({ "type": "alert", "kind": "stuck_booking", "tenant": null }));
    app.store.publish_event(
        &json!({ "type": "job", "id": "own-1", "tenant": app.tenant.id, "state": "done" }),
    );
    // Events arrive in order: once its own is in, the others would have been.
    read_until(&mut stream, &mut seen, "own-1").await;
    for hidden in ["other-1", "sentinel", "stuck_booking"] {
        assert!(
            !seen.contains(hidden),
            "{hidden} reached the tenant operator: {seen}"
        );
    }
}

backend_tests!(
    the_event_stream_carries_what_the_database_delivers,
    a_tenant_operators_stream_carries_its_own_tenants_events_only,
);
