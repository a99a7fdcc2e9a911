//! The durable job queue's statements. The worker loop, backoff policy and handlers live above this crate;
//! here is only how a job is written down, claimed, kept, finished and pruned.
//!
//! Claiming is one statement on both engines: PostgreSQL picks rows `FOR UPDATE SKIP LOCKED`, so concurrent
//! workers never wait on, or take, the same job; SQLite's single writer serialises claims by itself. A claim
//! takes `queued` jobs that are due and `running` jobs whose lease has lapsed (their worker died): every job
//! handler must therefore be idempotent. Finishing is conditional on still holding the lease, so a worker whose
//! job was rescued by another cannot overwrite the rescuer's outcome.
//!
//! Claims and completions commit without waiting for the WAL flush (PostgreSQL's asynchronous commit): a crash
//! can lose the last few hundred milliseconds of them, and then a claimed job is queued again, or a finished one
//! runs again once its lease lapses — what every handler must tolerate anyway. It takes the queue from about
//! one flush per job to none (bench/README.md). Enqueues and failures stay durable. A paused queue (`paused_queues`, see
//! `job_admin`) is not claimed from; every failed attempt is kept in `job_errors`.

use chrono::{DateTime, Utc};
use skybook_domain::{JobId, TenantId};

use crate::backend::on_writer;
use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    /// JSON.
    pub payload: String,
    /// Higher runs first.
    pub priority: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    /// At most one unfinished job per key.
    pub unique_key: Option<String>,
    /// The tenant the job works for, if any (its operators see it).
    pub tenant_id: Option<TenantId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    New(JobId),
    /// An unfinished job with the same unique key exists; nothing was added.
    Duplicate,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub priority: i32,
    pub state: String,
    /// Including the current run.
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub unique_key: Option<String>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub tenant_id: Option<TenantId>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub(crate) const JOB_COLUMNS: &str =
    "id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, \
     locked_by, locked_until, last_error, tenant_id, created_at, finished_at";

impl Store {
    pub async fn enqueue_job(&self, job: &NewJob, now: DateTime<Utc>) -> Result<Enqueued> {
        let id = JobId::new();
        let sql = "INSERT INTO jobs (id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, \
                   unique_key, created_at, tenant_id) VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $9, $10) \
                   ON CONFLICT DO NOTHING";
        let inserted = on_writer!(&self.backend, c => sqlx::query(sql)
            .bind(id).bind(&job.queue).bind(&job.kind).bind(&job.payload).bind(job.priority)
            .bind(job.max_attempts).bind(job.run_at).bind(&job.unique_key).bind(now).bind(job.tenant_id)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(if inserted == 1 {
            Enqueued::New(id)
        } else {
            Enqueued::Duplicate
        })
    }

    /// Leases up to `limit` due jobs of `queue` to `worker` until `now + lease`, highest priority first.
    pub async fn claim_jobs(
        &self,
        queue: &str,
        worker: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let sql = self.claim_sql();
        let mut jobs: Vec<Job> = on_writer!(&self.backend, c => sqlx::query_as(&sql)
            .bind(worker).bind(now + lease).bind(queue).bind(now).bind(limit)
            .fetch_all(c).await)?;
        jobs.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.run_at.cmp(&b.run_at)));
        Ok(jobs)
    }

    /// The claim statement: `$1` worker, `$2` lease end, `$3` queue, `$4` now, `$5` how many.
    fn claim_sql(&self) -> String {
        let skip_locked = self.skip_locked();
        let async_commit = self.async_commit_from();
        // `state IN ('queued', 'running')` repeats the claim index's own condition word for word: SQLite uses a
        // partial index only then (without it, every claim scanned the whole table).
        format!(
            "UPDATE jobs SET state = 'running', locked_by = $1, locked_until = $2, attempts = attempts + 1{async_commit} \
             WHERE id IN (SELECT id FROM jobs WHERE queue = $3 AND state IN ('queued', 'running') \
                 AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = $3) \
                 AND ((state = 'queued' AND run_at <= $4) OR (state = 'running' AND locked_until < $4)) \
                 ORDER BY priority DESC, run_at LIMIT $5{skip_locked}) \
             RETURNING {JOB_COLUMNS}"
        )
    }

    /// Extends the leases of every job `worker` holds (its heartbeat). Returns how many it still holds.
    pub async fn renew_job_leases(&self, worker: &str, until: DateTime<Utc>) -> Result<u64> {
        let sql = "UPDATE jobs SET locked_until = $1 WHERE locked_by = $2 AND state = 'running'";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(until).bind(worker).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Hands back every job `worker` is running (it is shutting down): their leases end now, so the next claim
    /// on any node takes them over at once instead of after the lease. Returns how many were handed back.
    pub async fn release_job_leases(&self, worker: &str, now: DateTime<Utc>) -> Result<u64> {
        let sql = "UPDATE jobs SET locked_until = $1 WHERE locked_by = $2 AND state = 'running'";
        let released = on_writer!(&self.backend, c => sqlx::query(sql).bind(now).bind(worker).execute(c).await.map(|r| r.rows_affected()))?;
        // Wake the other nodes' idle workers (the insert trigger only announces new jobs), so the handed-back
        // jobs are taken at once rather than at their next poll.
        if let (crate::backend::Backend::Postgres(pool), true) = (&self.backend, released > 0) {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(crate::wakeups::JOBS_CHANNEL)
                .execute(pool)
                .await?;
        }
        Ok(released)
    }

    /// Marks the job done if `worker` still holds it. `false`: the lease was lost (another worker rescued it).
    pub async fn complete_job(&self, id: JobId, worker: &str, now: DateTime<Utc>) -> Result<bool> {
        let sql = format!(
            "UPDATE jobs SET state = 'done', finished_at = $1, locked_by = NULL, locked_until = NULL{} \
             WHERE id = $2 AND locked_by = $3 AND state = 'running'",
            self.async_commit_from()
        );
        Ok(
            on_writer!(&self.backend, c => sqlx::query(&sql).bind(now).bind(id).bind(worker).execute(c).await.map(|r| r.rows_affected()))?
                == 1,
        )
    }

    /// Records a failed run: queued again at `retry_at`, or `failed` for good when `retry_at` is `None`.
    /// Conditional on still holding the lease, like [`Store::complete_job`].
    pub async fn fail_job(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (sql, at) = match retry_at {
            Some(at) => (
                "UPDATE jobs SET state = 'queued', run_at = $1, last_error = $2, locked_by = NULL, \
                 locked_until = NULL WHERE id = $3 AND locked_by = $4 AND state = 'running'",
                at,
            ),
            None => (
                "UPDATE jobs SET state = 'failed', finished_at = $1, last_error = $2, locked_by = NULL, \
                 locked_until = NULL WHERE id = $3 AND locked_by = $4 AND state = 'running'",
                now,
            ),
        };
        let failed = on_writer!(&self.backend, c => sqlx::query(sql).bind(at).bind(error).bind(id).bind(worker).execute(c).await.map(|r| r.rows_affected()))?
            == 1;
        if failed {
            // The attempt's error, kept beside the job (a retried attempt of the same number replaces it).
            let sql = "INSERT INTO job_errors (job_id, attempt, worker, error, at) \
                       SELECT id, attempts, $1, $2, $3 FROM jobs WHERE id = $4 \
                       ON CONFLICT (job_id, attempt) DO UPDATE SET worker = excluded.worker, \
                       error = excluded.error, at = excluded.at";
            on_writer!(&self.backend, c => sqlx::query(sql).bind(worker).bind(error).bind(now).bind(id).execute(c).await.map(|_| ()))?;
        }
        Ok(failed)
    }

    pub async fn job(&self, id: JobId) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        Ok(on_writer!(&self.backend, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?)
    }

    /// How many jobs of `kind` are in each state (tests and the dashboard).
    pub async fn job_counts(&self, kind: &str) -> Result<Vec<(String, i64)>> {
        let sql = "SELECT state, COUNT(*) FROM jobs WHERE kind = $1 GROUP BY state ORDER BY state";
        Ok(on_writer!(&self.backend, c => sqlx::query_as(sql).bind(kind).fetch_all(c).await)?)
    }

    /// Deletes jobs that finished before `before`. Returns how many.
    pub async fn prune_jobs(&self, before: DateTime<Utc>) -> Result<u64> {
        let sql = "DELETE FROM jobs WHERE state IN ('done', 'failed') AND finished_at < $1";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(before).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claim reaches the due jobs through the claim index, not by scanning the table (a large backlog would
    /// make every claim slower). SQLite, whose partial-index rule is the strict one.
    #[tokio::test]
    async fn a_claim_uses_the_claim_index() {
        let path = std::env::temp_dir().join(format!("skybook-claim-{}.db", uuid::Uuid::new_v4()));
        let store = Store::connect(&format!("sqlite://{}", path.display()), &Default::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> = on_writer!(&store.backend, c => sqlx::query_as(
            &format!("EXPLAIN QUERY PLAN {}", store.claim_sql()))
            .bind("w").bind(Utc::now()).bind("default").bind(Utc::now()).bind(8_i64)
            .fetch_all(c).await)
        .unwrap();
        let plan: Vec<String> = plan.into_iter().map(|(_, _, _, detail)| detail).collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("INDEX jobs_claimable")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN jobs")),
            "{plan:?}"
        );
        store.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
