//! `chaos`: the chaos soak (`scripts/chaos` builds and runs it). A replicated deployment under a steady stream
//! of bookings from the API and the website, a fault drawn from a menu every few seconds, and at the end, once
//! the sentinel has settled everything, the booking promises checked against the soak's own record, the
//! provider's charges, the database and the mail server. Bounded: it stops by itself after `--duration` plus
//! the time to settle. Exits non-zero if any check fails.

mod api;
mod checks;
mod cluster;
mod evidence;
mod faults;
mod record;
mod report;
mod settle;
mod site;
mod stream;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use skybook_domain::{AirportCode, Currency, FlightNumber, Money, TenantSlug};
use skybook_storage::{NewFlight, PoolSettings, Store};

use crate::cluster::{Cluster, TENANT};
use crate::record::Record;
use crate::stream::{Clients, Flights, Stream, SMALL_CAPACITY};

#[derive(Parser)]
#[command(about = "The chaos soak: bookings under a fault menu, then the booking promises checked")]
struct Args {
    /// The `skybook` binary to run.
    #[arg(long)]
    skybook: PathBuf,
    /// How long the stream and the faults run, e.g. `10m`, `60s`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// Booking attempts started per second, across all clients.
    #[arg(long, default_value_t = 30.0)]
    rate: f64,
    #[arg(long, default_value_t = 12)]
    api_clients: usize,
    #[arg(long, default_value_t = 4)]
    site_clients: usize,
    /// Seeds the fault sequence (random if not given; the report names it).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the clusters, logs and record go (a fresh directory).
    #[arg(long)]
    out: PathBuf,
    /// What the report calls the build (`release`, `debug`).
    #[arg(long, default_value = "release")]
    build: String,
    /// The longest wait for the sentinel to settle everything after the stream.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    settle_bound: Duration,
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?}: expected e.g. 60s or 10m"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{raw:?}: the unit must be s, m or h")),
    }
}

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(soak(Args::parse())) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the soak; `Ok(passed)`.
async fn soak(args: Args) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&args.out).context("create the output directory")?;
    let dir = args.out.canonicalize()?;
    let exe = args
        .skybook
        .canonicalize()
        .with_context(|| format!("no skybook binary at {}", args.skybook.display()))?
        .to_string_lossy()
        .into_owned();
    let started = chrono::Utc::now();
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("chaos: starting the deployment in {}", dir.display());
    let cluster = Arc::new(Cluster::start(&exe, dir.clone()).await?);
    let flights = seed_flights(&cluster.database_url, &args).await?;
    cluster.start_processes().await?;
    let watching = Arc::new(AtomicBool::new(false));
    let watch = tokio::spawn(Arc::clone(&cluster).watch(Arc::clone(&watching)));

    eprintln!(
        "chaos: booking for {} s with faults (seed {seed})",
        args.duration.as_secs()
    );
    let record = Arc::new(Record::new());
    let stream = Arc::new(Stream::new(
        Arc::clone(&cluster),
        Arc::clone(&record),
        flights,
        args.rate,
    ));
    let clients = Clients::start(Arc::clone(&stream), args.api_clients, args.site_clients);
    let until = Instant::now() + args.duration;
    let injected = faults::run(Arc::clone(&cluster), Arc::clone(&record), until, seed).await;
    tokio::time::sleep_until(until.into()).await;
    let stream_time = record.start.elapsed();
    eprintln!("chaos: stopping the stream (each client finishes its attempt)");
    clients.finish().await;

    eprintln!("chaos: waiting for the sentinel to settle everything");
    let db = evidence::Database::connect(&cluster.database_url).await?;
    let settled = settle::wait(&cluster, &db, args.settle_bound).await;
    let evidence = settle::evidence(&cluster, &db).await?;
    let attempts = record.attempts();
    record.write(&dir.join("record.jsonl"))?;
    write_faults(&dir.join("faults.txt"), &injected)?;
    let exits = cluster.unexpected_exits();
    let incidents = cluster.incidents.lock().unwrap().clone();
    let checks = checks::run(&attempts, &evidence, &exits, &incidents);
    let run = report::Run {
        started,
        machine: machine(),
        build: args.build.clone(),
        postgres: db.version().await.unwrap_or_else(|e| format!("? ({e})")),
        stream: stream_time,
        rate: args.rate,
        api_clients: args.api_clients,
        site_clients: args.site_clients,
        seed,
        dir: dir.clone(),
    };
    let text = report::render(
        &run,
        &attempts,
        &injected,
        &settled,
        &evidence::sandbox_stats(&cluster.sandbox_url).await?,
        &db.alerts().await?,
        &checks,
    );
    std::fs::write(dir.join("report.txt"), &text)?;
    println!("{text}");
    watching.store(true, Ordering::Relaxed);
    let _ = watch.await;
    Ok(checks.iter().all(checks::Check::passed))
}

/// The tenant and its flights (DUB→LHR tomorrow): a few roomy ones, and enough small ones to keep selling out
/// for the whole run.
async fn seed_flights(database_url: &str, args: &Args) -> anyhow::Result<Flights> {
    let store = Store::connect(database_url, &PoolSettings::default()).await?;
    let tenant = store
        .ensure_tenant(
            &TenantSlug::parse(TENANT).expect("a valid slug"),
            "Chaos Air",
        )
        .await?;
    // About a fifth of the API's attempts book a small flight, two travellers on average.
    let seats = args.rate * args.duration.as_secs_f64() * 0.2 * 2.0;
    let small = ((seats / f64::from(SMALL_CAPACITY)).ceil() as usize + 3).min(9000);
    let roomy: Vec<String> = (1..=3).map(|i| format!("EI{i}")).collect();
    let small: Vec<String> = (0..small).map(|i| format!("CX{}", 1000 + i)).collect();
    let departs_at = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(9, 30, 0)
        .expect("a valid time")
        .and_utc();
    for (number, capacity) in roomy
        .iter()
        .map(|n| (n, 1_000_000))
        .chain(small.iter().map(|n| (n, SMALL_CAPACITY)))
    {
        let flight = NewFlight {
            number: FlightNumber::parse(number)?,
            origin: AirportCode::parse("DUB")?,
            destination: AirportCode::parse("LHR")?,
            departs_at,
            capacity,
            fare: Money::new(9599, Currency::parse("EUR")?),
        };
        store.ensure_flight(tenant.id, &flight).await?;
    }
    store.close().await;
    let ids: HashMap<String, String> = evidence::Database::connect(database_url)
        .await?
        .flights()
        .await?
        .into_iter()
        .map(|f| (f.number, f.id))
        .collect();
    let id = |number: &String| ids.get(number).cloned().context("a flight just added");
    Ok(Flights::new(
        roomy.iter().map(id).collect::<anyhow::Result<_>>()?,
        small.iter().map(id).collect::<anyhow::Result<_>>()?,
    ))
}

/// One line per fault injected: when (seconds into the stream), what, how long until cleared.
fn write_faults(path: &std::path::Path, injected: &[faults::Injected]) -> std::io::Result<()> {
    let lines: Vec<String> = injected
        .iter()
        .map(|f| {
            format!(
                "{:8.1} s  {:<44} {:6.1} s  {}{}",
                f.at_ms as f64 / 1000.0,
                f.fault.label(),
                f.took.as_secs_f64(),
                f.detail,
                f.error
                    .as_deref()
                    .map(|e| format!("  FAILED: {e}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n")
}

/// "2 cores, CPU model".
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}
