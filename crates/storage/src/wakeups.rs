//! Wake-ups for the background workers: PostgreSQL's `LISTEN/NOTIFY`. A job's insert notifies through a
//! trigger (migration `…06_wakeups`); an outbox email is announced by [`OutboxAnnouncer`] after its transaction
//! commits. SQLite has none; its callers poll.
//!
//! Why the outbox is not a trigger (migration `…07_outbox_announced_after_commit` dropped it): a transaction
//! that sends `NOTIFY` takes a database-wide lock at commit and holds it through its WAL flush, so every
//! booking's settle transaction (which queues the email) committed one at a time, without group commit. It
//! halved the commit rate under concurrent bookings. Jobs are enqueued rarely and on their own, so their
//! trigger costs nothing comparable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::backend::Backend;
use crate::error::Result;
use crate::store::Store;

/// Notified (payload: the job's queue) when a job is enqueued.
pub const JOBS_CHANNEL: &str = "skybook_jobs";
/// Notified when an email is queued in the outbox.
pub const OUTBOX_CHANNEL: &str = "skybook_outbox";

/// Announces queued emails on [`OUTBOX_CHANNEL`] after their transactions commit, outside them: one small
/// transaction with `synchronous_commit` off (a notification needs no durability: a lost one costs only the
/// listeners' next poll), so the booking's own commit never waits for the notification lock. Coalesced:
/// commits that land while an announcement is pending (it waits [`ANNOUNCE_BATCH`] for them) ride on it,
/// so a busy node sends far fewer than one per booking and none is lost — the pending announcement is sent after all of them committed.
#[derive(Clone, Debug)]
pub(crate) struct OutboxAnnouncer {
    pool: Option<PgPool>,
    pending: Arc<AtomicBool>,
}

impl OutboxAnnouncer {
    pub(crate) fn new(backend: &Backend) -> Self {
        Self {
            pool: match backend {
                Backend::Postgres(pool) => Some(pool.clone()),
                Backend::Sqlite { .. } => None,
            },
            pending: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Called after a commit that queued an email. Best-effort and in the background.
    pub(crate) fn announce(&self) {
        let Some(pool) = self.pool.clone() else {
            return;
        };
        if self.pending.swap(true, Ordering::AcqRel) {
            return; // a pending announcement will be sent after this commit
        }
        let pending = Arc::clone(&self.pending);
        tokio::spawn(async move {
            // Commits in the next few milliseconds share this announcement: on a busy node that is most of
            // them, for an email the sender picks up a few milliseconds later.
            tokio::time::sleep(ANNOUNCE_BATCH).await;
            // The connection first, so a busy pool holds back one announcement, not one per batch.
            let mut connection = match pool.acquire().await {
                Ok(connection) => connection,
                Err(e) => {
                    pending.store(false, Ordering::Release);
                    tracing::debug!(error = %skybook_domain::ErrorChain(&e), "outbox announcement not sent (listeners will poll)");
                    return;
                }
            };
            // Cleared before sending: a commit from here on either sees it clear and announces itself, or
            // sees it set by such a commit; either way a notification follows it.
            pending.store(false, Ordering::Release);
            let sent = sqlx::query(
                "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')",
            )
            .bind(OUTBOX_CHANNEL)
            .execute(&mut *connection)
            .await;
            if let Err(e) = sent {
                tracing::debug!(error = %skybook_domain::ErrorChain(&e), "outbox announcement not sent (listeners will poll)");
            }
        });
    }
}

/// How long an announcement waits for more commits to share it.
const ANNOUNCE_BATCH: std::time::Duration = std::time::Duration::from_millis(20);

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
