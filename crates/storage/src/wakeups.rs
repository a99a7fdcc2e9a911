//! Wake-ups for the background workers: PostgreSQL's `LISTEN/NOTIFY` on the channels the migrations' triggers
//! notify when a job or an outbox email is inserted. SQLite has none; its callers poll.

use sqlx::postgres::PgListener;

use crate::backend::Backend;
use crate::error::Result;
use crate::store::Store;

/// Notified (payload: the job's queue) when a job is enqueued.
pub const JOBS_CHANNEL: &str = "skybook_jobs";
/// Notified when an email is queued in the outbox.
pub const OUTBOX_CHANNEL: &str = "skybook_outbox";

/// A dedicated connection listening on some channels.
pub struct Listener(PgListener);

impl Listener {
    /// The next notification's channel. Reconnects by itself after a lost connection (notifications sent
    /// meanwhile are lost, which is why workers also poll).
    pub async fn recv(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.channel().to_owned())
    }
}

impl Store {
    /// Listens on `channels`; `None` on SQLite.
    pub async fn listen(&self, channels: &[&str]) -> Result<Option<Listener>> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(Some(Listener(listener)))
    }
}
