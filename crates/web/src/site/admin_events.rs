//! `GET /admin/events`: the live dashboard's server-sent-events stream. Each event the database carries
//! (`Store::subscribe_events`: a job on any node started, finished or failed; an import's progress) is sent as
//! an SSE `data:` line of JSON with its `type`. A subscriber that falls behind gets `{"type": "resync"}` (as
//! does every dashboard after the database's listener reconnects): the page then reads the current state
//! again, so nothing shown is stale. A comment line every 15 s keeps proxies from closing an idle stream.
//!
//! Behind an operator's token, like the rest of the admin; a tenant operator's stream ends within ten seconds of
//! its token's revocation. A tenant operator's stream carries its tenant's
//! events only (and the stream's own: open, resync); the platform's (cron, queues, alerts of no tenant) are
//! the platform admin's.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::operator::{require_operator, Operator};
use super::session::Visit;
use crate::throttle::Client;
use crate::{ApiError, AppState};

/// How often a tenant operator's stream checks that its token still stands.
const STILL_VALID_EVERY: Duration = Duration::from_secs(10);

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let receiver = state.store.subscribe_events().await;
    // The first event says the stream is open: from here on nothing is missed.
    let opened = futures::stream::once(async { Ok(Event::default().data(r#"{"type":"open"}"#)) });
    let store = state.store.clone();
    let mut check = tokio::time::interval(STILL_VALID_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures::stream::unfold((receiver, check), move |(mut receiver, mut check)| {
        let (operator, store) = (operator.clone(), store.clone());
        async move {
            loop {
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    _ = check.tick() => {
                        // A revoked token's stream ends here, as its requests do (a failed check is no answer).
                        if let Some(token) = operator.token_id() {
                            if matches!(store.live_operator_token_by_id(token).await, Ok(None)) {
                                return None;
                            }
                        }
                        continue;
                    }
                };
                let data = match received {
                    Ok(data) if !shown_to(&operator, &data) => continue,
                    Ok(data) => data,
                    Err(RecvError::Lagged(_)) => r#"{"type":"resync"}"#.to_owned(),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(Event::default().data(data)), (receiver, check)));
            }
        }
    });
    Ok(Sse::new(futures::StreamExt::chain(opened, stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Whether the event `data` (a JSON object as published) is for `operator`'s eyes.
fn shown_to(operator: &Operator, data: &str) -> bool {
    if operator.is_platform() {
        return true;
    }
    let Ok(event) = serde_json::from_str::<serde_json::Value>(data) else {
        return false;
    };
    match event.get("type").and_then(|t| t.as_str()) {
        Some("resync" | "open") => true,
        _ => {
            let tenant = event
                .get("tenant")
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse().ok());
            tenant.is_some() && operator.sees(tenant)
        }
    }
}
