//! `GET /admin/events`: the live dashboard's server-sent-events stream. Each event the database carries
//! (`Store::subscribe_events`: a job on any node started, finished or failed; an import's progress) is sent as
//! an SSE `data:` line of JSON with its `type`. A subscriber that falls behind gets `{"type": "resync"}` (as
//! does every dashboard after the database's listener reconnects): the page then reads the current state
//! again, so nothing shown is stale. A comment line every 15 s keeps proxies from closing an idle stream.
//!
//! Behind the admin token, like the rest of the admin.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::admin::require_admin;
use super::session::Visit;
use crate::throttle::Client;
use crate::{ApiError, AppState};

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    require_admin(&state, &headers, client, &visit).await?;
    let receiver = state.store.subscribe_events().await;
    // The first event says the stream is open: from here on nothing is missed.
    let opened = futures::stream::once(async { Ok(Event::default().data(r#"{"type":"open"}"#)) });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let data = match receiver.recv().await {
            Ok(data) => data,
            Err(RecvError::Lagged(_)) => r#"{"type":"resync"}"#.to_owned(),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(Event::default().data(data)), receiver))
    });
    Ok(Sse::new(futures::StreamExt::chain(opened, stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
