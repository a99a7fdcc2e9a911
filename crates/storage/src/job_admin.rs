//! The operators' statements over the job queue: list and count jobs, a job's failed attempts, act on jobs
//! (retry now, cancel, delete) picked by id or by a filter, and pause or resume a queue.
//!
//! An action "on every job matching the filter" is one statement whose `WHERE` is the filter's, so it acts on
//! exactly the rows that match when it runs, however many, without reading them first. Running jobs are left
//! alone by every action but cancel: retrying or deleting a job a worker holds would run it twice or lose its
//! outcome. A cancelled job ends `failed` with the error "cancelled by an operator" (and a running one's worker
//! then finds its lease gone, so its outcome is not recorded over the cancel).

use chrono::{DateTime, Utc};
use skybook_domain::{JobId, TenantId};

use crate::backend::{on_pool, on_writer, Engine};
use crate::error::Result;
use crate::jobs::{Job, JOB_COLUMNS};
use crate::store::Store;

/// A job retry may queue again: one without a unique key, or the newest of its key when no other run of the key
/// is unfinished (the unique index allows one unfinished job per key; the rest are left as they are).
const RETRIABLE: &str = "(unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS other \
    WHERE other.unique_key = jobs.unique_key AND other.id <> jobs.id \
    AND (other.state IN ('queued', 'running') OR (other.created_at, other.id) > (jobs.created_at, jobs.id))))";

/// Which jobs: every field optional; all given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<String>,
    pub queue: Option<String>,
    pub kind: Option<String>,
    pub tenant_id: Option<TenantId>,
    /// Text the payload or the last error contains (case-insensitive on ASCII).
    pub text: Option<String>,
}

/// A page of the listing: newest first, after the cursor `(created_at, id)` of the previous page's last job.
#[derive(Debug, Clone, Default)]
pub struct JobPage {
    pub after: Option<(DateTime<Utc>, JobId)>,
    pub limit: i64,
}

/// The jobs an action applies to.
#[derive(Debug, Clone)]
pub enum JobSelection {
    /// These jobs; with `tenant_id`, only those of that tenant (a tenant operator's selection).
    Ids {
        ids: Vec<JobId>,
        tenant_id: Option<TenantId>,
    },
    /// Every job matching the filter when the action runs.
    Matching(JobFilter),
}

/// A failed attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobError {
    pub attempt: i32,
    pub worker: String,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// How many jobs of a queue are in a state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCount {
    pub queue: String,
    pub state: String,
    pub count: i64,
    /// From the planner's statistics, not counted (see [`Store::job_state_counts`]).
    pub estimated: bool,
}

/// Rows (by the planner's statistics) from which the finished jobs are estimated, not counted.
pub const LARGE_TABLE: f64 = 200_000.0;

/// A `WHERE` clause and the values for its placeholders, numbered from `first`.
struct Where {
    clause: String,
    binds: Vec<Bind>,
}

enum Bind {
    Text(String),
    Tenant(TenantId),
    Job(JobId),
    Time(DateTime<Utc>),
}

impl Where {
    fn new() -> Self {
        Self {
            clause: "TRUE".into(),
            binds: Vec::new(),
        }
    }

    fn and(&mut self, condition: impl FnOnce(usize) -> String, bind: Bind) {
        self.binds.push(bind);
        let n = self.binds.len();
        self.clause = format!("{} AND {}", self.clause, condition(n));
    }

    fn filter(filter: &JobFilter, engine: Engine) -> Self {
        let mut w = Self::new();
        if let Some(state) = &filter.state {
            w.and(|n| format!("state = ${n}"), Bind::Text(state.clone()));
        }
        if let Some(queue) = &filter.queue {
            w.and(|n| format!("queue = ${n}"), Bind::Text(queue.clone()));
        }
        if let Some(kind) = &filter.kind {
            w.and(|n| format!("kind = ${n}"), Bind::Text(kind.clone()));
        }
        if let Some(tenant) = filter.tenant_id {
            w.and(|n| format!("tenant_id = ${n}"), Bind::Tenant(tenant));
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            // The text is matched literally: LIKE's wildcards in it are escaped.
            let pattern = format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let like = match engine {
                Engine::Postgres => "ILIKE",
                Engine::Sqlite => "LIKE",
            };
            w.and(
                |n| {
                    format!(
                        "(payload {like} ${n} ESCAPE '\\' OR COALESCE(last_error, '') {like} ${n} ESCAPE '\\')"
                    )
                },
                Bind::Text(pattern),
            );
        }
        w
    }

    fn selection(selection: &JobSelection, engine: Engine) -> Self {
        match selection {
            JobSelection::Matching(filter) => Self::filter(filter, engine),
            JobSelection::Ids { ids, tenant_id } => {
                let mut w = Self::new();
                let mut placeholders = Vec::new();
                for id in ids {
                    w.binds.push(Bind::Job(*id));
                    placeholders.push(format!("${}", w.binds.len()));
                }
                w.clause = if placeholders.is_empty() {
                    "FALSE".into()
                } else {
                    format!("id IN ({})", placeholders.join(", "))
                };
                if let Some(tenant) = tenant_id {
                    w.and(|n| format!("tenant_id = ${n}"), Bind::Tenant(*tenant));
                }
                w
            }
        }
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::Tenant(v) => query.bind(v),
                Bind::Job(v) => query.bind(v),
                Bind::Time(v) => query.bind(v),
            };
        }
        query
    }};
}

impl Store {
    /// One page of the jobs matching `filter`, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter, page: &JobPage) -> Result<Vec<Job>> {
        let mut w = Where::filter(filter, self.engine());
        if let Some((at, id)) = page.after {
            // The keyset: strictly older than the cursor (ties on time broken by id, the order's second key).
            w.binds.push(Bind::Time(at));
            w.binds.push(Bind::Job(id));
            let n = w.binds.len();
            // A row comparison, which both engines read as a range of the listing's index (an `OR` of the two
            // cases made PostgreSQL scan from the top: a deep page cost 0.4 s of a million jobs).
            w.clause = format!("{} AND (created_at, id) < (${}, ${n})", w.clause, n - 1);
        }
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
            w.clause,
            page.limit.max(1)
        );
        Ok(
            on_pool!(&self.backend, c => bind_all!(sqlx::query_as::<_, Job>(&sql), w.binds).fetch_all(c).await)?,
        )
    }

    /// How many jobs match `filter`, counting no further than `cap` (a page says "10,000 or more" rather than
    /// read a million rows to say how many).
    pub async fn count_jobs(&self, filter: &JobFilter, cap: i64) -> Result<i64> {
        let w = Where::filter(filter, self.engine());
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE {} LIMIT {}) AS matching",
            w.clause,
            cap.max(1)
        );
        Ok(
            on_pool!(&self.backend, c => bind_all!(sqlx::query_scalar::<_, i64>(&sql), w.binds).fetch_one(c).await)?,
        )
    }

    /// Jobs per queue and state (of one tenant's, when given). Exact, but for the finished jobs of a large table
    /// on PostgreSQL ([`LARGE_TABLE`] rows and more by the planner's statistics): those are the planner's estimate
    /// (`estimated`), as reading a million rows to count them would make the dashboard wait on history. The
    /// states an operator acts on — queued, running, failed — are always counted exactly (partial indexes hold
    /// them).
    pub async fn job_state_counts(&self, tenant: Option<TenantId>) -> Result<Vec<JobCount>> {
        if let crate::backend::Backend::Postgres(pool) = &self.backend {
            let rows: f64 = sqlx::query_scalar(
                "SELECT GREATEST(reltuples, 0)::float8 FROM pg_class WHERE oid = 'jobs'::regclass",
            )
            .fetch_one(pool)
            .await?;
            if rows >= LARGE_TABLE {
                return self.estimated_state_counts(pool, tenant, rows).await;
            }
        }
        let filter = JobFilter {
            tenant_id: tenant,
            ..JobFilter::default()
        };
        let w = Where::filter(&filter, self.engine());
        let sql = format!(
            "SELECT queue, state, COUNT(*) AS count, FALSE AS estimated FROM jobs WHERE {} \
             GROUP BY queue, state ORDER BY queue, state",
            w.clause
        );
        Ok(
            on_pool!(&self.backend, c => bind_all!(sqlx::query_as::<_, JobCount>(&sql), w.binds).fetch_all(c).await)?,
        )
    }

    /// [`Store::job_state_counts`] of a large table: queued, running and failed counted, done estimated from the
    /// statistics — each queue's share of the rows (and the tenant's), less the jobs counted.
    async fn estimated_state_counts(
        &self,
        pool: &sqlx::PgPool,
        tenant: Option<TenantId>,
        rows: f64,
    ) -> Result<Vec<JobCount>> {
        let exact = "SELECT queue, state, COUNT(*) AS count, FALSE AS estimated FROM jobs \
                     WHERE state IN ('queued', 'running') AND ($1::uuid IS NULL OR tenant_id = $1) GROUP BY queue, state \
                     UNION ALL SELECT queue, state, COUNT(*), FALSE FROM jobs \
                     WHERE state = 'failed' AND ($1::uuid IS NULL OR tenant_id = $1) GROUP BY queue, state";
        let mut counts: Vec<JobCount> = sqlx::query_as(exact).bind(tenant).fetch_all(pool).await?;
        // Each column's most common values and their shares, as the last ANALYZE saw them.
        type Stats = (String, Option<Vec<String>>, Option<Vec<f32>>, f32, f32);
        let stats: Vec<Stats> = sqlx::query_as(
            "SELECT attname::text, most_common_vals::text::text[], most_common_freqs, null_frac, n_distinct \
             FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'jobs' \
             AND attname IN ('queue', 'tenant_id')",
        )
        .fetch_all(pool)
        .await?;
        // A value's share of the rows: its own among the most common values, else an equal part of what they
        // leave (the planner's own rule), so a tenant too small to be among them still gets an estimate.
        let share = |column: &str, value: &str| -> f64 {
            let Some((_, values, freqs, null_frac, distinct)) =
                stats.iter().find(|(name, ..)| name == column)
            else {
                return 0.0;
            };
            let (values, freqs) = (
                values.as_deref().unwrap_or(&[]),
                freqs.as_deref().unwrap_or(&[]),
            );
            if let Some(i) = values.iter().position(|v| v == value) {
                return f64::from(freqs[i]);
            }
            let distinct = match f64::from(*distinct) {
                d if d < 0.0 => -d * rows,
                d => d,
            };
            let rest =
                1.0 - freqs.iter().map(|f| f64::from(*f)).sum::<f64>() - f64::from(*null_frac);
            (rest / (distinct - values.len() as f64).max(1.0)).max(0.0)
        };
        // Each queue's rows by the statistics, less what was counted exactly: its finished jobs.
        let scale = match tenant {
            Some(tenant) => rows * share("tenant_id", &tenant.to_string()),
            None => rows,
        };
        let queues = stats
            .iter()
            .find(|(name, ..)| name == "queue")
            .and_then(|(_, values, ..)| values.clone())
            .unwrap_or_default();
        for queue in queues {
            let counted: i64 = counts
                .iter()
                .filter(|c| c.queue == queue)
                .map(|c| c.count)
                .sum();
            let count = (scale * share("queue", &queue)).round() as i64 - counted;
            if count > 0 {
                counts.push(JobCount {
                    queue,
                    state: "done".into(),
                    count,
                    estimated: true,
                });
            }
        }
        counts.sort_by(|a, b| (&a.queue, &a.state).cmp(&(&b.queue, &b.state)));
        Ok(counts)
    }

    /// Jobs that finished since `since`, per minute (`YYYY-MM-DDTHH:MM`, UTC) and state (`done`, `failed`): the
    /// dashboard's chart. Reads the finished jobs' index from `since` on only.
    pub async fn jobs_finished_per_minute(
        &self,
        tenant: Option<TenantId>,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64)>> {
        let minute = match self.engine() {
            Engine::Postgres => "to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')",
            // Stored as RFC 3339 text in UTC: its first 16 characters are the minute.
            Engine::Sqlite => "substr(finished_at, 1, 16)",
        };
        let sql = format!(
            "SELECT {minute} AS minute, state, COUNT(*) FROM jobs WHERE state IN ('done', 'failed') \
             AND finished_at >= $1 AND ($2 IS NULL OR tenant_id = $2) GROUP BY 1, 2 ORDER BY 1, 2"
        );
        Ok(
            on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(since).bind(tenant).fetch_all(c).await)?,
        )
    }

    /// A job's failed attempts, in order.
    pub async fn job_errors(&self, id: JobId) -> Result<Vec<JobError>> {
        let sql =
            "SELECT attempt, worker, error, at FROM job_errors WHERE job_id = $1 ORDER BY attempt";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).bind(id).fetch_all(c).await)?)
    }

    /// Queues the selected jobs that are not running to run now (a job out of attempts gets one more), but for a
    /// job whose unique key has another run unfinished or newer ([`RETRIABLE`]). Returns how many.
    pub async fn retry_jobs(&self, selection: &JobSelection, now: DateTime<Utc>) -> Result<u64> {
        let w = Where::selection(selection, self.engine());
        let n = w.binds.len() + 1;
        let sql = format!(
            "UPDATE jobs SET state = 'queued', run_at = ${n}, finished_at = NULL, locked_by = NULL, \
             locked_until = NULL, max_attempts = CASE WHEN attempts >= max_attempts THEN attempts + 1 \
             ELSE max_attempts END WHERE ({}) AND state <> 'running' AND {RETRIABLE}",
            w.clause
        );
        let binds = w.binds.into_iter().chain([Bind::Time(now)]);
        let changed = on_writer!(&self.backend, c => bind_all!(sqlx::query(&sql), binds).execute(c).await.map(|r| r.rows_affected()))?;
        self.announce_jobs().await?;
        Ok(changed)
    }

    /// Ends the selected jobs that have not finished as `failed`, "cancelled by an operator". Returns how many.
    pub async fn cancel_jobs(&self, selection: &JobSelection, now: DateTime<Utc>) -> Result<u64> {
        let w = Where::selection(selection, self.engine());
        let n = w.binds.len() + 1;
        let sql = format!(
            "UPDATE jobs SET state = 'failed', finished_at = ${n}, last_error = 'cancelled by an operator', \
             locked_by = NULL, locked_until = NULL WHERE ({}) AND state IN ('queued', 'running')",
            w.clause
        );
        let binds = w.binds.into_iter().chain([Bind::Time(now)]);
        Ok(
            on_writer!(&self.backend, c => bind_all!(sqlx::query(&sql), binds).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Deletes the selected jobs that are not running (their errors with them). Returns how many.
    pub async fn delete_jobs(&self, selection: &JobSelection) -> Result<u64> {
        let w = Where::selection(selection, self.engine());
        let sql = format!(
            "DELETE FROM jobs WHERE ({}) AND state <> 'running'",
            w.clause
        );
        Ok(
            on_writer!(&self.backend, c => bind_all!(sqlx::query(&sql), w.binds).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Stops claims from `queue` on every node (jobs running go on). `false`: it was paused already.
    pub async fn pause_queue(&self, queue: &str, now: DateTime<Utc>) -> Result<bool> {
        let sql =
            "INSERT INTO paused_queues (queue, paused_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        let paused = on_writer!(&self.backend, c => sqlx::query(sql).bind(queue).bind(now).execute(c).await.map(|r| r.rows_affected()))?
            == 1;
        if paused {
            self.publish_event(
                &serde_json::json!({ "type": "queue", "queue": queue, "paused": true }),
            );
        }
        Ok(paused)
    }

    /// Lets `queue` be claimed from again. `false`: it was not paused.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool> {
        let sql = "DELETE FROM paused_queues WHERE queue = $1";
        let resumed = on_writer!(&self.backend, c => sqlx::query(sql).bind(queue).execute(c).await.map(|r| r.rows_affected()))?
            == 1;
        if resumed {
            self.publish_event(
                &serde_json::json!({ "type": "queue", "queue": queue, "paused": false }),
            );
            self.announce_jobs().await?;
        }
        Ok(resumed)
    }

    /// The paused queues, with when.
    pub async fn paused_queues(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        let sql = "SELECT queue, paused_at FROM paused_queues ORDER BY queue";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).fetch_all(c).await)?)
    }

    /// Wakes idle workers on every node (PostgreSQL): jobs became claimable without an insert.
    async fn announce_jobs(&self) -> Result<()> {
        if let crate::backend::Backend::Postgres(pool) = &self.backend {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(crate::wakeups::JOBS_CHANNEL)
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}
