//! Captured crashes (panics), each stored as a report and counted in its group. A group is keyed by a
//! fingerprint the caller computes (message template and location), so one bug hit a thousand times is one
//! line in the admin with a count, not a thousand.

use chrono::{DateTime, Utc};
use skybook_domain::CrashId;

use crate::backend::{on_pool, on_tx};
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
    /// Stores the report and counts it in its group. Returns the group's count, this crash included (1: a new
    /// group). The group's last request is the latest crash's by `now`, whatever order concurrent reports
    /// commit in.
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
        tx.commit().await?;
        Ok(count)
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
