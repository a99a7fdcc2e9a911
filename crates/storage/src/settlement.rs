//! A settlement written at once: the booking's status change, the email it announces and the request's final
//! response, all or nothing, and only if the change applies.
//!
//! This is Tx 2's common case (a charge succeeded for a booking still waiting for it). On PostgreSQL it is one
//! statement — data-modifying CTEs, atomic on their own — so it costs one round trip instead of five (`BEGIN`,
//! three statements, `COMMIT`), which is most of what a booking spends talking to the database after its
//! charge. SQLite has no data-modifying CTEs, and no round trips to save: there it is the same three statements
//! in one transaction.

use chrono::{DateTime, Utc};
use skybook_domain::{BookingId, IdempotencyKey, OutboxId, TenantId};

use crate::backend::Backend;
use crate::bookings::{status_change_sql, BookingRecord, BookingRow, StatusChange};
use crate::error::Result;
use crate::outbox::NewOutboxEmail;
use crate::store::Store;

/// What a settlement writes. See [`Store::settle`].
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    pub tenant: TenantId,
    pub booking: BookingId,
    pub change: StatusChange<'a>,
    /// Queued in the outbox if the change applies.
    pub email: Option<&'a NewOutboxEmail>,
    /// Stored as the key's final response (lease released) if the change applies.
    pub response: Option<FinalResponse<'a>>,
    pub now: DateTime<Utc>,
}

/// A request's final response, stored under its idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct FinalResponse<'a> {
    pub key: &'a IdempotencyKey,
    pub status: u16,
    pub body: &'a str,
}

impl Store {
    /// Writes `settlement` if its status change applies, and returns the booking as changed. `None`: the booking
    /// was no longer in one of the change's `from` statuses (another actor settled it first) and nothing was
    /// written.
    pub async fn settle(&self, s: &Settlement<'_>) -> Result<Option<BookingRecord>> {
        debug_assert!(
            s.email
                .is_none_or(|e| e.tenant_id == s.tenant && e.booking_id == s.booking),
            "the email belongs to the settled booking"
        );
        let Backend::Postgres(pool) = &self.backend else {
            return self.settle_in_transaction(s).await;
        };
        let (changed, from) = status_change_sql(&s.change);
        let sql = settle_statement(
            &changed,
            from.len(),
            s.email.is_some(),
            s.response.is_some(),
        );
        let change = &s.change;
        let mut q = sqlx::query_as::<_, BookingRow>(&sql)
            .bind(s.tenant)
            .bind(s.booking)
            .bind(change.to)
            .bind(change.charge_id)
            .bind(change.failure_reason.map(|r| r.as_str()))
            .bind(s.now)
            .bind(change.untouched_before);
        for status in &from {
            q = q.bind(*status);
        }
        if let Some(email) = s.email {
            q = q
                .bind(OutboxId::new())
                .bind(email.kind)
                .bind(&email.recipient)
                .bind(&email.message_id)
                .bind(s.now);
        }
        if let Some(r) = &s.response {
            q = q
                .bind(i32::from(r.status))
                .bind(r.body)
                .bind(s.now)
                .bind(r.key);
        }
        let changed = q
            .fetch_optional(pool)
            .await?
            .map(BookingRecord::try_from)
            .transpose()?;
        if changed.is_some() && s.email.is_some() {
            self.outbox_announcer.announce();
        }
        Ok(changed)
    }

    /// [`Store::settle`] as separate statements in one transaction (SQLite).
    async fn settle_in_transaction(&self, s: &Settlement<'_>) -> Result<Option<BookingRecord>> {
        let mut tx = self.begin().await?;
        let Some(changed) = tx
            .change_status(s.tenant, s.booking, &s.change, s.now)
            .await?
        else {
            return Ok(None); // dropped: rolled back, though nothing was written
        };
        if let Some(email) = s.email {
            tx.insert_outbox_email(email, s.now).await?;
        }
        if let Some(r) = &s.response {
            tx.finish_idempotency_key(s.tenant, r.key, r.status, r.body, s.now)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(changed))
    }
}

/// [`Store::settle`]'s one statement on PostgreSQL: `changed` (the status change, parameters `$1`–`$7` and
/// `from_count` statuses after them) and, when asked for, the outbox email (five parameters) and the key's final
/// response (four), numbered on from there.
pub(crate) fn settle_statement(
    changed: &str,
    from_count: usize,
    with_email: bool,
    with_response: bool,
) -> String {
    let mut n = 7 + from_count;
    let mut next = || {
        n += 1;
        n
    };
    let mut sql = format!("WITH changed AS ({changed})");
    if with_email {
        let p: Vec<usize> = (0..5).map(|_| next()).collect();
        sql += &format!(
            ", queued AS (INSERT INTO outbox_emails (id, tenant_id, booking_id, kind, recipient, message_id, created_at) \
             SELECT ${}, tenant_id, id, ${}, ${}, ${}, ${} FROM changed ON CONFLICT DO NOTHING)",
            p[0], p[1], p[2], p[3], p[4]
        );
    }
    if with_response {
        let p: Vec<usize> = (0..4).map(|_| next()).collect();
        sql += &format!(
            ", answered AS (UPDATE idempotency_keys SET response_status = ${}, response_body = ${}, \
             locked_until = NULL, updated_at = ${} \
             WHERE tenant_id = $1 AND key = ${} AND EXISTS (SELECT 1 FROM changed))",
            p[0], p[1], p[2], p[3]
        );
    }
    sql + " SELECT * FROM changed"
}
