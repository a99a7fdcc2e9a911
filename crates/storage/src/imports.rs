//! Import runs and their rejected rows: the record of every partner-data import, kept whether it succeeded or
//! not, so an operator can see what came in and send back what did not.

use chrono::{DateTime, NaiveDate, Utc};
use skybook_domain::{ImportRunId, TenantId};

use crate::backend::{on_pool, on_writer};
use crate::error::Result;
use crate::store::Store;

/// A run as it starts.
#[derive(Debug, Clone)]
pub struct NewImportRun {
    pub id: ImportRunId,
    pub tenant_id: TenantId,
    pub feed: String,
    pub source: String,
    pub feed_date: Option<NaiveDate>,
    pub dry_run: bool,
}

/// What a run read and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub rejected: u64,
    pub bytes: u64,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    /// `succeeded`, `failed` or `skipped`.
    pub status: &'static str,
    pub counts: ImportCounts,
    pub content_sha256: Option<String>,
    pub error: Option<String>,
    /// The file's header row as it was.
    pub header: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRun {
    pub id: ImportRunId,
    pub tenant_id: TenantId,
    pub feed: String,
    pub source: String,
    pub feed_date: Option<NaiveDate>,
    pub content_sha256: Option<String>,
    pub status: String,
    pub dry_run: bool,
    pub rows_read: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_deleted: i64,
    pub rows_rejected: i64,
    /// Bytes of the CSV read: so far while running, all of them at the end.
    pub bytes: i64,
    /// The CSV's size, once the run has reported progress.
    pub bytes_total: Option<i64>,
    pub error: Option<String>,
    pub header: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const RUN_COLUMNS: &str = "id, tenant_id, feed, source, feed_date, content_sha256, status, dry_run, rows_read, \
    rows_inserted, rows_updated, rows_deleted, rows_rejected, bytes, bytes_total, error, header, created_at, started_at, finished_at";

/// A row the importer did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ImportReject {
    /// The physical line of the file where the row starts (1 is the header).
    pub line: i64,
    pub column_name: Option<String>,
    /// The offending value, truncated.
    pub value: Option<String>,
    pub reason: String,
    /// The row as it was in the file.
    pub raw: String,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct ImportRunFilter {
    pub tenant_id: Option<TenantId>,
    pub feed: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Records a run as `running`.
    pub async fn start_import_run(&self, run: &NewImportRun, now: DateTime<Utc>) -> Result<()> {
        let sql = "INSERT INTO import_runs (id, tenant_id, feed, source, feed_date, status, dry_run, created_at, started_at) \
                   VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $7)";
        on_writer!(&self.backend, c => sqlx::query(sql)
            .bind(run.id).bind(run.tenant_id).bind(&run.feed).bind(&run.source).bind(run.feed_date)
            .bind(run.dry_run).bind(now).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// How far a running run has read (for the admin's progress and ETA): rows, bytes, and the CSV's size.
    /// PostgreSQL only: on SQLite the run's load holds the one writer connection until it ends, so progress
    /// waits for the end.
    pub async fn record_import_progress(
        &self,
        id: ImportRunId,
        rows_read: u64,
        bytes_read: u64,
        bytes_total: u64,
    ) -> Result<()> {
        if let crate::backend::Backend::Postgres(pool) = &self.backend {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            sqlx::query(
                "UPDATE import_runs SET rows_read = $2, bytes = $3, bytes_total = $4 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(n(rows_read))
            .bind(n(bytes_read))
            .bind(n(bytes_total))
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// Records how a run ended.
    pub async fn finish_import_run(
        &self,
        id: ImportRunId,
        outcome: &ImportOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "UPDATE import_runs SET status = $2, rows_read = $3, rows_inserted = $4, rows_updated = $5, \
                   rows_deleted = $6, rows_rejected = $7, bytes = $8, content_sha256 = $9, error = $10, finished_at = $11, \
                   header = $12 WHERE id = $1";
        let c = &outcome.counts;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        on_writer!(&self.backend, conn => sqlx::query(sql)
            .bind(id).bind(outcome.status).bind(n(c.read)).bind(n(c.inserted)).bind(n(c.updated))
            .bind(n(c.deleted)).bind(n(c.rejected)).bind(n(c.bytes)).bind(&outcome.content_sha256)
            .bind(&outcome.error).bind(now).bind(&outcome.header).execute(conn).await.map(|_| ()))?;
        Ok(())
    }

    /// An earlier successful run of `feed` for `tenant` that read exactly this content.
    pub async fn succeeded_import_with_content(
        &self,
        tenant: TenantId,
        feed: &str,
        sha256: &str,
    ) -> Result<Option<ImportRunId>> {
        let sql = "SELECT id FROM import_runs WHERE tenant_id = $1 AND feed = $2 AND content_sha256 = $3 \
                   AND status = 'succeeded' AND dry_run = $4 LIMIT 1";
        Ok(on_pool!(&self.backend, c => sqlx::query_scalar(sql)
            .bind(tenant).bind(feed).bind(sha256).bind(false).fetch_optional(c).await)?)
    }

    /// Keeps rejected rows of `run` (`seq` numbers several reasons for one line).
    pub async fn add_import_rejects(
        &self,
        run: ImportRunId,
        rejects: &[ImportReject],
    ) -> Result<()> {
        for chunk in rejects.chunks(500) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 7;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO import_rejects (run_id, line, seq, column_name, value, reason, raw) VALUES {} \
                 ON CONFLICT (run_id, line, seq) DO NOTHING",
                values.join(", ")
            );
            on_writer!(&self.backend, c => {
                let mut query = sqlx::query(&sql);
                let mut seq_of_line = (0i64, 0i32);
                for reject in chunk {
                    seq_of_line = if seq_of_line.0 == reject.line { (reject.line, seq_of_line.1 + 1) } else { (reject.line, 0) };
                    query = query.bind(run).bind(reject.line).bind(seq_of_line.1).bind(&reject.column_name)
                        .bind(&reject.value).bind(&reject.reason).bind(&reject.raw);
                }
                query.execute(c).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    pub async fn import_run(&self, id: ImportRunId) -> Result<Option<ImportRun>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM import_runs WHERE id = $1");
        Ok(on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?)
    }

    /// The newest runs first.
    pub async fn import_runs(&self, filter: &ImportRunFilter) -> Result<Vec<ImportRun>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM import_runs WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR feed = $2) \
             AND ($3 IS NULL OR status = $3) ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        Ok(on_pool!(&self.backend, c => sqlx::query_as(&sql)
            .bind(filter.tenant_id).bind(&filter.feed).bind(&filter.status).bind(filter.limit)
            .fetch_all(c).await)?)
    }

    /// A run's rejected rows, in file order.
    pub async fn import_rejects(&self, run: ImportRunId) -> Result<Vec<ImportReject>> {
        let sql = "SELECT line, column_name, value, reason, raw FROM import_rejects WHERE run_id = $1 ORDER BY line, seq";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).bind(run).fetch_all(c).await)?)
    }
}

impl Store {
    /// Subscribes `tenant` to `feed` (cron then fetches it on the feed's schedule). `false`: it already was.
    pub async fn subscribe_tenant_feed(
        &self,
        tenant: TenantId,
        feed: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "INSERT INTO tenant_feeds (tenant_id, feed, created_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (tenant_id, feed) DO NOTHING";
        let n = on_writer!(&self.backend, c => sqlx::query(sql).bind(tenant).bind(feed).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Ends `tenant`'s subscription to `feed`. `false`: there was none.
    pub async fn unsubscribe_tenant_feed(&self, tenant: TenantId, feed: &str) -> Result<bool> {
        let sql = "DELETE FROM tenant_feeds WHERE tenant_id = $1 AND feed = $2";
        let n = on_writer!(&self.backend, c => sqlx::query(sql).bind(tenant).bind(feed)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The feeds `tenant` takes, by name.
    pub async fn tenant_feeds(&self, tenant: TenantId) -> Result<Vec<String>> {
        let sql = "SELECT feed FROM tenant_feeds WHERE tenant_id = $1 ORDER BY feed";
        Ok(on_pool!(&self.backend, c => sqlx::query_scalar(sql).bind(tenant).fetch_all(c).await)?)
    }
}

impl Store {
    /// The tenants that take `feed`, by slug.
    pub async fn tenants_subscribed_to(&self, feed: &str) -> Result<Vec<crate::Tenant>> {
        let sql =
            "SELECT t.id, t.slug, t.name FROM tenants t JOIN tenant_feeds f ON f.tenant_id = t.id \
                   WHERE f.feed = $1 ORDER BY t.slug";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).bind(feed).fetch_all(c).await)?)
    }

    /// Ends as `failed` the runs of `feed` for `tenant` and `date` still marked `running`: their process died
    /// mid-run (its load rolled back with its connection), and the job that now redoes them says so.
    pub async fn abandon_import_runs(
        &self,
        tenant: TenantId,
        feed: &str,
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let sql = "UPDATE import_runs SET status = 'failed', finished_at = $4, \
                   error = 'interrupted: the process running it stopped; the import was run again' \
                   WHERE tenant_id = $1 AND feed = $2 AND feed_date = $3 AND status = 'running'";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(tenant).bind(feed).bind(date).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?,
        )
    }
}
