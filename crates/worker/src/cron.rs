//! Cron: each schedule fires once per tick across any number of nodes.
//!
//! Every node runs a [`CronScheduler`] with the same schedules. At each tick every node tries to insert
//! (schedule, tick) into `cron_ticks`; the one whose insert succeeds enqueues the schedule's job (with a unique
//! key per tick, a second guard). Only the latest due tick is considered, so after downtime a schedule that
//! missed many ticks fires once, not once per missed tick. Each node declares its schedules at start
//! (`cron_schedules`, for the operators' view); a schedule an operator paused is skipped by every node.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use croner::Cron;
use skybook_storage::{cron_job_key, CronRegistration, Enqueued, NewJob, Store};
use tokio_util::sync::CancellationToken;

/// A named schedule and the job it enqueues.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// The cron expression, as given.
    pub pattern: String,
    cron: Cron,
    /// Enqueued at each tick (its `run_at` and `unique_key` are set per tick).
    pub job: NewJob,
    /// At most one unfinished run: a tick that comes while the last run is still queued or running is skipped.
    exclusive: bool,
}

impl Schedule {
    /// `pattern` is a cron expression, with an optional leading seconds field (`*/5 * * * * *`).
    pub fn new(name: &str, pattern: &str, job: NewJob) -> anyhow::Result<Self> {
        let cron = Cron::from_str(pattern)
            .map_err(|e| anyhow::anyhow!("invalid cron schedule {name} {pattern:?}: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            pattern: pattern.to_owned(),
            cron,
            job,
            exclusive: false,
        })
    }

    /// Runs never overlap: a tick while the previous run is unfinished enqueues nothing (the tick still counts
    /// as fired, so it is not made up later).
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// The latest tick at or before `now`. Ticks are whole seconds (croner keeps the sub-second part of the
    /// time it starts from, which would make every pass within a second look like a new tick).
    fn due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now.trunc_subsecs(0), true)
            .ok()
            .map(|t| t.trunc_subsecs(0))
    }

    fn next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&now, false).ok()
    }
}

pub struct CronScheduler {
    store: Store,
    worker_id: String,
    schedules: Vec<Schedule>,
    /// This process's queue worker, woken when a tick enqueues a job.
    queue: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl CronScheduler {
    pub fn new(store: Store, worker_id: &str, schedules: Vec<Schedule>) -> Self {
        Self {
            store,
            worker_id: worker_id.to_owned(),
            schedules,
            queue: None,
        }
    }

    /// Wakes `queue` (a [`crate::QueueWorker::waker`]) whenever a tick enqueues a job, so this node runs it at
    /// once rather than at its next poll.
    pub fn waking(mut self, queue: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Fires every schedule whose latest due tick has not fired yet, if this node wins that tick. Returns the
    /// (schedule, tick) pairs this node fired.
    pub async fn tick(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<(String, DateTime<Utc>)>> {
        let mut fired = Vec::new();
        let paused = self.store.paused_cron_schedules().await?;
        for schedule in &self.schedules {
            let Some(due) = schedule.due(now) else {
                continue;
            };
            // A paused schedule's ticks pass unfired (and are not made up when it resumes).
            if paused.contains(&schedule.name) {
                continue;
            }
            if self.store.last_cron_tick(&schedule.name).await? >= Some(due) {
                continue;
            }
            if !self
                .store
                .claim_cron_tick(&schedule.name, due, &self.worker_id, now)
                .await?
            {
                continue;
            }
            let mut job = schedule.job.clone();
            job.run_at = now;
            job.unique_key = Some(cron_job_key(&schedule.name, schedule.exclusive, due));
            let Enqueued::New(id) = self.store.enqueue_job(&job, now).await? else {
                tracing::info!(schedule = %schedule.name, tick = %due, "previous run unfinished; tick skipped");
                continue;
            };
            self.store
                .record_cron_run(&schedule.name, id, schedule.next(now))
                .await?;
            if let Some(queue) = &self.queue {
                queue.notify_one();
            }
            // Routine: at DEBUG (a demo fires a dozen ticks a minute). What the job then does is logged by the job.
            tracing::debug!(schedule = %schedule.name, tick = %due, "cron fired");
            fired.push((schedule.name.clone(), due));
        }
        Ok(fired)
    }

    /// Declares this node's schedules for the operators' view (`/admin/cron`): pattern, job, next tick.
    pub async fn register(&self) -> anyhow::Result<()> {
        let now = Utc::now();
        for schedule in &self.schedules {
            let registration = CronRegistration {
                name: &schedule.name,
                pattern: &schedule.pattern,
                job: &schedule.job,
                exclusive: schedule.exclusive,
                next_at: schedule.next(now),
            };
            self.store
                .register_cron_schedule(&registration, now)
                .await?;
        }
        Ok(())
    }

    /// Declares the schedules, then ticks at each schedule's next occurrence (at least once a minute) until
    /// `cancel` fires.
    pub async fn run(&self, cancel: CancellationToken) -> anyhow::Result<()> {
        self.register().await?;
        while !cancel.is_cancelled() {
            let now = Utc::now();
            self.tick(now).await?;
            let next = self
                .schedules
                .iter()
                .filter_map(|s| s.next(now))
                .min()
                .and_then(|at| (at - now).to_std().ok())
                .unwrap_or(Duration::from_secs(60))
                .min(Duration::from_secs(60));
            tokio::select! {
                () = tokio::time::sleep(next) => {}
                () = cancel.cancelled() => {}
            }
        }
        Ok(())
    }
}
