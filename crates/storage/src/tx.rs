//! A database transaction on either engine. The pipeline's atomic phases are each one `Tx`; its methods live
//! beside the tables they touch (`bookings.rs`, `idempotency.rs`, `outbox.rs`).

use sqlx::{Postgres, Sqlite, Transaction};

use crate::backend::Backend;
use crate::error::Result;

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An open transaction. Dropped without [`Tx::commit`] it rolls back.
pub struct Tx {
    pub(crate) inner: TxInner,
}

impl Tx {
    pub(crate) async fn begin(backend: &Backend) -> Result<Self> {
        let inner = match backend {
            Backend::Sqlite { writer, .. } => TxInner::Sqlite(writer.begin().await?),
            Backend::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Self { inner })
    }

    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
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
