//! A database transaction on either engine. The pipeline's atomic phases are each one `Tx`; its methods live
//! beside the tables they touch (`bookings.rs`, `idempotency.rs`, `outbox.rs`).

use sqlx::{Postgres, Sqlite, Transaction};

use crate::backend::Backend;
use crate::error::Result;
use crate::wakeups::OutboxAnnouncer;

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An open transaction. Dropped without [`Tx::commit`] it rolls back.
pub struct Tx {
    pub(crate) inner: TxInner,
    /// Told after the commit when this transaction queued an email (PostgreSQL: listeners on other nodes).
    announcer: Option<OutboxAnnouncer>,
    pub(crate) queued_email: bool,
}

impl Tx {
    pub(crate) async fn begin(backend: &Backend, announcer: &OutboxAnnouncer) -> Result<Self> {
        let (inner, announcer) = match backend {
            Backend::Sqlite { writer, .. } => (TxInner::Sqlite(writer.begin().await?), None),
            Backend::Postgres(pool) => (
                TxInner::Postgres(pool.begin().await?),
                Some(announcer.clone()),
            ),
        };
        Ok(Self {
            inner,
            announcer,
            queued_email: false,
        })
    }

    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        if let (true, Some(announcer)) = (self.queued_email, &self.announcer) {
            announcer.announce();
        }
        Ok(())
    }

    /// `FOR UPDATE` where the engine has it. SQLite needs none: its single writer already serialises
    /// every transaction that writes.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.inner {
            TxInner::Sqlite(_) => "",
            TxInner::Postgres(_) => " FOR UPDATE",
        }
    }
}
