//! Alerts: findings for the operators, from the sentinel and from crash capture.
//!
//! Raising is idempotent per (kind, subject): the sentinel sees a stuck booking on every run but alerts once.
//! Delivery (webhook, ops email) is at least once: a dispatcher claims undelivered alerts by pushing their
//! `next_delivery_at` one lease ahead, so a dispatcher that dies mid-delivery leaves the alert to be claimed again.

use chrono::{DateTime, Utc};
use skybook_domain::{AlertId, TenantId};

use crate::backend::{on_pool, on_writer};
use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct NewAlert {
    /// What was found: `duplicate_charge`, `orphan_charge`, `stuck_booking`, `unsent_email`, `crash`, ...
    pub kind: &'static str,
    /// What it is about (a charge id, booking id, crash fingerprint): one alert per kind and subject.
    pub subject: String,
    pub tenant_id: Option<TenantId>,
    /// One line for a human.
    pub message: String,
    /// A JSON object with the particulars.
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Alert {
    pub id: AlertId,
    pub kind: String,
    pub subject: String,
    pub tenant_id: Option<TenantId>,
    pub message: String,
    /// A JSON object.
    pub details: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub delivery_attempts: i32,
    pub last_error: Option<String>,
}

const ALERT_COLUMNS: &str =
    "id, kind, subject, tenant_id, message, details, created_at, delivered_at, \
                             delivery_attempts, last_error";

impl Store {
    /// Writes the alert unless one for the same kind and subject exists. `true`: it is new.
    pub async fn raise_alert(&self, alert: &NewAlert, now: DateTime<Utc>) -> Result<bool> {
        let sql =
            "INSERT INTO alerts (id, kind, subject, tenant_id, message, details, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, subject) DO NOTHING";
        let details = alert.details.to_string();
        let inserted = on_writer!(&self.backend, c => sqlx::query(sql)
            .bind(AlertId::new()).bind(alert.kind).bind(&alert.subject).bind(alert.tenant_id)
            .bind(&alert.message).bind(&details).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        if inserted == 1 {
            // Open dashboards show it at once, on every node.
            self.publish_event(&serde_json::json!({
                "type": "alert", "kind": alert.kind, "tenant": alert.tenant_id, "subject": alert.subject,
            }));
        }
        Ok(inserted == 1)
    }

    /// The newest `limit` alerts: every one, or (`tenant`) only that tenant's.
    pub async fn recent_alerts(&self, tenant: Option<TenantId>, limit: i64) -> Result<Vec<Alert>> {
        // Two statements rather than `$1 IS NULL OR ...`, whose one plan (prepared, or SQLite's) cannot use the
        // tenant's index.
        match tenant {
            Some(tenant) => {
                let sql = format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT $2"
                );
                Ok(
                    on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(limit).fetch_all(c).await)?,
                )
            }
            None => {
                let sql =
                    format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY created_at DESC LIMIT $1");
                Ok(
                    on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(limit).fetch_all(c).await)?,
                )
            }
        }
    }

    /// The tenant's alerts about any of `subjects` (a booking's id, its charge's id), newest first.
    pub async fn alerts_about(&self, tenant: TenantId, subjects: &[String]) -> Result<Vec<Alert>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> =
            (0..subjects.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant_id = $1 AND subject IN ({}) ORDER BY created_at DESC",
            placeholders.join(", ")
        );
        Ok(on_pool!(&self.backend, c => {
            let mut query = sqlx::query_as(&sql).bind(tenant);
            for subject in subjects {
                query = query.bind(subject);
            }
            query.fetch_all(c).await
        })?)
    }

    /// Takes up to `limit` undelivered alerts that are due, holding them for `lease`, and counts the attempt.
    pub async fn claim_alert_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Alert>> {
        let skip_locked = self.skip_locked();
        let sql = format!(
            "UPDATE alerts SET next_delivery_at = $1, delivery_attempts = delivery_attempts + 1 \
             WHERE id IN (SELECT id FROM alerts WHERE delivered_at IS NULL \
                 AND (next_delivery_at IS NULL OR next_delivery_at <= $2) \
                 ORDER BY created_at LIMIT $3{skip_locked}) \
             RETURNING {ALERT_COLUMNS}"
        );
        Ok(on_writer!(&self.backend, c => sqlx::query_as(&sql)
            .bind(now + lease).bind(now).bind(limit).fetch_all(c).await)?)
    }

    pub async fn alert_delivered(&self, id: AlertId, now: DateTime<Utc>) -> Result<()> {
        let sql = "UPDATE alerts SET delivered_at = $1, last_error = NULL WHERE id = $2";
        on_writer!(&self.backend, c => sqlx::query(sql).bind(now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn alert_delivery_failed(
        &self,
        id: AlertId,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "UPDATE alerts SET next_delivery_at = $1, last_error = $2 WHERE id = $3 AND delivered_at IS NULL";
        on_writer!(&self.backend, c => sqlx::query(sql).bind(retry_at).bind(error).bind(id)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
