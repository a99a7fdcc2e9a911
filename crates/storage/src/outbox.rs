//! The email outbox: emails are written in the same transaction as the state they announce, and a worker
//! sends them afterwards, so a confirmation is never lost and never sent for something that did not happen.

use chrono::{DateTime, Utc};
use skybook_domain::{BookingId, Email, OutboxId, TenantId};

use crate::backend::{on_pool, on_tx, on_writer};
use crate::bookings::BookingRecord;
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

impl NewOutboxEmail {
    /// The booking's confirmation: to its contact, with the Message-ID every re-send of it shares.
    pub fn confirmation(booking: &BookingRecord) -> Self {
        Self {
            tenant_id: booking.tenant_id,
            booking_id: booking.id,
            kind: skybook_domain::CONFIRMATION_EMAIL_KIND,
            recipient: booking.contact_email.clone(),
            message_id: skybook_domain::confirmation_message_id(booking.id),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEmail {
    pub id: OutboxId,
    pub tenant_id: TenantId,
    pub booking_id: BookingId,
    pub kind: String,
    /// Text, not an [`Email`]: a row queued under looser rules than today's must still be readable, so the
    /// sender can fail it for good, instead of one undecodable row failing every claim (and every email behind
    /// it). The sender parses it before sending.
    pub recipient: String,
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    /// Set when the email can never be delivered (see [`Store::mark_outbox_failed`]); with `failure`, why.
    pub failed_at: Option<DateTime<Utc>>,
    pub failure: Option<String>,
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
        self.queued_email = true;
        Ok(())
    }
}

impl Store {
    pub async fn outbox_for_booking(
        &self,
        tenant: TenantId,
        booking: BookingId,
    ) -> Result<Vec<OutboxEmail>> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox_emails WHERE tenant_id = $1 AND booking_id = $2 ORDER BY created_at"
        );
        Ok(
            on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(booking).fetch_all(c).await)?,
        )
    }
}

const OUTBOX_COLUMNS: &str =
    "id, tenant_id, booking_id, kind, recipient, message_id, created_at, sent_at, attempts, failed_at, failure";

/// The outbox sender's statements. They span every tenant on purpose: the sender is the operator's, and each
/// row carries its tenant id, which scopes everything read for it afterwards.
impl Store {
    /// Leases up to `limit` due emails, neither sent nor failed, to `worker` until `now + lease`, oldest first,
    /// and counts the attempt. A lease that lapsed (its sender died mid-send) makes the row claimable again: the
    /// email may then go out twice, with the same Message-ID, which receivers use to drop the copy.
    pub async fn claim_outbox_emails(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEmail>> {
        let skip_locked = self.skip_locked();
        let sql = format!(
            "UPDATE outbox_emails SET locked_by = $1, locked_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox_emails WHERE sent_at IS NULL AND failed_at IS NULL \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
                 AND (locked_until IS NULL OR locked_until < $3) \
                 ORDER BY created_at LIMIT $4{skip_locked}) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        Ok(on_writer!(&self.backend, c => sqlx::query_as(&sql)
            .bind(worker).bind(now + lease).bind(now).bind(limit)
            .fetch_all(c).await)?)
    }

    /// Records that the SMTP server accepted the email. `false`: this worker no longer held it.
    pub async fn mark_outbox_sent(
        &self,
        id: OutboxId,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "UPDATE outbox_emails SET sent_at = $1, locked_by = NULL, locked_until = NULL, last_error = NULL \
                   WHERE id = $2 AND locked_by = $3 AND sent_at IS NULL AND failed_at IS NULL";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(now).bind(id).bind(worker)
            .execute(c).await.map(|r| r.rows_affected()))?
                == 1,
        )
    }

    /// Records a failed attempt; the email is tried again from `retry_at`.
    pub async fn outbox_attempt_failed(
        &self,
        id: OutboxId,
        worker: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool> {
        let sql =
            "UPDATE outbox_emails SET next_attempt_at = $1, last_error = $2, locked_by = NULL, \
                   locked_until = NULL WHERE id = $3 AND locked_by = $4 AND sent_at IS NULL AND failed_at IS NULL";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(retry_at).bind(error).bind(id).bind(worker)
            .execute(c).await.map(|r| r.rows_affected()))?
                == 1,
        )
    }

    /// Records that the email can never be delivered (the server refused it for good, or it cannot be built):
    /// it is never claimed or listed as unsent again. `false`: this worker no longer held it.
    pub async fn mark_outbox_failed(
        &self,
        id: OutboxId,
        worker: &str,
        failure: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "UPDATE outbox_emails SET failed_at = $1, failure = $2, locked_by = NULL, \
                   locked_until = NULL WHERE id = $3 AND locked_by = $4 AND sent_at IS NULL AND failed_at IS NULL";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(now).bind(failure).bind(id).bind(worker)
            .execute(c).await.map(|r| r.rows_affected()))?
                == 1,
        )
    }

    /// Emails created before `before` and still not handed to the SMTP server (for the sentinel). Failed ones
    /// are not listed: the sender alerted on each when it failed it.
    pub async fn unsent_outbox_emails(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<UnsentEmail>> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS}, last_error FROM outbox_emails \
             WHERE sent_at IS NULL AND failed_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2"
        );
        Ok(
            on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(before).bind(limit).fetch_all(c).await)?,
        )
    }
}

/// An email the sentinel found stuck in the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnsentEmail {
    #[sqlx(flatten)]
    pub email: OutboxEmail,
    pub last_error: Option<String>,
}
