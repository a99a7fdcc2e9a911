//! Cron for operators: the schedules as the nodes running them declare them (`cron_schedules`), paused and
//! resumed by an operator (a paused schedule's ticks pass unfired, on every node), and run now — once across
//! nodes, like a tick: the run claims a tick in `cron_ticks` at the current second, as a node would.

use chrono::{DateTime, SubsecRound as _, Utc};
use skybook_domain::JobId;

use crate::backend::{on_pool, on_writer};
use crate::error::Result;
use crate::jobs::{Enqueued, NewJob};
use crate::store::Store;

/// A schedule as a node declares it at start.
#[derive(Debug, Clone)]
pub struct CronRegistration<'a> {
    pub name: &'a str,
    pub pattern: &'a str,
    /// The job each tick enqueues (its `run_at` and `unique_key` are set per tick).
    pub job: &'a NewJob,
    pub exclusive: bool,
    pub next_at: Option<DateTime<Utc>>,
}

/// A schedule, with its state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CronSchedule {
    pub name: String,
    pub pattern: String,
    pub kind: String,
    pub exclusive: bool,
    pub paused_at: Option<DateTime<Utc>>,
    pub next_at: Option<DateTime<Utc>>,
    pub last_tick: Option<DateTime<Utc>>,
    pub last_job_id: Option<JobId>,
    pub last_job_state: Option<String>,
    pub last_job_error: Option<String>,
}

/// The unique key of the job a tick of `schedule` at `tick` enqueues: per schedule when runs must not overlap,
/// else per tick.
pub fn cron_job_key(schedule: &str, exclusive: bool, tick: DateTime<Utc>) -> String {
    match exclusive {
        true => format!("cron:{schedule}"),
        false => format!("cron:{schedule}:{}", tick.timestamp()),
    }
}

impl Store {
    /// Declares (or updates) a schedule this node runs; an operator's pause stays.
    pub async fn register_cron_schedule(
        &self,
        schedule: &CronRegistration<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO cron_schedules (name, pattern, queue, kind, payload, priority, max_attempts, exclusive, \
                   next_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                   ON CONFLICT (name) DO UPDATE SET pattern = excluded.pattern, queue = excluded.queue, \
                   kind = excluded.kind, payload = excluded.payload, priority = excluded.priority, \
                   max_attempts = excluded.max_attempts, exclusive = excluded.exclusive, next_at = excluded.next_at, \
                   updated_at = excluded.updated_at";
        let job = schedule.job;
        on_writer!(&self.backend, c => sqlx::query(sql)
            .bind(schedule.name).bind(schedule.pattern).bind(&job.queue).bind(&job.kind).bind(&job.payload)
            .bind(job.priority).bind(job.max_attempts).bind(schedule.exclusive).bind(schedule.next_at).bind(now)
            .execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Every declared schedule, by name, with its last tick and the state of the job that tick enqueued.
    pub async fn cron_schedules(&self) -> Result<Vec<CronSchedule>> {
        let sql = "SELECT s.name, s.pattern, s.kind, s.exclusive, s.paused_at, s.next_at, \
                   (SELECT MAX(t.tick) FROM cron_ticks t WHERE t.schedule = s.name) AS last_tick, \
                   s.last_job_id, j.state AS last_job_state, j.last_error AS last_job_error \
                   FROM cron_schedules s LEFT JOIN jobs j ON j.id = s.last_job_id ORDER BY s.name";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).fetch_all(c).await)?)
    }

    /// The names of the paused schedules.
    pub async fn paused_cron_schedules(&self) -> Result<Vec<String>> {
        let sql = "SELECT name FROM cron_schedules WHERE paused_at IS NOT NULL";
        Ok(on_writer!(&self.backend, c => sqlx::query_scalar(sql).fetch_all(c).await)?)
    }

    /// Pauses (`paused`) or resumes a schedule. `false`: no such schedule, or it was so already.
    pub async fn set_cron_paused(
        &self,
        name: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let changed = match paused {
            true => {
                let sql = "UPDATE cron_schedules SET paused_at = $2 WHERE name = $1 AND paused_at IS NULL";
                on_writer!(&self.backend, c => sqlx::query(sql).bind(name).bind(now).execute(c).await.map(|r| r.rows_affected()))?
            }
            false => {
                let sql = "UPDATE cron_schedules SET paused_at = NULL WHERE name = $1 AND paused_at IS NOT NULL";
                on_writer!(&self.backend, c => sqlx::query(sql).bind(name).execute(c).await.map(|r| r.rows_affected()))?
            }
        };
        if changed == 1 {
            self.publish_event(
                &serde_json::json!({ "type": "cron", "name": name, "paused": paused }),
            );
        }
        Ok(changed == 1)
    }

    /// Notes the job a tick enqueued, and when the schedule is next due.
    pub async fn record_cron_run(
        &self,
        name: &str,
        job: JobId,
        next_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let sql = "UPDATE cron_schedules SET last_job_id = $2, next_at = $3 WHERE name = $1";
        on_writer!(&self.backend, c => sqlx::query(sql).bind(name).bind(job).bind(next_at).execute(c).await.map(|_| ()))?;
        self.publish_event(
            &serde_json::json!({ "type": "cron", "name": name, "job": job, "next_at": next_at }),
        );
        Ok(())
    }

    /// Runs schedule `name` now, once across nodes: claims the current second as its tick (`None` when another
    /// node or click has it, or there is no such schedule), then enqueues its job as a tick would
    /// ([`Enqueued::Duplicate`] when it must not overlap a run still unfinished).
    pub async fn run_cron_now(&self, name: &str, now: DateTime<Utc>) -> Result<Option<Enqueued>> {
        let sql = "SELECT queue, kind, payload, priority, max_attempts, exclusive FROM cron_schedules WHERE name = $1";
        let row: Option<(String, String, String, i32, i32, bool)> =
            on_writer!(&self.backend, c => sqlx::query_as(sql).bind(name).fetch_optional(c).await)?;
        let Some((queue, kind, payload, priority, max_attempts, exclusive)) = row else {
            return Ok(None);
        };
        let tick = now.trunc_subsecs(0);
        if !self.claim_cron_tick(name, tick, "operator", now).await? {
            return Ok(None);
        }
        let job = NewJob {
            queue,
            kind,
            payload,
            priority,
            max_attempts,
            run_at: now,
            unique_key: Some(cron_job_key(name, exclusive, tick)),
            tenant_id: None,
        };
        let enqueued = self.enqueue_job(&job, now).await?;
        if let Enqueued::New(id) = enqueued {
            let sql = "UPDATE cron_schedules SET last_job_id = $2 WHERE name = $1";
            on_writer!(&self.backend, c => sqlx::query(sql).bind(name).bind(id).execute(c).await.map(|_| ()))?;
        }
        Ok(Some(enqueued))
    }
}
