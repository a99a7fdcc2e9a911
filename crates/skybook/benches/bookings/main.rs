//! Booking throughput: N concurrent clients create distinct bookings through the HTTP API of a real
//! `skybook serve` process (with the sandbox as its own process), and in the same run `pgbench` executes the
//! same SQL per booking against the same PostgreSQL — the database's own ceiling. Prints bookings/s, p50/p99
//! latency and the ratio, then the same figures on SQLite (whose ceiling is not measured: no pgbench).
//!
//! Run with `scripts/bench-bookings` (it starts a PostgreSQL cluster with production-like durability and sets
//! `SKYBOOK_TEST_PG_URL`). Knobs: `BENCH_CLIENTS` (32), `BENCH_SECONDS` (10), `BENCH_WARMUP_SECONDS` (2).

mod cpu;
mod load;
mod pgbench;
mod report;
mod seed;

use anyhow::Result;
use skybook_testkit::Engine;

use crate::load::run_skybook;
use crate::pgbench::pgbench;

/// skybook's default PostgreSQL pool size.
pub(crate) const POOL_SIZE: usize = skybook_storage::PoolSettings::DEFAULT_MAX_CONNECTIONS as usize;

pub(crate) struct Knobs {
    pub(crate) clients: usize,
    pub(crate) seconds: u64,
    pub(crate) warmup: u64,
}

pub(crate) fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` passes --bench; test runners probing every target (--list, or none) get nothing to run.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let knobs = Knobs {
        clients: knob("BENCH_CLIENTS", 32) as usize,
        seconds: knob("BENCH_SECONDS", 10),
        warmup: knob("BENCH_WARMUP_SECONDS", 2),
    };
    println!(
        "booking benchmark: {} clients, {} s measured after {} s warm-up, {} cores",
        knobs.clients,
        knobs.seconds,
        knobs.warmup,
        std::thread::available_parallelism()?
    );

    // Bookings spread over many flights (a normal day), then all on one flight (a flash sale: every booking
    // updates the same row, which serialises them in any database).
    for (scenario, flights) in [("spread over 100 flights", 100), ("one hot flight", 1)] {
        let pg_url = skybook_testkit::fresh_database_url(Engine::Postgres, "bench").await;
        let (pg, seeded) = run_skybook(&pg_url, flights, &knobs, "postgres").await?;
        // The database's best: pgbench with as many connections as there are clients, and with as many as
        // skybook's pool holds (a pool in front of PostgreSQL is part of using it well).
        let at_clients = pgbench(&pg_url, &seeded, &knobs, knobs.clients)?;
        let at_pool = pgbench(&pg_url, &seeded, &knobs, POOL_SIZE)?;
        let sqlite_url = skybook_testkit::fresh_database_url(Engine::Sqlite, "bench").await;
        let (lite, _) = run_skybook(&sqlite_url, flights, &knobs, "sqlite").await?;

        report::print(
            scenario,
            &knobs,
            &report::Run {
                pg: &pg,
                lite: &lite,
                at_clients: &at_clients,
                at_pool: &at_pool,
            },
        );
    }
    Ok(())
}
