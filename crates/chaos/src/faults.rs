//! The fault menu and the loop that draws from it: every few seconds one fault, held a few seconds, then
//! cleared (a process fault is cleared by its restart, a database fault by recovery). Draws come from a
//! shuffled bag holding the whole menu (by weight), so every kind of fault occurs once per round however short
//! the soak, and a seed makes a run's sequence repeatable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::cluster::{Cluster, Slot};
use crate::record::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Sandbox5xx,
    LostChargeResponses,
    Latency,
    TokenEndpointDown,
    NodeSigkill,
    NodeSigterm,
    PostgresRestart,
    Failover,
}

impl Fault {
    /// Each fault with its weight in a round.
    const MENU: [(Fault, usize); 8] = [
        (Fault::Sandbox5xx, 1),
        (Fault::LostChargeResponses, 1),
        (Fault::Latency, 1),
        (Fault::TokenEndpointDown, 1),
        (Fault::NodeSigkill, 2),
        (Fault::NodeSigterm, 1),
        (Fault::PostgresRestart, 1),
        (Fault::Failover, 1),
    ];

    pub fn all() -> impl Iterator<Item = Fault> {
        Self::MENU.iter().map(|(f, _)| *f)
    }

    pub fn label(self) -> &'static str {
        match self {
            Fault::Sandbox5xx => "sandbox 5xx",
            Fault::LostChargeResponses => "lost charge responses",
            Fault::Latency => "provider latency",
            Fault::TokenEndpointDown => "token endpoint down",
            Fault::NodeSigkill => "serve node SIGKILLed + restarted",
            Fault::NodeSigterm => "serve node or worker SIGTERMed + restarted",
            Fault::PostgresRestart => "PostgreSQL primary restarted",
            Fault::Failover => "failover (kill, promote, switch, reseed)",
        }
    }
}

/// One fault as injected.
#[derive(Debug, Clone)]
pub struct Injected {
    pub fault: Fault,
    pub at_ms: u64,
    pub detail: String,
    /// From injecting to cleared.
    pub took: Duration,
    /// Why it could not be injected or cleared, if so.
    pub error: Option<String>,
}

/// Draws and injects faults until `until`; returns what it injected.
pub async fn run(
    cluster: Arc<Cluster>,
    record: Arc<Record>,
    until: Instant,
    seed: u64,
) -> Vec<Injected> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bag: Vec<Fault> = Vec::new();
    let mut injected = Vec::new();
    loop {
        let gap = Duration::from_millis(rng.random_range(2000..5000));
        if Instant::now() + gap >= until {
            break;
        }
        tokio::time::sleep(gap).await;
        if bag.is_empty() {
            for (fault, weight) in Fault::MENU {
                bag.extend(std::iter::repeat_n(fault, weight));
            }
            bag.shuffle(&mut rng);
        }
        let fault = bag.pop().expect("a refilled bag");
        let at_ms = record.now_ms();
        let started = Instant::now();
        let (detail, error) = match inject(&cluster, fault, &mut rng).await {
            Ok(detail) => (detail, None),
            Err((detail, e)) => (detail, Some(e)),
        };
        let done = Injected {
            fault,
            at_ms,
            detail,
            took: started.elapsed(),
            error,
        };
        eprintln!(
            "chaos: {:>6.1} s  {} ({}; {:.1} s){}",
            at_ms as f64 / 1000.0,
            fault.label(),
            done.detail,
            done.took.as_secs_f64(),
            done.error
                .as_deref()
                .map(|e| format!(" FAILED: {e}"))
                .unwrap_or_default()
        );
        if let Some(e) = &done.error {
            cluster.incident(format!("{} could not be injected: {e}", fault.label()));
        }
        injected.push(done);
    }
    if let Err(e) = set_sandbox_faults(&cluster, json!({})).await {
        cluster.incident(format!("clearing the sandbox's faults failed: {e}"));
    }
    injected
}

type Outcome = Result<String, (String, String)>;

async fn inject(cluster: &Arc<Cluster>, fault: Fault, rng: &mut StdRng) -> Outcome {
    let hold = Duration::from_millis(rng.random_range(2000..6000));
    match fault {
        Fault::Sandbox5xx => {
            let n = charges_hit(rng);
            sandbox_window(cluster, json!({ "fail_next_charges": n }), hold).await
        }
        Fault::LostChargeResponses => {
            let n = charges_hit(rng);
            sandbox_window(cluster, json!({ "lose_next_charge_responses": n }), hold).await
        }
        Fault::Latency => {
            // Slow, slower, and past the payment client's 10 s timeout (an unknown outcome).
            let ms = [500, 3000, 12000][rng.random_range(0..3)];
            sandbox_window(cluster, json!({ "latency_ms": ms }), hold).await
        }
        Fault::TokenEndpointDown => {
            // With every token revoked, skybook must fetch one while the endpoint is down.
            let faults = json!({ "token_endpoint_down": true, "revoke_tokens": true });
            sandbox_window(cluster, faults, hold).await
        }
        Fault::NodeSigkill => {
            // A serve node, not the worker: a worker killed between the SMTP server's acceptance of an email
            // and its record of it sends that email again once the lease lapses (same Message-ID; delivery is
            // at least once, `skybook-notify`'s outbox), which the one-email-per-booking check counts. Seen in
            // a soak that killed the worker too; the worker's own crash tests cover its jobs.
            let slot = Slot::Serve(rng.random_range(0..2));
            let down = Duration::from_millis(rng.random_range(0..2000));
            let detail = format!("{}, down {} ms", slot.name(), down.as_millis());
            match cluster.sigkill_and_restart(slot, down).await {
                Ok(()) => Ok(detail),
                Err(e) => Err((detail, e)),
            }
        }
        Fault::NodeSigterm => {
            let slot = Slot::ALL[rng.random_range(0..Slot::ALL.len())];
            let detail = slot.name();
            match cluster.sigterm_and_restart(slot).await {
                Ok(()) => Ok(detail),
                Err(e) => Err((detail, e)),
            }
        }
        Fault::PostgresRestart => {
            let detail = format!("{:?} member", cluster.primary());
            match cluster.restart_primary().await {
                Ok(()) => Ok(detail),
                Err(e) => Err((detail, e)),
            }
        }
        Fault::Failover => {
            let from = cluster.primary();
            match cluster.fail_over().await {
                Ok(dark) => Ok(format!(
                    "{from:?} -> {:?}, endpoint dark {} ms",
                    from.other(),
                    dark.as_millis()
                )),
                Err(e) => Err((format!("from {from:?}"), e)),
            }
        }
    }
}

/// How many charge requests a charge fault hits: a few (scattered; the pipeline's retries ride them out), or
/// every one while it lasts (an outage: bookings whose retries all fail within their budget end unknown, 202,
/// or abandoned unpaid, and the sentinel or the client's retry settles them).
fn charges_hit(rng: &mut StdRng) -> u32 {
    if rng.random_bool(0.5) {
        rng.random_range(2..12)
    } else {
        1_000_000
    }
}

/// Sets `faults` at the sandbox, holds them for `hold`, then clears them.
async fn sandbox_window(cluster: &Cluster, faults: serde_json::Value, hold: Duration) -> Outcome {
    let detail = format!("{faults} for {} ms", hold.as_millis());
    if let Err(e) = set_sandbox_faults(cluster, faults).await {
        return Err((detail, e));
    }
    tokio::time::sleep(hold).await;
    match set_sandbox_faults(cluster, json!({})).await {
        Ok(()) => Ok(detail),
        Err(e) => Err((detail, e)),
    }
}

pub async fn set_sandbox_faults(
    cluster: &Cluster,
    faults: serde_json::Value,
) -> Result<(), String> {
    let response = reqwest::Client::new()
        .post(format!("{}/sandbox/faults", cluster.sandbox_url))
        .json(&faults)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the sandbox answered {}", response.status()))
    }
}

/// How many of each fault were injected (every kind listed, zeros included).
pub fn counts(injected: &[Injected]) -> BTreeMap<Fault, usize> {
    let mut counts: BTreeMap<Fault, usize> = Fault::all().map(|f| (f, 0)).collect();
    for i in injected {
        *counts.entry(i.fault).or_default() += 1;
    }
    counts
}
