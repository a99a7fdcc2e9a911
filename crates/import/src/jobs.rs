//! What is shared about imports as jobs and as files to fix, by whoever enqueues an import (a schedule's
//! fan-out, the admin's re-run) and whoever runs it (the binary's handler), and by everyone who hands a run's
//! rejects back to the partner (the command line, the admin).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use skybook_domain::TenantId;
use skybook_storage::{ImportReject, NewJob};

/// The kind of the job that fetches and imports one tenant's feed for one day.
pub const FEED_JOB: &str = "import.feed";

/// An [`FEED_JOB`]'s payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedJob {
    pub tenant: TenantId,
    pub feed: String,
    pub date: NaiveDate,
}

impl FeedJob {
    /// The job, due at `now`, unique per tenant, feed and day: however many nodes and ticks ask, one such import
    /// is queued or running at a time.
    pub fn to_new_job(&self, now: DateTime<Utc>) -> NewJob {
        NewJob {
            queue: "default".into(),
            kind: FEED_JOB.into(),
            // A struct of a uuid, a name and a date always serialises.
            payload: serde_json::to_string(self).unwrap_or_default(),
            priority: 0,
            max_attempts: 8,
            run_at: now,
            unique_key: Some(format!(
                "import:{}:{}:{}",
                self.tenant, self.feed, self.date
            )),
            tenant_id: Some(self.tenant),
        }
    }
}

/// A run's rejected rows as a CSV ready to fix and re-send: the file's header, then each rejected row's line as
/// it was, once however many reasons it has.
pub fn rejects_csv(header: Option<&str>, rejects: &[ImportReject]) -> String {
    let mut out = String::new();
    if let Some(header) = header {
        out.push_str(header);
        out.push('\n');
    }
    let mut last = None;
    for reject in rejects {
        if last != Some(reject.line) {
            out.push_str(&reject.raw);
            out.push('\n');
            last = Some(reject.line);
        }
    }
    out
}
