//! The report: plain text, ready to paste into bench/README.md.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::checks::Check;
use crate::faults::{counts, Injected};
use crate::record::{Answer, Attempt, Channel, Kind};
use crate::settle::Settled;

/// What the report says about the run itself.
pub struct Run {
    pub started: chrono::DateTime<chrono::Utc>,
    pub machine: String,
    pub build: String,
    pub postgres: String,
    pub stream: Duration,
    pub rate: f64,
    pub api_clients: usize,
    pub site_clients: usize,
    pub seed: u64,
    pub dir: std::path::PathBuf,
}

pub fn render(
    run: &Run,
    attempts: &[Attempt],
    faults: &[Injected],
    settled: &Settled,
    stats: &serde_json::Value,
    alerts: &BTreeMap<String, i64>,
    checks: &[Check],
) -> String {
    let mut out = String::new();
    let secs = run.stream.as_secs_f64();
    let _ = writeln!(
        out,
        "skybook chaos soak, {} ({}), {} build, seed {}",
        run.started.format("%Y-%m-%d %H:%M UTC"),
        run.machine,
        run.build,
        run.seed
    );
    let _ = writeln!(
        out,
        "deployment: PostgreSQL {} primary + synchronous standby behind a switchable endpoint; 2 serve nodes \
         (--no-workers), 1 worker; sandbox; SMTP server (aiosmtpd)",
        run.postgres
    );
    let _ = writeln!(
        out,
        "stream: {:.0} s, {} API clients + {} website visitors, paced at {} attempts/s",
        secs, run.api_clients, run.site_clients, run.rate
    );

    // The stream.
    let booked: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| !matches!(a.kind, Kind::Replay | Kind::DoubleClick))
        .filter(|a| matches!(a.answer, Answer::Booked { .. }))
        .collect();
    let per_channel = |c: Channel| attempts.iter().filter(|a| a.channel == c).count();
    let _ = writeln!(
        out,
        "  attempts: {} ({} API, {} website); {} requests, {} of them retries",
        attempts.len(),
        per_channel(Channel::Api),
        per_channel(Channel::Site),
        attempts.iter().map(|a| a.requests.len()).sum::<usize>(),
        attempts
            .iter()
            .map(|a| a.requests.len().saturating_sub(1))
            .sum::<usize>()
    );
    let _ = writeln!(out, "  answers: {}", answers(attempts));
    let windows = windows(&booked, run.stream);
    let _ = writeln!(
        out,
        "  bookings/s held: {:.1} new bookings acknowledged per second over the stream; per 10 s window min {:.1}, median {:.1}, max {:.1}",
        booked.len() as f64 / secs.max(1.0),
        windows.first().copied().unwrap_or_default(),
        windows.get(windows.len() / 2).copied().unwrap_or_default(),
        windows.last().copied().unwrap_or_default(),
    );
    let longest = booked
        .iter()
        .map(|a| a.finished_ms.saturating_sub(a.started_ms))
        .max()
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  slowest acknowledged booking: {:.1} s (retrying through the faults)",
        longest as f64 / 1000.0
    );

    // The faults.
    let _ = writeln!(
        out,
        "faults injected: {} ({} could not be)",
        faults.len(),
        faults.iter().filter(|f| f.error.is_some()).count()
    );
    for (fault, n) in counts(faults) {
        let _ = writeln!(out, "  {:<44} {n}", fault.label());
    }
    let _ = writeln!(
        out,
        "settling after the stream: {:.0} s ({}{})",
        settled.took.as_secs_f64(),
        if settled.complete { "" } else { "gave up: " },
        settled.last
    );
    let _ = writeln!(
        out,
        "provider: {} charges, {} declines, {} refunds, {} charge requests, {} idempotent replays, {} token requests failed",
        stats["charges"], stats["declines"], stats["refunds"], stats["charge_requests"],
        stats["idempotent_replays"], stats["token_requests_failed"]
    );
    let sweeps = crate::evidence::sentinel_sweeps(&run.dir);
    let _ = writeln!(
        out,
        "sentinel (every 2 s): {} sweeps, {} ticks skipped while a sweep still ran, longest gap between sweeps {:.1} s",
        sweeps.finished,
        sweeps.skipped,
        sweeps.longest_gap.as_secs_f64()
    );
    let alerts: Vec<String> = alerts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "alerts raised: {}",
        if alerts.is_empty() {
            "none".to_owned()
        } else {
            alerts.join(", ")
        }
    );

    // The verdict.
    let _ = writeln!(out, "checks:");
    for check in checks {
        let _ = writeln!(
            out,
            "  {} {}: {}  ({})",
            if check.passed() { "PASS" } else { "FAIL" },
            check.name,
            check.failures,
            check.summary
        );
        for example in &check.examples {
            let _ = writeln!(out, "       - {example}");
        }
    }
    let passed = checks.iter().all(Check::passed);
    let _ = writeln!(
        out,
        "{} (logs, record.jsonl and the clusters' files in {})",
        if passed {
            "ALL CHECKS PASSED"
        } else {
            "SOME CHECKS FAILED"
        },
        run.dir.display()
    );
    out
}

/// Final answers by kind, e.g. `201 x, 202 y, ...`.
fn answers(attempts: &[Attempt]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in attempts {
        let label = match (&a.answer, a.channel) {
            (Answer::Booked { status: 303, .. }, _) => "website booked".to_owned(),
            (Answer::Booked { status, .. }, _) => status.to_string(),
            (Answer::Declined { .. }, _) => "declined".into(),
            (Answer::PaymentFailed { .. }, _) => "payment failed".into(),
            (Answer::SoldOut, _) => "sold out".into(),
            (Answer::Duplicate { .. }, _) => "duplicate refused".into(),
            (Answer::Unexpected { status, .. }, _) => format!("unexpected {status}"),
            (Answer::Unanswered { .. }, _) => "unanswered".into(),
        };
        *counts.entry(label).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    parts.join(", ")
}

/// Acknowledged new bookings per second in each full 10 s window of the stream, sorted.
fn windows(booked: &[&Attempt], stream: Duration) -> Vec<f64> {
    let n = (stream.as_secs() / 10).max(1) as usize;
    let mut buckets = vec![0usize; n];
    for a in booked {
        if let Some(b) = buckets.get_mut((a.finished_ms / 10_000) as usize) {
            *b += 1;
        }
    }
    let mut rates: Vec<f64> = buckets.iter().map(|&c| c as f64 / 10.0).collect();
    rates.sort_by(f64::total_cmp);
    rates
}
