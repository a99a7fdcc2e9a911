//! One import run, end to end. The run is recorded first; the source is read on a blocking thread (CSV parsing
//! and validation) while this task stages the rows it hands over, so parsing and loading overlap. Then the
//! file's repeated keys are found, the reject budget is checked, and the file is applied whole — or nothing is.
//!
//! The run's record and its rejects are written outside the load's transaction, after it has ended (committed
//! or rolled back): they survive a run that fails, and on SQLite the load's transaction holds the one writer.
//! Rejects wait in memory meanwhile; the budget bounds them (a run stops reading once past it).

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use skybook_domain::{ErrorChain, ImportRunId};
use skybook_storage::{
    FeedLoad, ImportCounts, ImportOutcome, ImportReject, NewImportRun, StorageError, Store, Tenant,
};
use tokio::sync::mpsc;

use crate::declaration::FeedType;
use crate::rows::{raw_rows, read_rows, Event};
use crate::source::{Limits, Source, SourceError};

/// Rejects kept in memory for a dry run's report (all are counted).
const DRY_RUN_REJECTS: usize = 10_000;
/// The feed whose rows are the tenant's bookable flights.
pub const CATALOG_FEED: &str = "flights";
/// How often a running run's rows so far are written to its record (PostgreSQL).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Rejects a run's summary shows (all are stored).
const SUMMARY_REJECTS: usize = 20;

/// What to import.
pub struct ImportRequest<'a> {
    /// The run's id, chosen by the caller (so it can point to the run before it ends): `ImportRunId::new()`.
    pub run: ImportRunId,
    pub tenant: &'a Tenant,
    pub feed: &'a FeedType,
    pub source: Arc<Source>,
    /// Where it came from, for the run's record: a path or a URL.
    pub label: String,
    pub feed_date: Option<NaiveDate>,
    /// Validate the whole file and report every reject; write nothing.
    pub dry_run: bool,
    pub limits: Limits,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Summary {
    /// `None` for a dry run (which records nothing).
    pub run: Option<ImportRunId>,
    /// `succeeded`, `failed` or `skipped`.
    pub status: &'static str,
    pub counts: ImportCounts,
    pub error: Option<String>,
    /// The first rejects (a dry run: up to 10,000), in file order.
    pub rejects: Vec<ImportReject>,
    /// It failed because the database was unavailable: running it again may succeed (a job retries).
    pub transient: bool,
}

/// Why a run could not even be recorded (the database is unavailable). A run that was recorded ends `failed`
/// with its error instead.
#[derive(Debug, thiserror::Error)]
#[error("import run could not be recorded")]
pub struct ImportError(#[from] pub StorageError);

/// The run's own failure, recorded with it.
#[derive(Debug)]
enum Failure {
    Source(SourceError),
    File(String),
    Budget(String),
    Storage(StorageError),
}

impl Failure {
    fn message(&self) -> String {
        match self {
            Self::Source(e) => e.to_string(),
            Self::File(m) | Self::Budget(m) => m.clone(),
            Self::Storage(e) => format!("database: {}", ErrorChain(e)),
        }
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// Runs one import; `progress(rows, bytes)` is called as the file is read.
pub async fn run_import(
    store: &Store,
    request: ImportRequest<'_>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Summary, ImportError> {
    begin_import(store, request).await?.finish(progress).await
}

/// The first half of [`run_import`]: the run recorded as `running` (a dry run records nothing), so it can be
/// pointed to before the file is read — [`Started::finish`] does the rest.
pub async fn begin_import<'a>(
    store: &Store,
    request: ImportRequest<'a>,
) -> Result<Started<'a>, ImportError> {
    if !request.dry_run {
        let new = NewImportRun {
            id: request.run,
            tenant_id: request.tenant.id,
            feed: request.feed.name().to_owned(),
            source: request.label.clone(),
            feed_date: request.feed_date,
            dry_run: false,
        };
        store.start_import_run(&new, Utc::now()).await?;
    }
    Ok(Started {
        store: store.clone(),
        request,
    })
}

/// A run recorded and not yet read: see [`begin_import`].
pub struct Started<'a> {
    store: Store,
    request: ImportRequest<'a>,
}

impl Started<'_> {
    /// Reads, checks and applies the file (or nothing), and records how the run ended.
    #[tracing::instrument(name = "import.run", skip_all, fields(run.id = %self.request.run, tenant = %self.request.tenant.slug, feed = self.request.feed.name()))]
    pub async fn finish(
        self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Summary, ImportError> {
        finish(&self.store, self.request, progress).await
    }
}

async fn finish(
    store: &Store,
    request: ImportRequest<'_>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Summary, ImportError> {
    let run = request.run;
    let mut state = State {
        counts: ImportCounts {
            bytes: request.source.input_bytes,
            ..ImportCounts::default()
        },
        rejects: Vec::new(),
        sha256: None,
        header: None,
    };
    let fresh = state.clone();
    let mut result = import(store, &request, run, &mut state, progress, true).await;
    if matches!(&result, Err(Failure::Storage(StorageError::RepeatedKey))) {
        // A first load went straight into the feed's table and met a key twice: rolled back. Through the
        // staging table this time, which names every repeat.
        tracing::info!(run.id = %run, "the file repeats a key: loading it again through the staging table");
        state = fresh;
        result = import(store, &request, run, &mut state, progress, false).await;
    }
    if !request.dry_run {
        state.rejects.sort_by_key(|r| r.line);
        store.add_import_rejects(run, &state.rejects).await?;
    }
    let (status, error) = match &result {
        Ok(status) => (*status, None),
        Err(failure) => ("failed", Some(failure.message())),
    };
    let transient = matches!(&result, Err(Failure::Storage(e)) if e.is_transient());
    if let Some(error) = &error {
        tracing::warn!(run.id = %run, error, "import failed");
    }
    state.rejects.sort_by_key(|r| r.line);
    let shown = if request.dry_run {
        DRY_RUN_REJECTS
    } else {
        SUMMARY_REJECTS
    };
    state.rejects.truncate(shown);
    let summary = Summary {
        run: (!request.dry_run).then_some(run),
        status,
        counts: state.counts,
        error: error.clone(),
        rejects: state.rejects,
        transient,
    };
    if !request.dry_run {
        let outcome = ImportOutcome {
            status,
            counts: summary.counts,
            content_sha256: state.sha256,
            error,
            header: state.header,
        };
        store.finish_import_run(run, &outcome, Utc::now()).await?;
    }
    Ok(summary)
}

#[derive(Clone)]
struct State {
    counts: ImportCounts,
    /// Every reject (a dry run: up to a cap), stored once the load has ended.
    rejects: Vec<ImportReject>,
    sha256: Option<String>,
    header: Option<String>,
}

impl State {
    fn keep(&mut self, rejects: Vec<ImportReject>, cap: usize) {
        let room = cap.saturating_sub(self.rejects.len());
        self.rejects.extend(rejects.into_iter().take(room));
    }
}

async fn import(
    store: &Store,
    request: &ImportRequest<'_>,
    run: ImportRunId,
    state: &mut State,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
    first_load_direct: bool,
) -> Result<&'static str, Failure> {
    let feed = request.feed;
    let cap = if request.dry_run {
        DRY_RUN_REJECTS
    } else {
        usize::MAX
    };
    let mut load: Option<FeedLoad> = if request.dry_run {
        None
    } else {
        store.ensure_feed_table(&feed.table).await?;
        Some(
            store
                .begin_feed_load(
                    &feed.table,
                    request.tenant.id,
                    run,
                    // The catalog's checks need the staging table.
                    first_load_direct && feed.name() != CATALOG_FEED,
                )
                .await?,
        )
    };

    // The reader thread: parses and validates, handing batches over a short queue (bounded memory).
    let (sender, mut events) = mpsc::channel::<Event>(4);
    let reader = {
        let (source, feed, max_row) = (
            Arc::clone(&request.source),
            feed.clone(),
            request.limits.max_row_bytes,
        );
        tokio::task::spawn_blocking(move || {
            source.read_with(|input| {
                read_rows(input, &feed, max_row, &mut |event| {
                    sender.blocking_send(event).is_ok()
                });
            })
        })
    };
    let mut done = false;
    let mut failure = None;
    let mut last_recorded = std::time::Instant::now();
    while let Some(event) = events.recv().await {
        match event {
            Event::Batch {
                rows,
                rejects,
                read,
                bytes,
            } => {
                state.counts.read = read;
                state.counts.rejected += rejects.len() as u64;
                state.keep(rejects, cap);
                if let Some(load) = &mut load {
                    for (line, values) in rows {
                        load.stage(line, values).await?;
                    }
                }
                progress(read, bytes);
                if !request.dry_run && last_recorded.elapsed() >= PROGRESS_EVERY {
                    last_recorded = std::time::Instant::now();
                    // Progress is for the eyes only: a failure to record it changes nothing of the run.
                    if let Err(e) = store
                        .record_import_progress(run, read, bytes, request.source.csv_bytes)
                        .await
                    {
                        tracing::debug!(error = %ErrorChain(&e), "import progress not recorded");
                    }
                }
                if !request.dry_run && state.counts.rejected > feed.budget.max_rejected {
                    failure = Some(over_budget(feed, state.counts.rejected, None));
                    break;
                }
            }
            Event::Done {
                read,
                bytes,
                sha256,
                header,
            } => {
                state.counts.read = read;
                progress(read, bytes);
                state.sha256 = Some(sha256);
                state.header = Some(header);
                done = true;
            }
            Event::Failed(message) => failure = Some(Failure::File(message)),
        }
    }
    drop(events);
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failure = failure.or(Some(Failure::Source(e))),
        Err(e) => failure = failure.or(Some(Failure::File(format!("the reader stopped: {e}")))),
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    if !done {
        return Err(Failure::File("the file ended unexpectedly".into()));
    }
    let Some(mut load) = load else {
        // A dry run: everything was read and checked.
        return Ok(
            if feed
                .budget
                .exceeded(state.counts.rejected, state.counts.read)
            {
                "failed"
            } else {
                "succeeded"
            },
        );
    };

    // Rows refused only once the whole file is staged: a key repeating an earlier row's, and (the `flights` feed
    // is the booking catalog) a capacity below the seats already sold.
    let key: Vec<&str> = feed.table.key_columns().map(|c| c.name.as_str()).collect();
    let mut late: Vec<(u64, String, String)> = load
        .later_duplicates()
        .await?
        .into_iter()
        .map(|(line, first)| {
            let reason =
                format!("the key repeats line {first}; the first row with a key is the one loaded");
            (line, key.join(","), reason)
        })
        .collect();
    if feed.name() == CATALOG_FEED {
        let short = load.as_catalog().await?;
        late.extend(
            short
                .into_iter()
                .map(|(line, reason)| (line, "capacity".to_owned(), reason)),
        );
    }
    if !late.is_empty() {
        let lines: Vec<u64> = late.iter().map(|(line, _, _)| *line).collect();
        let texts = read_raw(
            Arc::clone(&request.source),
            feed,
            request.limits.max_row_bytes,
            lines,
        )
        .await?;
        let rejects: Vec<ImportReject> = late
            .into_iter()
            .map(|(line, column, reason)| ImportReject {
                line: line as i64,
                column_name: Some(column),
                value: None,
                reason,
                raw: texts.get(&line).cloned().unwrap_or_default(),
            })
            .collect();
        state.counts.rejected += rejects.len() as u64;
        state.keep(rejects, cap);
    }
    if feed
        .budget
        .exceeded(state.counts.rejected, state.counts.read)
    {
        return Err(over_budget(
            feed,
            state.counts.rejected,
            Some(state.counts.read),
        ));
    }
    let sha256 = state.sha256.clone().unwrap_or_default();
    if let Some(earlier) = store
        .succeeded_import_with_content(request.tenant.id, feed.name(), &sha256)
        .await?
    {
        tracing::info!(run.id = %run, earlier = %earlier, "the same content was imported before; skipped");
        return Ok("skipped");
    }
    let counts = load.apply(feed.mode, Utc::now()).await?;
    state.counts.inserted = counts.inserted;
    state.counts.updated = counts.updated;
    state.counts.deleted = counts.deleted;
    Ok("succeeded")
}

fn over_budget(feed: &FeedType, rejected: u64, read: Option<u64>) -> Failure {
    let of = read.map_or_else(String::new, |read| format!(" of {read}"));
    Failure::Budget(format!(
        "{rejected} rejected row(s){of} exceed the feed's budget (at most {} rows and {}%): nothing applied",
        feed.budget.max_rejected,
        feed.budget.max_rejected_ratio * 100.0
    ))
}

async fn read_raw(
    source: Arc<Source>,
    feed: &FeedType,
    max_row: usize,
    lines: Vec<u64>,
) -> Result<std::collections::HashMap<u64, String>, Failure> {
    let feed = feed.clone();
    let texts = tokio::task::spawn_blocking(move || {
        source.read_with(|input| raw_rows(input, &feed, max_row, &lines))
    })
    .await
    .map_err(|e| Failure::File(format!("the reader stopped: {e}")))?
    .map_err(Failure::Source)?
    .map_err(|e| Failure::File(e.to_string()))?;
    Ok(texts)
}
