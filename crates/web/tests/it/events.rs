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

backend_tests!(the_event_stream_carries_what_the_database_delivers);
