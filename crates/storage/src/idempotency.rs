//! Idempotency keys, scoped per tenant: the record of one client request, its lease while a request works on
//! it, and its final response once finished.

use chrono::{DateTime, Utc};
use skybook_domain::{BookingId, IdempotencyKey, RequestFingerprint, TenantId};

use crate::backend::{on_pool, on_tx};
use crate::error::Result;
use crate::store::Store;
use crate::tx::Tx;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRecord {
    pub tenant_id: TenantId,
    pub key: IdempotencyKey,
    pub request_fingerprint: RequestFingerprint,
    pub booking_id: Option<BookingId>,
    /// While in the future, a request holds the key; `None` or past means it is free to resume.
    pub locked_until: Option<DateTime<Utc>>,
    /// The token of the pipeline run that took the lease: a retried phase recognises its own lease by it.
    pub lease_holder: Option<uuid::Uuid>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
}

impl IdempotencyRecord {
    /// The stored final response, if the request finished.
    pub fn response(&self) -> Option<(u16, &str)> {
        let status = u16::try_from(self.response_status?).ok()?;
        Some((status, self.response_body.as_deref()?))
    }

    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }
}

const KEY_COLUMNS: &str =
    "tenant_id, key, request_fingerprint, booking_id, locked_until, lease_holder, \
     response_status, response_body";

impl Store {
    /// A read outside any transaction (the website checks a form's key with it; the pipeline's claim decides under
    /// the row lock instead, see `Tx::lock_idempotency_key`).
    pub async fn idempotency_key(
        &self,
        tenant: TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE tenant_id = $1 AND key = $2");
        Ok(
            on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(key).fetch_optional(c).await)?,
        )
    }
}

impl Tx {
    /// Records a new key whose lease `holder` holds until `locked_until`. Returns `false` if the key exists (then
    /// read it with [`Tx::lock_idempotency_key`]). On PostgreSQL a concurrent insert of the same key waits here
    /// until the first transaction ends.
    pub async fn insert_idempotency_key(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
        fingerprint: &RequestFingerprint,
        (locked_until, holder): (DateTime<Utc>, uuid::Uuid),
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = INSERT_IDEMPOTENCY_KEY;
        let n = on_tx!(self, c => sqlx::query(sql)
            .bind(tenant).bind(key).bind(fingerprint).bind(locked_until).bind(now).bind(holder).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Reads the key, locking its row for the rest of the transaction.
    pub async fn lock_idempotency_key(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE tenant_id = $1 AND key = $2{}",
            self.for_update()
        );
        Ok(on_tx!(self, c => sqlx::query_as(&sql).bind(tenant).bind(key).fetch_optional(c).await)?)
    }

    /// Gives the key's lease to `lease` (until, holder), or frees it with `None`.
    pub async fn lease_idempotency_key(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
        lease: Option<(DateTime<Utc>, uuid::Uuid)>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "UPDATE idempotency_keys SET locked_until = $3, lease_holder = $4, updated_at = $5 WHERE tenant_id = $1 AND key = $2";
        let (until, holder) = (lease.map(|l| l.0), lease.map(|l| l.1));
        on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(key).bind(until).bind(holder).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn attach_booking_to_key(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
        booking: BookingId,
    ) -> Result<()> {
        let sql = "UPDATE idempotency_keys SET booking_id = $3 WHERE tenant_id = $1 AND key = $2";
        on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(key).bind(booking).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores the final response and releases the lease: from now on the key only replays.
    pub async fn finish_idempotency_key(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
        status: u16,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "UPDATE idempotency_keys SET response_status = $3, response_body = $4, locked_until = NULL, updated_at = $5
                   WHERE tenant_id = $1 AND key = $2";
        on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(key).bind(i32::from(status)).bind(body).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Forgets the key, if it still belongs to `booking` (a request that started over under the same key since
    /// keeps its claim).
    pub async fn delete_idempotency_key(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
        booking: BookingId,
    ) -> Result<()> {
        let sql =
            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND booking_id = $3";
        on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(key).bind(booking).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// Claims a key: tenant, key, request fingerprint, lease end, now, lease holder. Inserts nothing if the key exists.
pub(crate) const INSERT_IDEMPOTENCY_KEY: &str = "INSERT INTO idempotency_keys (tenant_id, key, request_fingerprint, locked_until, created_at, updated_at, lease_holder)
    VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (tenant_id, key) DO NOTHING";
