//! Everything the sandbox remembers across restarts, in `<data_dir>/sandbox.db` (SQLite, WAL):
//! access-token hashes (and `revoke_tokens` marks), card tokens, charges and refunds.
//!
//! All access goes through one connection behind an async mutex. SQLite allows one writer at a time;
//! with a single connection, concurrent requests queue on the mutex instead of racing for the write
//! lock, so there are no `SQLITE_BUSY` upgrade deadlocks, and every read-check-write sequence
//! (a charge's idempotency, refund limits) runs while nothing else can interleave with it: in one
//! statement or one transaction, under one hold of the mutex. A sandbox's load is tiny, so the lost
//! read parallelism does not matter. (A one-connection sqlx pool did the same, but pinged the
//! connection through SQLite's worker thread when handing it out and again when it came back: thread
//! round trips the booking benchmark paid on every statement. Unlike the pool, this handle does not
//! replace a connection whose worker thread died; the sandbox then answers 500s until restarted.)
//!
//! What is *not* here matters as much: no card number and no access token ever reaches this file —
//! card tokens keep last4/brand/expiry, access tokens are stored as their SHA-256.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous};
use sqlx::{Connection as _, Row as _, SqliteConnection};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::ids::{new_id, now_seconds};

/// File name of the sandbox database inside the data directory.
pub const DATABASE_FILE: &str = "sandbox.db";

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS access_tokens (
        token_sha256 TEXT PRIMARY KEY,
        client_id    TEXT NOT NULL,
        scope        TEXT,
        issued_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    )",
    // One row per `revoke_tokens` fault: every access token whose rowid is at most
    // `last_token_rowid` is revoked. `access_tokens` rows are never deleted, so rowids only grow.
    "CREATE TABLE IF NOT EXISTS token_revocations (
        id               INTEGER PRIMARY KEY,
        revoked_at_ms    INTEGER NOT NULL,
        last_token_rowid INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS card_tokens (
        id              TEXT PRIMARY KEY,
        last4           TEXT NOT NULL,
        brand           TEXT NOT NULL,
        exp_month       INTEGER NOT NULL,
        exp_year        INTEGER NOT NULL,
        always_declines INTEGER NOT NULL,
        created         INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS charges (
        id              TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        amount          INTEGER NOT NULL,
        currency        TEXT NOT NULL,
        source          TEXT NOT NULL,
        description     TEXT,
        metadata        TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
        amount_refunded INTEGER NOT NULL DEFAULT 0,
        created         INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS refunds (
        id              TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        charge_id       TEXT NOT NULL REFERENCES charges (id),
        amount          INTEGER NOT NULL,
        created         INTEGER NOT NULL
    )",
];

/// Why a payment operation was refused (or failed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("idempotency key reused with different parameters")]
    IdempotencyKeyReused,
    #[error("no such card token")]
    UnknownSource,
    #[error("no such charge")]
    UnknownCharge,
    #[error("a failed charge cannot be refunded")]
    ChargeNotRefundable,
    #[error("the charge is fully refunded")]
    ChargeAlreadyRefunded,
    #[error("refund exceeds the {remaining} left")]
    AmountTooLarge { remaining: i64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A tokenised card: everything the sandbox keeps about it.
#[derive(Debug, Clone)]
pub struct CardToken {
    pub id: String,
    pub last4: String,
    pub brand: &'static str,
    pub exp_month: u32,
    pub exp_year: u32,
    pub always_declines: bool,
    pub created: i64,
}

/// A charge request that passed validation.
#[derive(Debug, Clone)]
pub struct NewCharge<'a> {
    pub idempotency_key: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub source: &'a str,
    pub description: Option<&'a str>,
    /// The metadata object, as JSON text.
    pub metadata: String,
}

/// A stored charge.
#[derive(Debug, Clone)]
pub struct Charge {
    pub id: String,
    pub idempotency_key: String,
    pub amount: i64,
    pub currency: String,
    pub source: String,
    pub description: Option<String>,
    pub metadata: String,
    pub status: String,
    pub amount_refunded: i64,
    pub created: i64,
}

impl Charge {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }

    fn from_row(row: &SqliteRow) -> Self {
        Self {
            id: row.get("id"),
            idempotency_key: row.get("idempotency_key"),
            amount: row.get("amount"),
            currency: row.get("currency"),
            source: row.get("source"),
            description: row.get("description"),
            metadata: row.get("metadata"),
            status: row.get("status"),
            amount_refunded: row.get("amount_refunded"),
            created: row.get("created"),
        }
    }
}

/// A stored refund.
#[derive(Debug, Clone)]
pub struct Refund {
    pub id: String,
    pub charge: String,
    pub amount: i64,
    pub created: i64,
}

/// Whether an idempotent operation did the work now or found it done under the same key.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    Created(T),
    Replayed(T),
}

impl<T> Outcome<T> {
    pub fn into_inner(self) -> T {
        match self {
            Self::Created(value) | Self::Replayed(value) => value,
        }
    }
}

/// Totals over the stored state, for `/sandbox/stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub tokens_issued: i64,
    pub card_tokens: i64,
    pub charges: i64,
    pub declines: i64,
    pub refunds: i64,
    pub token_revocations: i64,
}

/// An access token as loaded at start.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub sha256: String,
    pub rowid: i64,
    pub expires_at_ms: i64,
}

/// The access tokens that are still valid, and the revocation mark they were filtered by.
#[derive(Debug, Clone)]
pub struct LiveTokens {
    pub tokens: Vec<StoredToken>,
    pub revoked_through: i64,
}

const CHARGE_COLUMNS: &str =
    "id, idempotency_key, amount, currency, source, description, metadata, status, \
                              amount_refunded, created";

/// Handle on the sandbox database (cheap to clone: a shared handle on its one connection).
#[derive(Debug, Clone)]
pub struct Store {
    /// `None` once closed.
    conn: Arc<Mutex<Option<SqliteConnection>>>,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/sandbox.db` and creates the schema.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .with_context(|| format!("creating sandbox data dir {}", data_dir.display()))?;
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .with_context(|| format!("opening sandbox database {}", path.display()))?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .context("creating sandbox schema")?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(Some(conn))),
        })
    }

    /// The connection, once the requests before this one are done with it.
    async fn conn(&self) -> Result<MappedMutexGuard<'_, SqliteConnection>, sqlx::Error> {
        MutexGuard::try_map(self.conn.lock().await, Option::as_mut)
            .map_err(|_| sqlx::Error::PoolClosed)
    }

    /// Closes the connection (checkpointing the WAL), e.g. before the same data dir is opened
    /// again.
    pub async fn close(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            if let Err(error) = conn.close().await {
                tracing::warn!(%error, "closing the sandbox database");
            }
        }
    }

    pub async fn insert_access_token(
        &self,
        token_sha256: &str,
        client_id: &str,
        scope: Option<&str>,
        issued_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<i64, sqlx::Error> {
        let result = sqlx::query(
            "INSERT INTO access_tokens \
             (token_sha256, client_id, scope, issued_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_sha256)
        .bind(client_id)
        .bind(scope)
        .bind(issued_at_ms)
        .bind(expires_at_ms)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.last_insert_rowid())
    }

    /// Every access token still valid at `now_ms` and not revoked, plus the revocation mark (the
    /// highest revoked token rowid, 0 if none was).
    pub async fn live_access_tokens(&self, now_ms: i64) -> Result<LiveTokens, sqlx::Error> {
        let revoked_through: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(last_token_rowid), 0) FROM token_revocations")
                .fetch_one(&mut *self.conn().await?)
                .await?;
        let rows = sqlx::query(
            "SELECT rowid, token_sha256, expires_at_ms FROM access_tokens \
             WHERE expires_at_ms > ? AND rowid > ?",
        )
        .bind(now_ms)
        .bind(revoked_through)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let tokens = rows
            .iter()
            .map(|row| StoredToken {
                sha256: row.get("token_sha256"),
                rowid: row.get("rowid"),
                expires_at_ms: row.get("expires_at_ms"),
            })
            .collect();
        Ok(LiveTokens {
            tokens,
            revoked_through,
        })
    }

    /// Revokes every access token issued so far, answering the highest revoked rowid (tokens with
    /// a larger one, issued later, stay valid).
    pub async fn revoke_access_tokens(&self, now_ms: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO token_revocations (revoked_at_ms, last_token_rowid) \
             SELECT ?, COALESCE(MAX(rowid), 0) FROM access_tokens RETURNING last_token_rowid",
        )
        .bind(now_ms)
        .fetch_one(&mut *self.conn().await?)
        .await
    }

    pub async fn insert_card_token(&self, card: &CardToken) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO card_tokens \
             (id, last4, brand, exp_month, exp_year, always_declines, created) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&card.id)
        .bind(&card.last4)
        .bind(card.brand)
        .bind(card.exp_month)
        .bind(card.exp_year)
        .bind(card.always_declines)
        .bind(card.created)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Creates the charge for `new.idempotency_key`, or returns the one already made under that
    /// key.
    ///
    /// The common case is one statement: `INSERT ... SELECT` from the card token (its decline flag
    /// decides the status) `ON CONFLICT(idempotency_key) DO NOTHING RETURNING` the row. Nothing
    /// returned means the key is taken or the card unknown; the row holding the key tells which.
    /// However many identical requests race, exactly one row exists and every one of them gets it.
    pub async fn create_charge(
        &self,
        new: &NewCharge<'_>,
        decline_all: bool,
    ) -> Result<Outcome<Charge>, StoreError> {
        let sql = format!(
            "INSERT INTO charges (id, idempotency_key, amount, currency, source, description, \
             metadata, status, amount_refunded, created) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, \
                    CASE WHEN always_declines OR ?8 THEN 'failed' ELSE 'succeeded' END, 0, ?9 \
             FROM card_tokens WHERE id = ?5 \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING {CHARGE_COLUMNS}"
        );
        let mut conn = self.conn().await?;
        let inserted = sqlx::query(&sql)
            .bind(new_id("ch_"))
            .bind(new.idempotency_key)
            .bind(new.amount)
            .bind(new.currency)
            .bind(new.source)
            .bind(new.description)
            .bind(&new.metadata)
            .bind(decline_all)
            .bind(now_seconds())
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = inserted {
            return Ok(Outcome::Created(Charge::from_row(&row)));
        }
        match charge_where(&mut conn, "idempotency_key", new.idempotency_key).await? {
            Some(existing)
                if existing.amount == new.amount
                    && existing.currency == new.currency
                    && existing.source == new.source =>
            {
                Ok(Outcome::Replayed(existing))
            }
            Some(_) => Err(StoreError::IdempotencyKeyReused),
            None => Err(StoreError::UnknownSource),
        }
    }

    pub async fn charge_by_id(&self, id: &str) -> Result<Option<Charge>, sqlx::Error> {
        let mut conn = self.conn().await?;
        charge_where(&mut conn, "id", id).await
    }

    pub async fn charge_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<Charge>, sqlx::Error> {
        let mut conn = self.conn().await?;
        charge_where(&mut conn, "idempotency_key", key).await
    }

    /// Charges newest first, optionally only those with `status`, at most `limit` of them.
    pub async fn list_charges(
        &self,
        status: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<Charge>, sqlx::Error> {
        let sql = format!(
            "SELECT {CHARGE_COLUMNS} FROM charges WHERE (?1 IS NULL OR status = ?1) \
             ORDER BY rowid DESC LIMIT ?2"
        );
        let rows = sqlx::query(&sql)
            .bind(status)
            .bind(limit.unwrap_or(-1))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows.iter().map(Charge::from_row).collect())
    }

    /// Refunds `amount` (default: what is left) of `charge_id` under `idempotency_key`, or returns
    /// the refund already made under that key, in one transaction (the key, the charge's remaining
    /// amount and the insert are read and written together).
    pub async fn create_refund(
        &self,
        idempotency_key: &str,
        charge_id: &str,
        amount: Option<i64>,
    ) -> Result<Outcome<Refund>, StoreError> {
        let same_request =
            |r: &Refund| r.charge == charge_id && amount.is_none_or(|a| a == r.amount);
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        if let Some(existing) = refund_by_key(&mut tx, idempotency_key).await? {
            tx.commit().await?;
            return if same_request(&existing) {
                Ok(Outcome::Replayed(existing))
            } else {
                Err(StoreError::IdempotencyKeyReused)
            };
        }
        let charge = charge_where(&mut tx, "id", charge_id)
            .await?
            .ok_or(StoreError::UnknownCharge)?;
        if !charge.succeeded() {
            return Err(StoreError::ChargeNotRefundable);
        }
        let remaining = charge.amount - charge.amount_refunded;
        if remaining <= 0 {
            return Err(StoreError::ChargeAlreadyRefunded);
        }
        let amount = amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(StoreError::AmountTooLarge { remaining });
        }
        let inserted = sqlx::query(
            "INSERT INTO refunds (id, idempotency_key, charge_id, amount, created) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(new_id("re_"))
        .bind(idempotency_key)
        .bind(charge_id)
        .bind(amount)
        .bind(now_seconds())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            sqlx::query("UPDATE charges SET amount_refunded = amount_refunded + ? WHERE id = ?")
                .bind(amount)
                .bind(charge_id)
                .execute(&mut *tx)
                .await?;
        }
        let refund = refund_by_key(&mut tx, idempotency_key)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        match (inserted, same_request(&refund)) {
            (true, _) => Ok(Outcome::Created(refund)),
            (false, true) => Ok(Outcome::Replayed(refund)),
            (false, false) => Err(StoreError::IdempotencyKeyReused),
        }
    }

    pub async fn totals(&self) -> Result<Totals, sqlx::Error> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM access_tokens) AS tokens_issued, \
                    (SELECT COUNT(*) FROM card_tokens) AS card_tokens, \
                    (SELECT COUNT(*) FROM charges WHERE status = 'succeeded') AS charges, \
                    (SELECT COUNT(*) FROM charges WHERE status = 'failed') AS declines, \
                    (SELECT COUNT(*) FROM refunds) AS refunds, \
                    (SELECT COUNT(*) FROM token_revocations) AS token_revocations",
        )
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(Totals {
            tokens_issued: row.get("tokens_issued"),
            card_tokens: row.get("card_tokens"),
            charges: row.get("charges"),
            declines: row.get("declines"),
            refunds: row.get("refunds"),
            token_revocations: row.get("token_revocations"),
        })
    }
}

/// The charge whose `column` (`id` or `idempotency_key`, never client input) equals `value`.
async fn charge_where(
    conn: &mut SqliteConnection,
    column: &'static str,
    value: &str,
) -> Result<Option<Charge>, sqlx::Error> {
    let sql = format!("SELECT {CHARGE_COLUMNS} FROM charges WHERE {column} = ?");
    let row = sqlx::query(&sql).bind(value).fetch_optional(conn).await?;
    Ok(row.as_ref().map(Charge::from_row))
}

async fn refund_by_key(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Option<Refund>, sqlx::Error> {
    let row =
        sqlx::query("SELECT id, charge_id, amount, created FROM refunds WHERE idempotency_key = ?")
            .bind(key)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|row| Refund {
        id: row.get("id"),
        charge: row.get("charge_id"),
        amount: row.get("amount"),
        created: row.get("created"),
    }))
}
