//! Captured crashes (panics), each stored as a report and counted in its group. A group is keyed by a
//! fingerprint the caller computes (message template and location), so one bug hit a thousand times is one
//! line in the admin with a count, not a thousand.
//!
//! Retention: a group keeps its count for good, but only its [`CrashGroup::SAMPLES_KEPT`] newest reports, and
//! [`Store::prune_crash_reports`] deletes reports past their age. A bug hit on every request (or by anyone who
//! finds one on a public page) then costs a few rows, not one report per hit forever.

use chrono::{DateTime, Utc};
use skybook_domain::CrashId;

use crate::backend::{on_pool, on_tx, on_writer};
use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct NewCrash {
    pub fingerprint: String,
    pub message: String,
    /// `file:line:column` of the panic.
    pub location: String,
    pub backtrace: String,
    /// The request's matched route, method, tenant slug and id, when the panic happened in a request.
    pub route: Option<String>,
    pub method: Option<String>,
    pub tenant: Option<String>,
    pub request_id: Option<String>,
    /// The background loop or task name, when it happened outside a request.
    pub task: Option<String>,
    /// The build that crashed (`skybook 0.1.0`).
    pub release: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CrashGroup {
    pub fingerprint: String,
    pub message: String,
    pub location: String,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub last_request_id: Option<String>,
}

impl CrashGroup {
    /// How many reports a group keeps: its newest. Enough to compare a few occurrences (which request, tenant,
    /// release); the count says how often it happened.
    pub const SAMPLES_KEPT: i64 = 5;
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CrashReport {
    pub id: CrashId,
    pub fingerprint: String,
    pub message: String,
    pub location: String,
    pub backtrace: String,
    pub route: Option<String>,
    pub method: Option<String>,
    pub tenant: Option<String>,
    pub request_id: Option<String>,
    pub task: Option<String>,
    pub release: String,
    pub occurred_at: DateTime<Utc>,
}

impl Store {
    /// Stores the report and counts it in its group, keeping only the group's [`CrashGroup::SAMPLES_KEPT`]
    /// newest reports by `now` (a late report of an older crash may be the one dropped). Returns the group's
    /// count, this crash included (1: a new group). The group's last request is the latest crash's by `now`,
    /// whatever order concurrent reports commit in.
    pub async fn record_crash(&self, crash: &NewCrash, now: DateTime<Utc>) -> Result<i64> {
        let mut tx = self.begin().await?;
        let group = "INSERT INTO crash_groups (fingerprint, message, location, count, first_seen, last_seen, \
                     last_request_id) VALUES ($1, $2, $3, 1, $4, $4, $5) \
                     ON CONFLICT (fingerprint) DO UPDATE SET count = crash_groups.count + 1, \
                     last_seen = CASE WHEN excluded.last_seen >= crash_groups.last_seen \
                         THEN excluded.last_seen ELSE crash_groups.last_seen END, \
                     last_request_id = CASE WHEN excluded.last_seen >= crash_groups.last_seen \
                         THEN excluded.last_request_id ELSE crash_groups.last_request_id END \
                     RETURNING count";
        let count: i64 = on_tx!(tx, c => sqlx::query_scalar(group)
            .bind(&crash.fingerprint).bind(&crash.message).bind(&crash.location).bind(now)
            .bind(&crash.request_id).fetch_one(c).await)?;
        let report = "INSERT INTO crash_reports (id, fingerprint, message, location, backtrace, route, method, \
                      tenant, request_id, task, release, occurred_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        on_tx!(tx, c => sqlx::query(report)
            .bind(CrashId::new()).bind(&crash.fingerprint).bind(&crash.message).bind(&crash.location)
            .bind(&crash.backtrace).bind(&crash.route).bind(&crash.method).bind(&crash.tenant)
            .bind(&crash.request_id).bind(&crash.task).bind(&crash.release).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        // In the same transaction, after the group's upsert: on PostgreSQL that upsert holds the group's row
        // lock until commit, so reports of one group are trimmed one transaction at a time and each sees the
        // others' rows (SQLite has one writer anyway). The id breaks ties between reports of the same instant.
        let trim = "DELETE FROM crash_reports WHERE fingerprint = $1 AND id NOT IN \
                    (SELECT id FROM crash_reports WHERE fingerprint = $1 \
                     ORDER BY occurred_at DESC, id DESC LIMIT $2)";
        on_tx!(tx, c => sqlx::query(trim)
            .bind(&crash.fingerprint).bind(CrashGroup::SAMPLES_KEPT)
            .execute(c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(count)
    }

    /// Deletes crash reports that occurred before `before`; their groups and counts stay. Returns how many.
    pub async fn prune_crash_reports(&self, before: DateTime<Utc>) -> Result<u64> {
        let sql = "DELETE FROM crash_reports WHERE occurred_at < $1";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(before).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Crash groups, most recently seen first.
    pub async fn crash_groups(&self, limit: i64) -> Result<Vec<CrashGroup>> {
        let sql =
            "SELECT fingerprint, message, location, count, first_seen, last_seen, last_request_id \
                   FROM crash_groups ORDER BY last_seen DESC LIMIT $1";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).bind(limit).fetch_all(c).await)?)
    }

    /// A group's newest reports.
    pub async fn crash_reports(&self, fingerprint: &str, limit: i64) -> Result<Vec<CrashReport>> {
        let sql = "SELECT id, fingerprint, message, location, backtrace, route, method, tenant, request_id, task, \
                   release, occurred_at FROM crash_reports WHERE fingerprint = $1 \
                   ORDER BY occurred_at DESC LIMIT $2";
        Ok(
            on_pool!(&self.backend, c => sqlx::query_as(sql).bind(fingerprint).bind(limit).fetch_all(c).await)?,
        )
    }
}
