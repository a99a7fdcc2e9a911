//! Live events for the operators' dashboards — a job started, finished or failed, an import's progress, an
//! alert — published by whichever node they happen on and delivered to the dashboards open on every node.
//!
//! PostgreSQL carries them with `NOTIFY` on one channel per schema (`skybook_events_<schema>`: deployments, and
//! tests, sharing a database do not hear each other). Each [`Store`] runs one `LISTEN` connection, started by
//! the first subscriber, fanning notifications out to its subscribers; when that connection drops it reconnects
//! and sends `{"type": "resync"}`, so a dashboard reloads what it shows rather than miss what happened in
//! between. A notification's payload is limited to 8,000 bytes: a larger event is cut to its `type`, `id` and
//! `kind` with `"truncated": true` (the dashboard fetches the rest). SQLite (one node) delivers in-process.
//!
//! Bursts are coalesced: events published within [`COALESCE`] of each other go out as one notification holding
//! a JSON array (split to stay under the payload limit), in order, and each subscriber still receives them one
//! by one. A busy queue then costs a notification per batch, not one — and a commit, with its global
//! notification lock — per job state.
//!
//! Events are best-effort by design: the pages and the JSON always read the database, and the stream only says
//! when to read it again. Publishing sends its `NOTIFY` in its own transaction with `synchronous_commit` off (see
//! `wakeups` for why a notification never rides on a business transaction).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, oneshot, OnceCell};

use crate::backend::Backend;
use crate::store::Store;

/// Largest payload sent as it is (PostgreSQL's limit is 8,000 bytes).
const MAX_PAYLOAD: usize = 7_900;
/// Events a slow subscriber may fall behind by before it is told to resynchronise.
const BUFFER: usize = 1024;
/// How long an event waits for others to share its notification.
const COALESCE: Duration = Duration::from_millis(25);

/// The in-process side: subscribers, and whether the `LISTEN` task runs.
#[derive(Clone, Debug)]
pub(crate) struct EventBus {
    sender: broadcast::Sender<String>,
    /// Set once the `LISTEN` task is listening (PostgreSQL).
    listening: Arc<OnceCell<()>>,
    /// Events waiting to be sent (PostgreSQL), and whether a send is due.
    pending: Arc<Mutex<Vec<String>>>,
    flushing: Arc<AtomicBool>,
}

impl EventBus {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
            listening: Arc::new(OnceCell::new()),
            pending: Arc::default(),
            flushing: Arc::default(),
        }
    }
}

/// The notification channel of the schema `schema`.
fn channel(schema: Option<&str>) -> String {
    format!("skybook_events_{}", schema.unwrap_or("public"))
}

/// `event` as sent: whole, or cut to what identifies it when too large.
fn payload(event: &Value) -> String {
    let text = event.to_string();
    if text.len() <= MAX_PAYLOAD {
        return text;
    }
    json!({
        "type": event.get("type"),
        "id": event.get("id"),
        "tenant": event.get("tenant"),
        "kind": event.get("kind"),
        "truncated": true,
    })
    .to_string()
}

impl Store {
    /// Publishes `event` (a JSON object with a `type`) to every node's subscribers, within [`COALESCE`].
    /// Best-effort: it never waits for the database (on PostgreSQL a background send picks it up), and a failure
    /// to send is logged, not returned.
    pub fn publish_event(&self, event: &Value) {
        let text = payload(event);
        match &self.backend {
            Backend::Sqlite { .. } => {
                let _ = self.events.sender.send(text);
            }
            Backend::Postgres(pool) => {
                self.events
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(text);
                if !self.events.flushing.swap(true, Ordering::AcqRel) {
                    tokio::spawn(flush(
                        pool.clone(),
                        self.events.clone(),
                        channel(self.pg_schema.as_deref()),
                    ));
                }
            }
        }
    }

    /// Every event published from now on, on any node (as JSON text). The first call on PostgreSQL starts this
    /// store's `LISTEN` and returns once it listens (or could not, after a few seconds: it keeps trying).
    pub async fn subscribe_events(&self) -> broadcast::Receiver<String> {
        let receiver = self.events.sender.subscribe();
        if let Backend::Postgres(pool) = &self.backend {
            self.events
                .listening
                .get_or_init(|| async {
                    let (ready, is_ready) = oneshot::channel();
                    tokio::spawn(listen(
                        pool.clone(),
                        self.events.sender.clone(),
                        channel(self.pg_schema.as_deref()),
                        ready,
                    ));
                    let _ = tokio::time::timeout(Duration::from_secs(5), is_ready).await;
                })
                .await;
        }
        receiver
    }
}

/// Sends what is pending after [`COALESCE`]: JSON arrays of events, each under the payload limit, in one
/// transaction with `synchronous_commit` off.
async fn flush(pool: sqlx::PgPool, bus: EventBus, channel: String) {
    tokio::time::sleep(COALESCE).await;
    // Cleared before taking: an event published from here on either is taken now or starts the next flush.
    bus.flushing.store(false, Ordering::Release);
    let events = std::mem::take(&mut *bus.pending.lock().unwrap_or_else(|e| e.into_inner()));
    if events.is_empty() {
        return;
    }
    let sent = async {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT set_config('synchronous_commit', 'off', true)")
            .execute(&mut *tx)
            .await?;
        for batch in batches(events) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&channel)
                .bind(batch)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = sent {
        tracing::debug!(error = %skybook_domain::ErrorChain(&e), "dashboard events not sent");
    }
}

/// `events` (each a JSON object) as JSON arrays, each under [`MAX_PAYLOAD`], in order.
fn batches(events: Vec<String>) -> Vec<String> {
    let mut batches = Vec::new();
    let mut current = String::from("[");
    for event in events {
        if current.len() > 1 && current.len() + event.len() + 2 > MAX_PAYLOAD {
            current.push(']');
            batches.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&event);
    }
    if current.len() > 1 {
        current.push(']');
        batches.push(current);
    }
    batches
}

/// Forwards the channel's notifications to the subscribers, for as long as the process runs; after a dropped
/// connection, reconnects and tells them to resynchronise.
async fn listen(
    pool: sqlx::PgPool,
    sender: broadcast::Sender<String>,
    channel: String,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut reconnecting = false;
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match listener {
            Ok(mut listener) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                if reconnecting {
                    let _ = sender.send(json!({ "type": "resync" }).to_string());
                }
                reconnecting = true;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            // A batch: each event on its own.
                            match serde_json::from_str::<Vec<Value>>(notification.payload()) {
                                Ok(events) => {
                                    for event in events {
                                        let _ = sender.send(event.to_string());
                                    }
                                }
                                Err(_) => {
                                    let _ = sender.send(notification.payload().to_owned());
                                }
                            }
                        }
                        // The connection was lost (sqlx reconnects on the next call, but what was sent meanwhile
                        // is gone): say so.
                        Ok(None) => {
                            let _ = sender.send(json!({ "type": "resync" }).to_string());
                        }
                        Err(e) => {
                            tracing::warn!(error = %skybook_domain::ErrorChain(&e), "dashboard events: listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %skybook_domain::ErrorChain(&e), "dashboard events: cannot listen; retrying");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_event_is_cut_to_what_identifies_it() {
        let small = json!({ "type": "job", "id": "j1", "kind": "import.feed", "state": "done" });
        assert_eq!(payload(&small), small.to_string());
        let large = json!({ "type": "job", "id": "j1", "tenant": "t1", "kind": "import.feed", "error": "x".repeat(10_000) });
        let cut: Value = serde_json::from_str(&payload(&large)).unwrap();
        assert_eq!(
            cut,
            json!({ "type": "job", "id": "j1", "tenant": "t1", "kind": "import.feed", "truncated": true }),
            "its tenant kept: a tenant operator's stream is filtered by it"
        );
        assert_eq!(channel(Some("t_abc")), "skybook_events_t_abc");
    }

    #[test]
    fn a_burst_goes_out_in_order_in_arrays_under_the_limit() {
        let events: Vec<String> = (0..400)
            .map(|i| {
                json!({ "type": "job", "id": format!("job-{i:04}"), "pad": "x".repeat(40) })
                    .to_string()
            })
            .collect();
        let sent = batches(events.clone());
        assert!(sent.len() > 1, "split");
        let mut back = Vec::new();
        for batch in &sent {
            assert!(batch.len() <= MAX_PAYLOAD, "{}", batch.len());
            let parsed: Vec<Value> = serde_json::from_str(batch).unwrap();
            back.extend(parsed.into_iter().map(|v| v.to_string()));
        }
        assert_eq!(back, events);
        assert!(batches(Vec::new()).is_empty());
    }
}
