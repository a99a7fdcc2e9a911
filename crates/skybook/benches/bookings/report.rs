//! The report: each scenario's figures beside their reference and targets, and where the CPU went.

use std::time::Duration;

use crate::load::Measured;
use crate::pgbench::Ceiling;
use crate::{Knobs, POOL_SIZE};

/// One scenario's measurements.
pub(crate) struct Run<'a> {
    pub(crate) pg: &'a Measured,
    pub(crate) lite: &'a Measured,
    /// pgbench at as many connections as there are clients, and at skybook's pool size.
    pub(crate) at_clients: &'a Ceiling,
    pub(crate) at_pool: &'a Ceiling,
}

pub(crate) fn print(scenario: &str, knobs: &Knobs, run: &Run<'_>) {
    let Run {
        pg,
        lite,
        at_clients,
        at_pool,
    } = *run;
    // The database's best: the better of the two pgbench runs.
    let ceiling = at_clients.tps.max(at_pool.tps);
    println!();
    println!("== bookings {scenario} ==");
    println!(
        "{:<34} {:>12} {:>10} {:>10} {:>8}",
        "", "bookings/s", "p50", "p99", "errors"
    );
    println!(
        "{:<34} {:>12.0} {:>10} {:>10} {:>8}",
        "skybook HTTP API on PostgreSQL",
        pg.per_second(),
        ms(pg.p50),
        ms(pg.p99),
        pg.errors
    );
    let pgbench_label = |n: usize| format!("pgbench, same SQL, {n} connections");
    for (n, c) in [(knobs.clients, &at_clients), (POOL_SIZE, &at_pool)] {
        println!(
            "{:<34} {:>12.0}   CPU per booking: PostgreSQL {:.2} ms, whole machine {:.2} ms (stolen {:.2} ms)",
            pgbench_label(n),
            c.tps,
            c.postgres_ms,
            c.machine_ms,
            c.steal_ms
        );
    }
    println!(
        "{:<34} {:>12.0} {:>10} {:>10} {:>8}",
        "skybook HTTP API on SQLite",
        lite.per_second(),
        ms(lite.p50),
        ms(lite.p99),
        lite.errors
    );
    println!(
        "ratio to the PostgreSQL ceiling (the better pgbench): {:.3}   (target >= 0.5)",
        pg.per_second() / ceiling
    );
    println!(
        "p99 at {} clients on PostgreSQL: {}   (target < 100 ms)",
        knobs.clients,
        ms(pg.p99)
    );
    // A VM's CPU can be taken by the host: figures from a run where it was are not comparable.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let run_share = |m: &Measured| m.cpu.steal / ((knobs.warmup + knobs.seconds) as f64 * cores);
    let pgbench_share = |c: &Ceiling| c.steal_ms * c.tps / 1000.0 / cores;
    println!(
        "CPU the hypervisor took from this VM: {:.0}% during skybook on PostgreSQL, {:.0}% / {:.0}% during \
         pgbench ({} / {} connections), {:.0}% during skybook on SQLite",
        run_share(pg) * 100.0,
        pgbench_share(at_clients) * 100.0,
        pgbench_share(at_pool) * 100.0,
        knobs.clients,
        POOL_SIZE,
        run_share(lite) * 100.0
    );
    println!(
        "bookings measured: {} on PostgreSQL, {} on SQLite",
        pg.bookings, lite.bookings
    );
    for (engine, m) in [("PostgreSQL", &pg), ("SQLite", &lite)] {
        let per = |cpu: f64| cpu * 1000.0 / m.total_bookings.max(1) as f64;
        let c = &m.cpu;
        println!(
            "CPU per booking on {engine}: serve {:.2} ms, sandbox {:.2} ms, load generator {:.2} ms, \
             PostgreSQL {:.2} ms, the rest (kernel, and the database on SQLite) {:.2} ms, \
             whole machine {:.2} ms, of which the hypervisor stole {:.2} ms; peak RSS: serve {} MiB, \
             sandbox {} MiB",
            per(c.serve),
            per(c.sandbox),
            per(c.load),
            per(c.postgres),
            per(c.machine - c.serve - c.sandbox - c.load - c.postgres - c.steal),
            per(c.machine),
            per(c.steal),
            c.serve_rss_kib / 1024,
            c.sandbox_rss_kib / 1024
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
