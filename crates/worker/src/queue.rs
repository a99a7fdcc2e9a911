//! The job queue's worker: claim, run with a heartbeat, record the outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use futures::FutureExt;
use skybook_domain::{JobId, RetryPolicy, TenantId};
use skybook_storage::{Job, Store};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one kind of job. Must be idempotent: a job whose worker died mid-run is run again elsewhere.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &Job) -> anyhow::Result<()>;
}

/// A job's state change, published in-process (for the live dashboard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    Started {
        id: JobId,
        /// The tenant the job is for (the dashboards show a tenant's operator only its own).
        tenant: Option<TenantId>,
        kind: String,
        attempt: i32,
    },
    Done {
        id: JobId,
        tenant: Option<TenantId>,
        kind: String,
    },
    Retrying {
        id: JobId,
        tenant: Option<TenantId>,
        kind: String,
        error: String,
    },
    Failed {
        id: JobId,
        tenant: Option<TenantId>,
        kind: String,
        error: String,
    },
    /// A running job's own report of how far it has come (an import: rows and bytes so far).
    Progress {
        id: JobId,
        tenant: Option<TenantId>,
        kind: String,
        progress: serde_json::Value,
    },
}

impl JobEvent {
    /// The event as the dashboards receive it (`Store::publish_event`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Started {
                id,
                tenant,
                kind,
                attempt,
            } => {
                json!({ "type": "job", "id": id, "tenant": tenant, "kind": kind, "state": "running", "attempt": attempt })
            }
            Self::Done { id, tenant, kind } => {
                json!({ "type": "job", "id": id, "tenant": tenant, "kind": kind, "state": "done" })
            }
            Self::Retrying {
                id,
                tenant,
                kind,
                error,
            } => {
                json!({ "type": "job", "id": id, "tenant": tenant, "kind": kind, "state": "queued", "error": error })
            }
            Self::Failed {
                id,
                tenant,
                kind,
                error,
            } => {
                json!({ "type": "job", "id": id, "tenant": tenant, "kind": kind, "state": "failed", "error": error })
            }
            Self::Progress {
                id,
                tenant,
                kind,
                progress,
            } => {
                json!({ "type": "progress", "id": id, "tenant": tenant, "kind": kind, "progress": progress })
            }
        }
    }
}

/// Lets a handler publish [`JobEvent::Progress`] for the job it runs. Cheap to clone; publishing with nobody
/// listening costs next to nothing.
#[derive(Clone)]
pub struct JobEvents {
    local: broadcast::Sender<JobEvent>,
    store: Store,
}

impl JobEvents {
    pub fn progress(&self, job: &Job, progress: serde_json::Value) {
        self.emit(JobEvent::Progress {
            id: job.id,
            tenant: job.tenant_id,
            kind: job.kind.clone(),
            progress,
        });
    }

    /// To this process's subscribers ([`QueueWorker::events`]), and to every node's dashboards (queued there,
    /// sent in the background: a job never waits for its dashboard).
    fn emit(&self, event: JobEvent) {
        self.store.publish_event(&event.to_json());
        let _ = self.local.send(event);
    }
}

#[derive(Debug, Clone)]
pub struct QueueWorkerConfig {
    pub queue: String,
    /// How long a claimed job is ours without a heartbeat; renewed every third of it while a handler runs.
    pub lease: Duration,
    /// Jobs claimed per round.
    pub batch: i64,
    /// Sleep when the queue is empty (ended early through [`QueueWorker::waker`]).
    pub idle_poll: Duration,
    /// Backoff between a job's attempts (jitter added).
    pub retry: RetryPolicy,
}

impl Default for QueueWorkerConfig {
    fn default() -> Self {
        Self {
            queue: "default".into(),
            lease: Duration::from_secs(60),
            batch: 8,
            idle_poll: Duration::from_secs(1),
            retry: RetryPolicy {
                initial_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(300),
                max_retries: 10,
                max_elapsed: Duration::from_secs(3600),
            },
        }
    }
}

pub struct QueueWorker {
    store: Store,
    config: QueueWorkerConfig,
    worker_id: String,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    events: broadcast::Sender<JobEvent>,
    wake: Arc<tokio::sync::Notify>,
}

impl QueueWorker {
    /// A worker with a fresh id (a restarted process never inherits its predecessor's leases).
    pub fn new(store: Store, config: QueueWorkerConfig) -> Self {
        Self {
            store,
            config,
            worker_id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            handlers: HashMap::new(),
            events: broadcast::channel(1024).0,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn handle(mut self, kind: &str, handler: impl JobHandler) -> Self {
        self.handlers.insert(kind.to_owned(), Arc::new(handler));
        self
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    pub fn events(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    /// What a handler publishes its progress through (give it to the handler before [`Self::handle`]).
    pub fn publisher(&self) -> JobEvents {
        JobEvents {
            local: self.events.clone(),
            store: self.store.clone(),
        }
    }

    /// Notify it to end the worker's idle wait early (a job was enqueued: [`crate::Wakeups`] on a notification,
    /// or cron in this process).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.wake)
    }

    /// Runs until `cancel` fires: claims and runs batches, waiting `idle_poll` when there is nothing to do.
    ///
    /// At `cancel` (the process is shutting down) the batch in hand is dropped where it stands and its jobs are
    /// handed back, so another node takes them over at once rather than after their leases: handlers are
    /// idempotent, and a transaction a dropped handler had open rolls back.
    pub async fn run(&self, cancel: CancellationToken) -> anyhow::Result<()> {
        while !cancel.is_cancelled() {
            let ran = tokio::select! {
                ran = self.run_once() => ran?,
                () = cancel.cancelled() => break,
            };
            if ran == 0 {
                tokio::select! {
                    () = tokio::time::sleep(self.config.idle_poll) => {}
                    () = self.wake.notified() => {}
                    () = cancel.cancelled() => {}
                }
            }
        }
        let handed_back = self
            .store
            .release_job_leases(&self.worker_id, Utc::now())
            .await?;
        if handed_back > 0 {
            tracing::info!(
                handed_back,
                "shutting down: running jobs handed back to the queue"
            );
        }
        Ok(())
    }

    /// Claims one batch and runs it to the end (handlers concurrently). Returns how many jobs ran.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        // At trace level only, as the round begins: a test reads it to know the worker has looked at its queue
        // since some moment (a round logged after that moment claims after it).
        tracing::trace!(queue = %self.config.queue, "claim round");
        let lease = chrono::Duration::from_std(self.config.lease)?;
        let jobs = self
            .store
            .claim_jobs(
                &self.config.queue,
                &self.worker_id,
                Utc::now(),
                lease,
                self.config.batch,
            )
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        // Stopped when this round ends, however it ends (an error, or the round's future dropped at shutdown):
        // a heartbeat left running would keep renewing leases on jobs nobody runs any more.
        let _heartbeat = AbortOnDrop(self.heartbeat());
        let outcomes = join_all(jobs.iter().map(|job| self.run_job(job))).await;
        for outcome in outcomes {
            outcome?;
        }
        Ok(jobs.len())
    }

    /// Renews this worker's leases every third of the lease while its handlers run.
    fn heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let (store, worker, lease) = (
            self.store.clone(),
            self.worker_id.clone(),
            self.config.lease,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
                if let Err(e) = store.renew_job_leases(&worker, until).await {
                    tracing::warn!(error = %skybook_domain::ErrorChain(&e), "job lease renewal failed");
                }
            }
        })
    }

    #[tracing::instrument(name = "job.run", skip_all, fields(job.id = %job.id, job.kind = %job.kind, attempt = job.attempts))]
    async fn run_job(&self, job: &Job) -> anyhow::Result<()> {
        self.publisher().emit(JobEvent::Started {
            id: job.id,
            tenant: job.tenant_id,
            kind: job.kind.clone(),
            attempt: job.attempts,
        });
        let result = match self.handlers.get(&job.kind) {
            // A panicking handler is a failed run like any other (retried, then failed for good); the panic hook
            // has already logged and recorded it.
            Some(handler) => std::panic::AssertUnwindSafe(handler.run(job))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    Err(anyhow::anyhow!(
                        "job handler panicked: {}",
                        skybook_domain::panic_message(panic.as_ref())
                    ))
                }),
            None => Err(anyhow::anyhow!("no handler for job kind {:?}", job.kind)),
        };
        let now = Utc::now();
        let (id, tenant, kind) = (job.id, job.tenant_id, job.kind.clone());
        match result {
            Ok(()) => {
                if self
                    .store
                    .complete_job(job.id, &self.worker_id, now)
                    .await?
                {
                    self.publisher().emit(JobEvent::Done { id, tenant, kind });
                } else {
                    tracing::warn!("job finished after its lease was taken over; the other run's outcome stands");
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                let retry_at = (job.attempts < job.max_attempts
                    && self.handlers.contains_key(&job.kind))
                .then(|| {
                    now + chrono::Duration::from_std(
                        self.config
                            .retry
                            .attempt_delay(job.attempts.max(1) as u32, rand::random()),
                    )
                    .unwrap_or_default()
                });
                if self
                    .store
                    .fail_job(job.id, &self.worker_id, &error, retry_at, now)
                    .await?
                {
                    tracing::warn!(%error, retry = retry_at.is_some(), "job failed");
                    self.publisher().emit(match retry_at {
                        Some(_) => JobEvent::Retrying {
                            id,
                            tenant,
                            kind,
                            error,
                        },
                        None => JobEvent::Failed {
                            id,
                            tenant,
                            kind,
                            error,
                        },
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every job event names its tenant: a tenant operator's dashboard stream is filtered by it.
    #[test]
    fn every_job_event_carries_its_tenant() {
        let (id, tenant, kind) = (JobId::new(), Some(TenantId::new()), "k".to_owned());
        let events = [
            JobEvent::Started {
                id,
                tenant,
                kind: kind.clone(),
                attempt: 1,
            },
            JobEvent::Done {
                id,
                tenant,
                kind: kind.clone(),
            },
            JobEvent::Retrying {
                id,
                tenant,
                kind: kind.clone(),
                error: "e".into(),
            },
            JobEvent::Failed {
                id,
                tenant,
                kind: kind.clone(),
                error: "e".into(),
            },
            JobEvent::Progress {
                id,
                tenant,
                kind,
                progress: serde_json::json!({}),
            },
        ];
        for event in events {
            let json = event.to_json();
            assert_eq!(json["tenant"], tenant.unwrap().to_string(), "{json}");
            assert_eq!(json["id"], id.to_string(), "{json}");
        }
    }
}
