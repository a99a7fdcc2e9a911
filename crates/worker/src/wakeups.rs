//! Wake-ups: PostgreSQL tells this process when there is new work (`LISTEN/NOTIFY`: a trigger when a job is
//! inserted, the store after a transaction that queued an email commits), so a worker starts on it at once instead of at its next poll. On SQLite
//! there is nothing to listen to and workers poll; polling stays the fallback on PostgreSQL too.

use std::sync::Arc;

use skybook_storage::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Channel → the workers to wake.
#[derive(Default)]
pub struct Wakeups {
    routes: Vec<(&'static str, Arc<Notify>)>,
}

impl Wakeups {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes `worker` on every notification on `channel`.
    pub fn on(mut self, channel: &'static str, worker: Arc<Notify>) -> Self {
        self.routes.push((channel, worker));
        self
    }

    /// Listens until `cancel` fires (returns at once on SQLite). An error (the listening connection failed for
    /// good) ends the loop; the supervisor restarts it, and workers poll meanwhile.
    pub async fn run(&self, store: &Store, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut channels: Vec<&str> = self.routes.iter().map(|(c, _)| *c).collect();
        channels.sort_unstable();
        channels.dedup();
        let Some(mut listener) = store.listen(&channels).await? else {
            return Ok(());
        };
        tracing::debug!(?channels, "listening for wake-ups");
        loop {
            tokio::select! {
                channel = listener.recv() => {
                    let channel = channel?;
                    for (_, worker) in self.routes.iter().filter(|(c, _)| *c == channel) {
                        worker.notify_one();
                    }
                }
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }
}
