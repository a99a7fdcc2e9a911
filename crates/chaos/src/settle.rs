//! The end of the soak: with the stream stopped and the faults cleared, wait (bounded) until the sentinel and
//! the outbox have finished what the faults left: no booking unsettled, no email unsent, no kept charge that is
//! not a confirmed booking's. Then read the evidence the checks judge.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::checks::Evidence;
use crate::cluster::Cluster;
use crate::evidence::{confirmation_emails, sandbox_charges, Database};

/// Where things stood when the wait ended.
pub struct Settled {
    pub took: Duration,
    /// Whether everything settled within the bound (otherwise the checks say what did not).
    pub complete: bool,
    pub last: String,
}

/// Polls every 2 s, up to `bound`.
pub async fn wait(cluster: &Cluster, db: &Database, bound: Duration) -> Settled {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < bound {
        match pending(cluster, db).await {
            Ok((0, 0, 0)) if cluster.all_running() => {
                return Settled {
                    took: started.elapsed(),
                    complete: true,
                    last: "settled".into(),
                };
            }
            Ok((unsettled, unsent, strays)) => {
                last = format!(
                    "{unsettled} bookings unsettled, {unsent} emails unsent, {strays} stray charges kept"
                );
            }
            Err(e) => last = format!("cannot read: {e:#}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Settled {
        took: started.elapsed(),
        complete: false,
        last,
    }
}

/// Unsettled bookings, unsent emails, and kept charges that are not their confirmed booking's.
async fn pending(cluster: &Cluster, db: &Database) -> anyhow::Result<(i64, i64, usize)> {
    let (unsettled, unsent) = (db.unsettled().await?, db.unsent_emails().await?);
    if unsettled > 0 || unsent > 0 {
        return Ok((unsettled, unsent, 0));
    }
    let bookings = db.bookings().await?;
    let own: HashMap<&str, Option<&str>> = bookings
        .iter()
        .filter(|b| b.status == "confirmed")
        .map(|b| (b.id.as_str(), b.charge_id.as_deref()))
        .collect();
    let strays = sandbox_charges(&cluster.sandbox_url)
        .await?
        .iter()
        .filter(|c| c.kept())
        .filter(|c| {
            let booking = c.booking_id.as_deref().and_then(|id| own.get(id));
            booking.copied().flatten() != Some(c.id.as_str())
        })
        .count();
    Ok((0, 0, strays))
}

pub async fn evidence(cluster: &Cluster, db: &Database) -> anyhow::Result<Evidence> {
    let (emails, other_emails) = confirmation_emails(&cluster.smtp.maildir);
    Ok(Evidence {
        bookings: db.bookings().await?,
        flights: db.flights().await?,
        charges: sandbox_charges(&cluster.sandbox_url).await?,
        emails,
        other_emails,
    })
}
