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

use anyhow::{anyhow, Context, Result};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use skybook_clients::FeedClient;
use skybook_domain::{ImportRunId, TenantId};
use skybook_import::{FeedType, ImportRequest, Limits};
use skybook_storage::{
    Enqueued, ImportCounts, ImportOutcome, Job, NewImportRun, NewJob, StorageError, Store,
};
use skybook_worker::{JobHandler, QueueWorker, Schedule};

use crate::cli::{FeedSourceArgs, FeedsArgs};
use crate::{config, wiring};

pub const SCHEDULE_JOB: &str = "import.schedule";
pub const FEED_JOB: &str = "import.feed";

/// The feed types, and where their files come from.
#[derive(Clone)]
pub struct Imports {
    pub feeds: Arc<Vec<FeedType>>,
    /// `None` without `SKYBOOK_FEEDS_URL`: nothing is fetched, files are imported from the command line.
    pub client: Option<Arc<FeedClient>>,
}

/// Reads the feed types and makes their tables ready; any problem is one line naming it.
pub async fn prepare(store: &Store, feeds: &FeedsArgs, source: &FeedSourceArgs) -> Result<Imports> {
    let types = skybook_import::load_all(feeds.feeds_dir.as_deref())
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
    let client = match config::feeds(source)? {
        Some((url, credentials)) => Some(Arc::new(wiring::feed_client(url, credentials)?)),
        None => None,
    };
    Ok(Imports {
        feeds: Arc::new(types),
        client,
    })
}

/// Adds the import jobs to `queue` (when there is a feed endpoint to fetch from).
pub fn register(queue: QueueWorker, store: &Store, imports: &Imports) -> QueueWorker {
    let Some(client) = &imports.client else {
        return queue;
    };
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
        };
        let schedule = Schedule::new(&format!("import.{}", feed.name()), pattern, job)
            .map_err(|e| anyhow!("invalid schedule of feed declaration {}: {e}", feed.origin))?;
        schedules.push(schedule.exclusive());
    }
    Ok(schedules)
}

#[derive(Serialize, Deserialize)]
struct FeedPayload {
    tenant: TenantId,
    feed: String,
    date: NaiveDate,
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
            let body = FeedPayload {
                tenant: tenant.id,
                feed: payload.feed.clone(),
                date,
            };
            let new = NewJob {
                queue: "default".into(),
                kind: FEED_JOB.into(),
                payload: serde_json::to_string(&body)?,
                priority: 0,
                max_attempts: 8,
                run_at: Utc::now(),
                unique_key: Some(format!("import:{}:{}:{date}", tenant.id, payload.feed)),
            };
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
}

#[async_trait::async_trait]
impl JobHandler for ImportFeed {
    async fn run(&self, job: &Job) -> Result<()> {
        let payload: FeedPayload =
            serde_json::from_str(&job.payload).context("import.feed payload")?;
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
        let now = Utc::now();
        let abandoned = self
            .store
            .abandon_import_runs(tenant.id, feed.name(), payload.date, now)
            .await?;
        if abandoned > 0 {
            tracing::warn!(tenant = %tenant.slug, feed = feed.name(), date = %payload.date, abandoned, "an earlier run of this import was interrupted; running it again");
        }
        let limits = Limits::default();
        let (source, label) = match skybook_import::remote::download(
            &self.client,
            tenant.slug.as_str(),
            feed,
            payload.date,
            limits,
        )
        .await
        {
            Ok(found) => found,
            // The endpoint is away: the job is retried later with the queue's backoff.
            Err(e) if e.is_transient() => return Err(anyhow!(e).context("fetching the feed")),
            // The partner refused, or sent what cannot be read: a failed run, recorded; not retried.
            Err(e) => {
                let url = self
                    .client
                    .url(tenant.slug.as_str(), feed.name(), payload.date)
                    .to_string();
                let run = NewImportRun {
                    id: ImportRunId::new(),
                    tenant_id: tenant.id,
                    feed: feed.name().to_owned(),
                    source: url,
                    feed_date: Some(payload.date),
                    dry_run: false,
                };
                self.store.start_import_run(&run, now).await?;
                let outcome = ImportOutcome {
                    status: "failed",
                    counts: ImportCounts::default(),
                    content_sha256: None,
                    error: Some(skybook_domain::ErrorChain(&e).to_string()),
                    header: None,
                };
                self.store
                    .finish_import_run(run.id, &outcome, Utc::now())
                    .await?;
                tracing::warn!(tenant = %tenant.slug, feed = feed.name(), error = %skybook_domain::ErrorChain(&e), "import failed");
                return Ok(());
            }
        };
        let request = ImportRequest {
            tenant: &tenant,
            feed,
            source: Arc::new(source),
            label,
            feed_date: Some(payload.date),
            dry_run: false,
            limits,
        };
        // Progress in the log: at the first rows, then every few seconds.
        let last = std::sync::Mutex::new(None::<std::time::Instant>);
        let progress = |rows: u64, bytes: u64| {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(5)) {
                *last = Some(std::time::Instant::now());
                tracing::info!(job.id = %job.id, rows, bytes, "import progress");
            }
        };
        let summary = skybook_import::run_import(&self.store, request, &progress).await?;
        tracing::info!(run.id = ?summary.run, tenant = %tenant.slug, feed = feed.name(), status = summary.status, read = summary.counts.read, rejected = summary.counts.rejected, "import finished");
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
