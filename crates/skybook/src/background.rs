//! The background loops, each under one supervisor that restarts it after an error or panic: the job queue
//! (which runs the sentinel's jobs), cron (which enqueues them, once per tick across nodes), the outbox sender,
//! alert delivery and housekeeping. Run by `serve` (unless `--no-workers`), `demo` and `worker`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use skybook_booking::{BookingService, SentinelConfig};
use skybook_domain::RetryPolicy;
use skybook_notify::{
    AlertChannels, AlertDispatcher, AlertDispatcherConfig, FileMailer, Mailer, OutboxSender,
    OutboxSenderConfig, SmtpMailer,
};
use skybook_storage::{Job, Store, JOBS_CHANNEL, OUTBOX_CHANNEL};
use skybook_worker::{
    CronScheduler, JobHandler, QueueWorker, QueueWorkerConfig, Supervisor, Wakeups,
};
use tokio_util::sync::CancellationToken;

use crate::config::{BackgroundConfig, MailTransport, SENTINEL_JOB};

/// How long finished jobs and fired cron ticks are kept.
const RETENTION: chrono::Duration = chrono::Duration::days(7);
/// How often the housekeeping loops run.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(3600);

/// The mailer `config` asks for (`None`: emails stay in the outbox).
pub fn mailer(config: &BackgroundConfig) -> Result<Option<Arc<dyn Mailer>>> {
    Ok(match &config.mail {
        MailTransport::Smtp(url) => Some(Arc::new(
            SmtpMailer::new(url, config.mail_from.clone())
                .context("invalid SKYBOOK_SMTP_URL (--smtp-url)")?,
        )),
        MailTransport::Files(dir) => Some(Arc::new(FileMailer::new(
            dir.clone(),
            config.mail_from.clone(),
        ))),
        MailTransport::Off => None,
    })
}

/// Runs the sentinel's sweep as a job.
struct SentinelJob {
    bookings: BookingService,
    config: SentinelConfig,
}

#[async_trait::async_trait]
impl JobHandler for SentinelJob {
    async fn run(&self, _job: &Job) -> Result<()> {
        self.bookings.sentinel_sweep(&self.config).await?;
        Ok(())
    }
}

/// A job for crash tests (`SKYBOOK_ENABLE_FAULT_INJECTION=1`): payload `{"log": PATH, "millis": N}`. Appends
/// `start` to the log, sleeps, then appends `done`, so a test that kills the worker mid-job can count runs.
const SLOW_JOB: &str = "debug.slow";

struct SlowJob;

#[async_trait::async_trait]
impl JobHandler for SlowJob {
    async fn run(&self, job: &Job) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Payload {
            log: std::path::PathBuf,
            millis: u64,
        }
        let payload: Payload = serde_json::from_str(&job.payload).context("debug.slow payload")?;
        let append = |line: String| {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&payload.log)?;
            writeln!(file, "{line}")
        };
        append(format!(
            "start {} attempt {} at {}",
            job.id,
            job.attempts,
            chrono::Utc::now().to_rfc3339()
        ))?;
        tokio::time::sleep(Duration::from_millis(payload.millis)).await;
        append(format!("done {}", job.id))?;
        Ok(())
    }
}

/// Starts every background loop. Stop them with [`Supervisor::shutdown`].
pub fn start(
    store: &Store,
    bookings: BookingService,
    config: BackgroundConfig,
) -> Result<Supervisor> {
    let mailer = mailer(&config)?;
    // A loop's panic is stored as a crash report before the supervisor restarts it.
    skybook_crash::record_background_panics(store.clone());
    let mut supervisor = Supervisor::new(RetryPolicy {
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        max_retries: 0,
        max_elapsed: Duration::ZERO,
    });

    let queue_config = QueueWorkerConfig {
        lease: config.job_lease,
        ..QueueWorkerConfig::default()
    };
    let refingerprinter = bookings.clone();
    let mut queue = QueueWorker::new(store.clone(), queue_config).handle(
        SENTINEL_JOB,
        SentinelJob {
            bookings,
            config: config.sentinel.clone(),
        },
    );
    if config.fault_injection {
        queue = queue.handle(SLOW_JOB, SlowJob);
    }
    let mut schedules = vec![config.sentinel_schedule.clone()];
    if let Some(imports) = &config.imports {
        queue = crate::imports::register(queue, store, imports);
        schedules.extend(crate::imports::schedules(imports)?);
    }
    let queue = Arc::new(queue);
    let worker_id = queue.worker_id().to_owned();
    tracing::info!(worker_id, "background workers starting");
    supervisor.spawn("queue", {
        let queue = Arc::clone(&queue);
        move |cancel| {
            let queue = Arc::clone(&queue);
            async move { queue.run(cancel).await }
        }
    });

    let cron =
        Arc::new(CronScheduler::new(store.clone(), &worker_id, schedules).waking(queue.waker()));
    supervisor.spawn("cron", move |cancel| {
        let cron = Arc::clone(&cron);
        async move { cron.run(cancel).await }
    });

    let mut wakeups = Wakeups::new().on(JOBS_CHANNEL, queue.waker());
    match &mailer {
        Some(mailer) => {
            let sender = Arc::new(OutboxSender::new(
                store.clone(),
                Arc::clone(mailer),
                OutboxSenderConfig::default(),
            ));
            wakeups = wakeups.on(OUTBOX_CHANNEL, sender.waker());
            supervisor.spawn("outbox", move |cancel| {
                let sender = Arc::clone(&sender);
                async move { sender.run(cancel).await }
            });
        }
        None => tracing::warn!(
            "no SKYBOOK_SMTP_URL: confirmation emails stay in the outbox (the sentinel alerts on them)"
        ),
    }

    let wakeups = Arc::new(wakeups);
    supervisor.spawn("wakeups", {
        let store = store.clone();
        move |cancel| {
            let (wakeups, store) = (Arc::clone(&wakeups), store.clone());
            async move {
                wakeups.run(&store, cancel.clone()).await?;
                // SQLite: nothing to listen to; stay idle until shutdown rather than be restarted.
                cancel.cancelled().await;
                Ok(())
            }
        }
    });

    let channels = AlertChannels {
        webhook: config.webhook.clone(),
        ops_email: match (&config.ops_email, &mailer) {
            (Some(to), Some(mailer)) => Some((to.clone(), Arc::clone(mailer))),
            _ => None,
        },
    };
    let dispatcher = Arc::new(AlertDispatcher::new(
        store.clone(),
        reqwest::Client::new(),
        channels,
        AlertDispatcherConfig::default(),
    ));
    supervisor.spawn("alerts", move |cancel| {
        let dispatcher = Arc::clone(&dispatcher);
        async move { dispatcher.run(cancel).await }
    });

    supervisor.spawn(
        "sessions-purge",
        housekeeping(store, |store| async move {
            store
                .delete_expired_sessions()
                .await
                .context("purging sessions")?;
            Ok(())
        }),
    );
    supervisor.spawn(
        "prune",
        housekeeping(store, |store| async move {
            let before = chrono::Utc::now() - RETENTION;
            let jobs = store.prune_jobs(before).await.context("pruning jobs")?;
            let ticks = store
                .prune_cron_ticks(before)
                .await
                .context("pruning cron ticks")?;
            let crashes = store
                .prune_crash_reports(chrono::Utc::now() - skybook_crash::REPORT_RETENTION)
                .await
                .context("pruning crash reports")?;
            tracing::debug!(
                jobs,
                ticks,
                crashes,
                "finished jobs, old cron ticks and old crash reports pruned"
            );
            Ok(())
        }),
    );
    supervisor.spawn("refingerprint", move |cancel| {
        let bookings = refingerprinter.clone();
        async move {
            // At start (a deploy that changed the fingerprint's form), then hourly for stragglers; a pass that
            // finds nothing costs one indexed read.
            loop {
                bookings
                    .refingerprint_legacy()
                    .await
                    .context("fingerprinting live bookings again")?;
                tokio::select! {
                    () = tokio::time::sleep(HOUSEKEEPING_PERIOD) => {}
                    () = cancel.cancelled() => return Ok(()),
                }
            }
        }
    });
    Ok(supervisor)
}

/// A loop that runs `work` now and then every [`HOUSEKEEPING_PERIOD`].
fn housekeeping<W, Fut>(
    store: &Store,
    work: W,
) -> impl Fn(CancellationToken) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send>>
       + Send
       + 'static
where
    W: Fn(Store) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let store = store.clone();
    move |cancel: CancellationToken| {
        let store = store.clone();
        Box::pin(async move {
            loop {
                work(store.clone()).await?;
                tokio::select! {
                    () = tokio::time::sleep(HOUSEKEEPING_PERIOD) => {}
                    () = cancel.cancelled() => return Ok(()),
                }
            }
        })
    }
}
