//! The importer in the background: feed types read and their tables made ready at startup (a bad declaration,
//! or one its table cannot follow, stops startup with one line), cron firing each feed's schedule, and the
//! jobs that fetch and import one tenant's feed for one day.
//!
//! A schedule's tick enqueues `import.schedule` for the feed (once per tick across nodes, as every cron job);
//! that job enqueues one `import.feed` per subscribed tenant with the unique key `import:<tenant>:<feed>:<date>`,
//! so however many nodes and ticks, a tenant's feed for a day is fetched by one job at a time. A worker killed
//! mid-import leaves its job to be rescued when its lease lapses: the import runs again from the start (the
//! killed run's load rolled back with its connection; its record is marked interrupted), and applies once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use skybook_clients::FeedClient;
use skybook_domain::ImportRunId;
use skybook_import::{FeedJob, FeedType, ImportRequest, Limits, Summary};
use skybook_storage::{
    Enqueued, ImportCounts, ImportOutcome, Job, NewImportRun, NewJob, StorageError, Store, Tenant,
};
use skybook_worker::{JobEvents, JobHandler, QueueWorker, Schedule};

use crate::cli::{FeedSourceArgs, FeedsArgs};
use crate::{config, wiring};

pub const SCHEDULE_JOB: &str = "import.schedule";
pub use skybook_import::FEED_JOB;

/// The feed types, and where their files come from.
#[derive(Clone)]
pub struct Imports {
    pub feeds: Arc<Vec<FeedType>>,
    /// `None` without `SKYBOOK_FEEDS_URL`: nothing is fetched, files are imported from the command line.
    pub client: Option<Arc<FeedClient>>,
}

/// Reads the feed types and makes their tables ready, and the feed endpoint's client from its settings; any
/// problem is one line naming it.
pub async fn prepare(store: &Store, feeds: &FeedsArgs, source: &FeedSourceArgs) -> Result<Imports> {
    let client = match config::feeds(source)? {
        Some((url, credentials)) => Some(wiring::feed_client(url, credentials)?),
        None => None,
    };
    ready(store, feeds.feeds_dir.as_deref(), client).await
}

/// Reads the feed types (built in, and from `feeds_dir`) and makes their tables ready.
pub async fn ready(
    store: &Store,
    feeds_dir: Option<&std::path::Path>,
    client: Option<FeedClient>,
) -> Result<Imports> {
    let types = skybook_import::load_all(feeds_dir)
        .map_err(|e| anyhow!("invalid feed declaration: {e}"))?;
    for feed in &types {
        store
            .ensure_feed_table(&feed.table)
            .await
            .map_err(|e| match e {
                StorageError::FeedSchema { .. } => {
                    anyhow!("feed declaration {} cannot be applied: {e}", feed.origin)
                }
                other => {
                    anyhow!(other).context(format!("preparing the table of feed {}", feed.name()))
                }
            })?;
    }
    Ok(Imports {
        feeds: Arc::new(types),
        client: client.map(Arc::new),
    })
}

/// Adds the import jobs to `queue` (when there is a feed endpoint to fetch from).
pub fn register(queue: QueueWorker, store: &Store, imports: &Imports) -> QueueWorker {
    let Some(client) = &imports.client else {
        return queue;
    };
    let events = queue.publisher();
    queue
        .handle(
            SCHEDULE_JOB,
            FanOut {
                store: store.clone(),
                feeds: Arc::clone(&imports.feeds),
            },
        )
        .handle(
            FEED_JOB,
            ImportFeed {
                store: store.clone(),
                feeds: Arc::clone(&imports.feeds),
                client: Arc::clone(client),
                events,
            },
        )
}

/// One cron schedule per feed type that declares one (when there is a feed endpoint to fetch from).
pub fn schedules(imports: &Imports) -> Result<Vec<Schedule>> {
    if imports.client.is_none() {
        return Ok(Vec::new());
    }
    let mut schedules = Vec::new();
    for feed in imports.feeds.iter() {
        let Some(pattern) = &feed.schedule else {
            continue;
        };
        let job = NewJob {
            queue: "default".into(),
            kind: SCHEDULE_JOB.into(),
            payload: serde_json::json!({ "feed": feed.name() }).to_string(),
            priority: 0,
            max_attempts: 5,
            run_at: Utc::now(),
            unique_key: None,
            tenant_id: None,
        };
        let schedule = Schedule::new(&format!("import.{}", feed.name()), pattern, job)
            .map_err(|e| anyhow!("invalid schedule of feed declaration {}: {e}", feed.origin))?;
        schedules.push(schedule.exclusive());
    }
    Ok(schedules)
}

/// A feed's tick: one import job per subscribed tenant for the tick's day.
struct FanOut {
    store: Store,
    feeds: Arc<Vec<FeedType>>,
}

#[async_trait::async_trait]
impl JobHandler for FanOut {
    async fn run(&self, job: &Job) -> Result<()> {
        #[derive(Deserialize)]
        struct Payload {
            feed: String,
        }
        let payload: Payload =
            serde_json::from_str(&job.payload).context("import.schedule payload")?;
        if !self.feeds.iter().any(|f| f.name() == payload.feed) {
            return Err(anyhow!(
                "no feed type {:?} (its declaration was removed?)",
                payload.feed
            ));
        }
        let date = job.run_at.date_naive();
        for tenant in self.store.tenants_subscribed_to(&payload.feed).await? {
            let new = FeedJob {
                tenant: tenant.id,
                feed: payload.feed.clone(),
                date,
            }
            .to_new_job(Utc::now());
            if let Enqueued::New(id) = self.store.enqueue_job(&new, Utc::now()).await? {
                tracing::info!(job.id = %id, tenant = %tenant.slug, feed = payload.feed, %date, "import enqueued");
            }
        }
        Ok(())
    }
}

/// Fetches and imports one tenant's feed for one day.
struct ImportFeed {
    store: Store,
    feeds: Arc<Vec<FeedType>>,
    client: Arc<FeedClient>,
    events: JobEvents,
}

#[async_trait::async_trait]
impl JobHandler for ImportFeed {
    async fn run(&self, job: &Job) -> Result<()> {
        let payload: FeedJob = serde_json::from_str(&job.payload).context("import.feed payload")?;
        let feed = self
            .feeds
            .iter()
            .find(|f| f.name() == payload.feed)
            .ok_or_else(|| anyhow!("no feed type {:?}", payload.feed))?;
        let tenant = self
            .store
            .tenant(payload.tenant)
            .await?
            .ok_or_else(|| anyhow!("no tenant {}", payload.tenant))?;
        let abandoned = self
            .store
            .abandon_import_runs(tenant.id, feed.name(), payload.date, Utc::now())
            .await?;
        if abandoned > 0 {
            tracing::warn!(tenant = %tenant.slug, feed = feed.name(), date = %payload.date, abandoned, "an earlier run of this import was interrupted; running it again");
        }
        // Progress as job events (the live dashboard) and in the log: at the first rows, then every second
        // (the log: every few seconds), and the totals once the run has ended.
        let throttle = std::sync::Mutex::new((None::<Instant>, None::<Instant>));
        let progress = |rows: u64, bytes: u64| {
            let mut last = throttle.lock().unwrap_or_else(|e| e.into_inner());
            let due = |at: Option<Instant>, every| at.is_none_or(|at| at.elapsed() >= every);
            if due(last.0, Duration::from_secs(1)) {
                last.0 = Some(Instant::now());
                self.events
                    .progress(job, progress_event(&tenant, feed, None, rows, bytes, false));
            }
            if due(last.1, Duration::from_secs(5)) {
                last.1 = Some(Instant::now());
                tracing::info!(job.id = %job.id, rows, bytes, "import progress");
            }
        };
        let Some(summary) = fetch_and_import(
            &self.store,
            &self.client,
            &tenant,
            feed,
            payload.date,
            &progress,
        )
        .await?
        else {
            return Ok(());
        };
        self.events.progress(
            job,
            progress_event(
                &tenant,
                feed,
                Some(&summary),
                summary.counts.read,
                summary.counts.bytes,
                true,
            ),
        );
        if summary.transient {
            // The database went away mid-run (nothing was applied): the queue retries the job with backoff.
            return Err(anyhow!(
                "the database was unavailable: {}",
                summary.error.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// An import job's progress event: `{"tenant", "feed", "rows", "bytes", "done"}`, and once done the run's id
/// and status.
fn progress_event(
    tenant: &Tenant,
    feed: &FeedType,
    summary: Option<&Summary>,
    rows: u64,
    bytes: u64,
    done: bool,
) -> serde_json::Value {
    serde_json::json!({
        "tenant": tenant.slug.as_str(),
        "feed": feed.name(),
        "rows": rows,
        "bytes": bytes,
        "done": done,
        "run": summary.and_then(|s| s.run).map(|run| run.to_string()),
        "status": summary.map(|s| s.status),
    })
}

/// Fetches `tenant`'s `feed` for `date` and imports it. `Err` when the fetch failed for a reason that may pass
/// (the endpoint is away: try again later); `Ok(None)` when the partner refused or sent what cannot be read,
/// recorded as a failed run (trying again would not help); otherwise the run's summary.
pub async fn fetch_and_import(
    store: &Store,
    client: &FeedClient,
    tenant: &Tenant,
    feed: &FeedType,
    date: NaiveDate,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Option<Summary>> {
    let limits = Limits::default();
    let (source, label) = match skybook_import::remote::download(
        client,
        tenant.slug.as_str(),
        feed,
        date,
        limits,
    )
    .await
    {
        Ok(found) => found,
        Err(e) if e.is_transient() => return Err(anyhow!(e).context("fetching the feed")),
        Err(e) => {
            let now = Utc::now();
            let run = NewImportRun {
                id: ImportRunId::new(),
                tenant_id: tenant.id,
                feed: feed.name().to_owned(),
                source: client
                    .url(tenant.slug.as_str(), feed.name(), date)
                    .to_string(),
                feed_date: Some(date),
                dry_run: false,
            };
            store.start_import_run(&run, now).await?;
            let outcome = ImportOutcome {
                status: "failed",
                counts: ImportCounts::default(),
                content_sha256: None,
                error: Some(skybook_domain::ErrorChain(&e).to_string()),
                header: None,
            };
            store
                .finish_import_run(run.id, &outcome, Utc::now())
                .await?;
            tracing::warn!(tenant = %tenant.slug, feed = feed.name(), error = %skybook_domain::ErrorChain(&e), "import failed");
            return Ok(None);
        }
    };
    let request = ImportRequest {
        run: ImportRunId::new(),
        tenant,
        feed,
        source: Arc::new(source),
        label,
        feed_date: Some(date),
        dry_run: false,
        limits,
    };
    let summary = skybook_import::run_import(store, request, progress).await?;
    tracing::info!(run.id = ?summary.run, tenant = %tenant.slug, feed = feed.name(), status = summary.status, read = summary.counts.read, rejected = summary.counts.rejected, "import finished");
    Ok(Some(summary))
}

#[cfg(test)]
mod tests;
