//! `skybook import`: run one import in the foreground (`run`), and look at feed types (`feeds`), runs (`runs`)
//! and a run's rejected rows (`rejects`, as CSV ready to fix and re-send).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use skybook_domain::{ImportRunId, TenantSlug};
use skybook_import::{FeedType, ImportRequest, Limits, Source};
use skybook_storage::{ImportRunFilter, Store};

use crate::cli::{
    DatabaseArgs, FeedsArgs, ImportCommand, ImportRejectsArgs, ImportRunArgs, ImportRunsArgs,
};
use crate::config;
use crate::wiring::{self, Schema};

pub async fn run(command: ImportCommand) -> Result<()> {
    match command {
        ImportCommand::Run(args) => run_one(args).await,
        ImportCommand::Feeds(args) => feeds(&args),
        ImportCommand::Runs(args) => runs(args).await,
        ImportCommand::Rejects(args) => rejects(args).await,
    }
}

/// The feed types, or one line naming the declaration that is wrong.
pub fn feed_types(args: &FeedsArgs) -> Result<Vec<FeedType>> {
    Ok(skybook_import::load_all(args.feeds_dir.as_deref())?)
}

/// The one named `name`.
pub fn feed_type(args: &FeedsArgs, name: &str) -> Result<FeedType> {
    let feeds = feed_types(args)?;
    let names: Vec<String> = feeds.iter().map(|f| f.name().to_owned()).collect();
    feeds
        .into_iter()
        .find(|f| f.name() == name)
        .with_context(|| format!("no feed type {name:?}; declared: {}", names.join(", ")))
}

pub async fn store(database: &DatabaseArgs) -> Result<Store> {
    let url = config::database_url(config::required(
        "SKYBOOK_DATABASE_URL (--database-url)",
        &database.database_url,
    )?)?;
    let pool = config::pool(database.database_max_connections.as_deref())?;
    wiring::connect(&url, &pool, Schema::MigrateSqliteOnly).await
}

async fn run_one(args: ImportRunArgs) -> Result<()> {
    let feed = feed_type(&args.feeds, &args.feed)?;
    let slug = TenantSlug::parse(&args.tenant)
        .map_err(|e| anyhow::anyhow!("invalid --tenant {:?}: {}", args.tenant, e.message()))?;
    let limits = Limits::default();
    let (source, label, feed_date) = match (&args.file, &args.date) {
        (Some(file), _) => {
            let source = Source::from_file(file, feed.entry.as_deref(), limits)
                .with_context(|| format!("cannot import {}", file.display()))?;
            (source, file.display().to_string(), None)
        }
        (None, Some(date)) => {
            let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| anyhow::anyhow!("invalid --date {date:?}: expected YYYY-MM-DD"))?;
            let (url, credentials) = config::feeds(&args.source)?.context(
                "--date needs SKYBOOK_FEEDS_URL (--feeds-url): where the partners' feeds are",
            )?;
            let client = wiring::feed_client(url, credentials)?;
            let (source, url) =
                skybook_import::remote::download(&client, slug.as_str(), &feed, date, limits)
                    .await
                    .with_context(|| {
                        format!("cannot fetch {slug}'s {} feed for {date}", feed.name())
                    })?;
            (source, url, Some(date))
        }
        (None, None) => bail!("give --file PATH or --date YYYY-MM-DD"),
    };
    let store = store(&args.database).await?;
    let tenant = store
        .tenant_by_slug(&slug)
        .await?
        .with_context(|| format!("no tenant {slug} (create it with `skybook tenant create`)"))?;
    let progress = Progress::new();
    let started = Instant::now();
    let request = ImportRequest {
        run: ImportRunId::new(),
        tenant: &tenant,
        feed: &feed,
        source: Arc::new(source),
        label,
        feed_date,
        dry_run: args.dry_run,
        limits,
    };
    let summary =
        skybook_import::run_import(&store, request, &|rows, bytes| progress.update(rows, bytes))
            .await?;
    progress.finish();
    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
    let c = &summary.counts;
    let run = summary
        .run
        .map_or_else(|| "dry run".to_owned(), |r| format!("run {r}"));
    println!(
        "{run}: {} — {} read, {} inserted, {} updated, {} deleted, {} rejected ({:.1} MB in {elapsed:.1} s, {:.0} rows/s)",
        summary.status,
        c.read,
        c.inserted,
        c.updated,
        c.deleted,
        c.rejected,
        c.bytes as f64 / 1e6,
        c.read as f64 / elapsed
    );
    if let Some(error) = &summary.error {
        println!("error: {error}");
    }
    if !summary.rejects.is_empty() {
        let shown = if args.dry_run {
            "rejected rows"
        } else {
            "first rejected rows"
        };
        println!("{shown}:");
        for r in &summary.rejects {
            let column = r
                .column_name
                .as_deref()
                .map_or_else(String::new, |c| format!(", {c}"));
            let value = r
                .value
                .as_deref()
                .map_or_else(String::new, |v| format!(" {v:?}"));
            println!("  line {}{column}{value}: {}", r.line, r.reason);
        }
    }
    store.close().await;
    match summary.status {
        "succeeded" | "skipped" => Ok(()),
        _ => bail!("import {}", summary.status),
    }
}

/// A progress bar on a terminal; a plain line every few seconds otherwise (a log, a pipe).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn update(&self, rows: u64, bytes: u64) {
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let text = format!(
            "{rows} rows, {rate:.0} rows/s, {:.1} MB",
            bytes as f64 / 1e6
        );
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(2) {
                    *last = Instant::now();
                    eprintln!("{text}");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn feeds(args: &FeedsArgs) -> Result<()> {
    for feed in feed_types(args)? {
        let key: Vec<&str> = feed.table.key_columns().map(|c| c.name.as_str()).collect();
        println!(
            "{} ({}; key {}; {:?}; schedule {})",
            feed.name(),
            feed.origin,
            key.join(", "),
            feed.mode,
            feed.schedule.as_deref().unwrap_or("none")
        );
        for column in &feed.table.columns {
            let required = if column.required { ", required" } else { "" };
            println!("  {} {}{required}", column.name, column.ty.name());
        }
    }
    Ok(())
}

async fn runs(args: ImportRunsArgs) -> Result<()> {
    let store = store(&args.database).await?;
    let tenant = match &args.tenant {
        Some(slug) => {
            let slug = TenantSlug::parse(slug)
                .map_err(|e| anyhow::anyhow!("invalid --tenant {slug:?}: {}", e.message()))?;
            Some(
                store
                    .tenant_by_slug(&slug)
                    .await?
                    .with_context(|| format!("no tenant {slug}"))?,
            )
        }
        None => None,
    };
    let limit: i64 = args
        .limit
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --limit {:?}: expected a whole number from 1 to 10000",
                args.limit
            )
        })?;
    let filter = ImportRunFilter {
        tenant_id: tenant.map(|t| t.id),
        feed: args.feed.clone(),
        status: None,
        limit,
    };
    for run in store.import_runs(&filter).await? {
        println!(
            "{} {} {} {} read={} inserted={} updated={} deleted={} rejected={}{}",
            run.id,
            run.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            run.feed,
            run.status,
            run.rows_read,
            run.rows_inserted,
            run.rows_updated,
            run.rows_deleted,
            run.rows_rejected,
            run.error
                .map_or_else(String::new, |e| format!(" error={e:?}"))
        );
    }
    store.close().await;
    Ok(())
}

async fn rejects(args: ImportRejectsArgs) -> Result<()> {
    let id: ImportRunId = args.run.parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid run id {:?}: expected a UUID from `skybook import runs`",
            args.run
        )
    })?;
    let store = store(&args.database).await?;
    let run = store
        .import_run(id)
        .await?
        .with_context(|| format!("no import run {id}"))?;
    let rejects = store.import_rejects(id).await?;
    print!(
        "{}",
        skybook_import::rejects_csv(run.header.as_deref(), &rejects)
    );
    store.close().await;
    Ok(())
}
