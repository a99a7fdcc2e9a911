//! The email outbox: emails are written in the same transaction as the state they announce, and a worker
//! sends them afterwards, so a confirmation is never lost and never sent for something that did not happen.

use chrono::{DateTime, Utc};
use skybook_domain::{BookingId, Email, OutboxId, TenantId};

use crate::backend::{on_pool, on_tx};
use crate::error::Result;
use crate::store::Store;
use crate::tx::Tx;

#[derive(Debug, Clone)]
pub struct NewOutboxEmail {
    pub tenant_id: TenantId,
    pub booking_id: BookingId,
    pub kind: &'static str,
    pub recipient: Email,
    /// Deterministic per booking and kind, so a re-send is recognisably the same message.
    pub message_id: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEmail {
    pub id: OutboxId,
    pub tenant_id: TenantId,
    pub booking_id: BookingId,
    pub kind: String,
    pub recipient: Email,
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
}

impl Tx {
    /// Queues the email; a second insert for the same booking and kind is ignored.
    pub async fn insert_outbox_email(
        &mut self,
        email: &NewOutboxEmail,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO outbox_emails (id, tenant_id, booking_id, kind, recipient, message_id, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
        on_tx!(self, c => sqlx::query(sql)
            .bind(OutboxId::new()).bind(email.tenant_id).bind(email.booking_id).bind(email.kind)
            .bind(&email.recipient).bind(&email.message_id).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    pub async fn outbox_for_booking(
        &self,
        tenant: TenantId,
        booking: BookingId,
    ) -> Result<Vec<OutboxEmail>> {
        let sql = "SELECT id, tenant_id, booking_id, kind, recipient, message_id, created_at, sent_at, attempts
                   FROM outbox_emails WHERE tenant_id = $1 AND booking_id = $2 ORDER BY created_at";
        Ok(
            on_pool!(&self.backend, c => sqlx::query_as(sql).bind(tenant).bind(booking).fetch_all(c).await)?,
        )
    }
}
