//! What the checks read besides the soak's own record: the database (straight SQL, through the read-write
//! endpoint, so after any number of failovers it is the current primary), the sandbox's charges (its API, as
//! the provider's own books), and the SMTP server's Maildir.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::cluster::TENANT;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Booking {
    pub id: String,
    pub reference: String,
    pub status: String,
    pub flight_id: String,
    pub seats: i64,
    pub charge_id: Option<String>,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Flight {
    pub id: String,
    pub number: String,
    pub capacity: i64,
    pub seats_sold: i64,
}

/// A charge as the provider has it, with the booking it was made for (skybook's metadata).
#[derive(Debug, Clone)]
pub struct Charge {
    pub id: String,
    pub succeeded: bool,
    pub amount: i64,
    pub amount_refunded: i64,
    pub booking_id: Option<String>,
    pub entity: Option<String>,
}

impl Charge {
    /// Money the customer is still out of.
    pub fn kept(&self) -> bool {
        self.succeeded && self.amount_refunded < self.amount
    }
}

pub struct Database {
    pool: PgPool,
}

impl Database {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .context("connect to the database through the endpoint")?;
        Ok(Self { pool })
    }

    pub async fn bookings(&self) -> anyhow::Result<Vec<Booking>> {
        Ok(sqlx::query_as(
            "SELECT b.id::text AS id, b.reference, b.status, b.flight_id::text AS flight_id, \
             b.seats::bigint AS seats, b.charge_id, b.failure_reason \
             FROM bookings b JOIN tenants t ON t.id = b.tenant_id WHERE t.slug = $1",
        )
        .bind(TENANT)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn flights(&self) -> anyhow::Result<Vec<Flight>> {
        Ok(sqlx::query_as(
            "SELECT f.id::text AS id, f.number, f.capacity::bigint AS capacity, \
             f.seats_sold::bigint AS seats_sold \
             FROM flights f JOIN tenants t ON t.id = f.tenant_id WHERE t.slug = $1",
        )
        .bind(TENANT)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Bookings still `seat_held` or `payment_pending`.
    pub async fn unsettled(&self) -> anyhow::Result<i64> {
        self.count("SELECT count(*) FROM bookings WHERE status IN ('seat_held', 'payment_pending')")
            .await
    }

    /// Outbox emails neither handed to the SMTP server nor failed for good.
    pub async fn unsent_emails(&self) -> anyhow::Result<i64> {
        self.count("SELECT count(*) FROM outbox_emails WHERE sent_at IS NULL AND failed_at IS NULL")
            .await
    }

    async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }

    pub async fn version(&self) -> anyhow::Result<String> {
        Ok(sqlx::query_scalar("SHOW server_version")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Alerts raised, by kind.
    pub async fn alerts(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, count(*) FROM alerts GROUP BY kind ORDER BY kind")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }
}

/// Every charge the sandbox has made, through its API with a token of its own.
pub async fn sandbox_charges(sandbox_url: &str) -> anyhow::Result<Vec<Charge>> {
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{sandbox_url}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "skybook"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("the sandbox issued no access token")?;
    let list: Value = http
        .get(format!("{sandbox_url}/v1/charges"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let data = list["data"]
        .as_array()
        .context("the sandbox's charge list has no data")?;
    Ok(data
        .iter()
        .map(|c| {
            let meta = |k: &str| c["metadata"][k].as_str().map(str::to_owned);
            Charge {
                id: c["id"].as_str().unwrap_or_default().to_owned(),
                succeeded: c["status"] == "succeeded",
                amount: c["amount"].as_i64().unwrap_or_default(),
                amount_refunded: c["amount_refunded"].as_i64().unwrap_or_default(),
                booking_id: meta("booking_id"),
                entity: meta("entity_fingerprint"),
            }
        })
        .collect())
}

/// The sandbox's `/sandbox/stats`.
pub async fn sandbox_stats(sandbox_url: &str) -> anyhow::Result<Value> {
    Ok(reqwest::get(format!("{sandbox_url}/sandbox/stats"))
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Confirmation emails the SMTP server accepted, by booking reference (from the subject skybook gives them,
/// "Booking REF confirmed: ..."), each with its Message-ID; and how many messages were not confirmations.
pub fn confirmation_emails(maildir: &Path) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut by_reference: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut others = 0;
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let header = |name: &str| {
                text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            };
            let reference = header("Subject").and_then(|s| {
                let rest = s.strip_prefix("Booking ")?;
                let (reference, tail) = rest.split_once(' ')?;
                tail.starts_with("confirmed").then(|| reference.to_owned())
            });
            match reference {
                Some(reference) => by_reference
                    .entry(reference)
                    .or_default()
                    .push(header("Message-ID").unwrap_or_default()),
                None => others += 1,
            }
        }
    }
    (by_reference, others)
}

/// What the worker logs say about the sentinel: sweeps finished, cron ticks skipped because the previous
/// sweep was still running, and the longest gap between two sweeps finishing (a sweep's duration, when ticks
/// are being skipped).
pub struct Sweeps {
    pub finished: usize,
    pub skipped: usize,
    pub longest_gap: std::time::Duration,
}

pub fn sentinel_sweeps(dir: &Path) -> Sweeps {
    let mut times = Vec::new();
    let mut skipped = 0;
    let logs = std::fs::read_dir(dir).into_iter().flatten().flatten();
    for entry in logs.filter(|e| e.file_name().to_string_lossy().starts_with("worker.")) {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines() {
            if line.contains("\"previous run unfinished; tick skipped\"")
                && line.contains("sentinel")
            {
                skipped += 1;
            } else if line.contains("\"message\":\"sentinel sweep") {
                let at = serde_json::from_str::<Value>(line).ok().and_then(|v| {
                    chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()
                });
                times.extend(at);
            }
        }
    }
    times.sort();
    let longest_gap = times
        .windows(2)
        .map(|w| (w[1] - w[0]).to_std().unwrap_or_default())
        .max()
        .unwrap_or_default();
    Sweeps {
        finished: times.len(),
        skipped,
        longest_gap,
    }
}
