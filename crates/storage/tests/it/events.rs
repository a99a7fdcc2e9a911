//! Dashboard events: published on one node, received by the subscribers of every node (PostgreSQL: two stores
//! on one database, as two processes would be); on SQLite, by the store's own subscribers.

use std::time::Duration;

use serde_json::{json, Value};
use skybook_storage::Engine;
use skybook_testkit::backend_tests;

async fn an_event_reaches_every_nodes_subscribers(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "events").await;
    let publisher = skybook_testkit::store_at(&url).await;
    let listener = match engine {
        Engine::Postgres => skybook_testkit::store_at(&url).await,
        // One node: its own subscribers.
        Engine::Sqlite => publisher.clone(),
    };
    let mut events = listener.subscribe_events().await;
    let event = json!({ "type": "job", "id": "j-1", "kind": "import.feed", "state": "done" });
    publisher.publish_event(&event);
    let received = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the event never arrived")
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&received).unwrap(), event);

    // Too large for a notification: cut to what identifies it.
    let large = json!({ "type": "job", "id": "j-2", "kind": "k", "error": "x".repeat(20_000) });
    publisher.publish_event(&large);
    let text = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the large event never arrived")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "type": "job", "id": "j-2", "tenant": null, "kind": "k", "truncated": true })
    );
}

backend_tests!(an_event_reaches_every_nodes_subscribers);
