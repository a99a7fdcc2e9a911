//! The audit log: every operator action in the admin (who, what, on which rows, how many, when), written after
//! the action and read back, newest first, by the admin.

use chrono::{DateTime, Utc};
use skybook_domain::TenantId;

use crate::backend::{on_pool, on_writer};
use crate::error::Result;
use crate::store::Store;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// How the operator signed in, and from where (`token from 10.0.0.7`).
    pub actor: String,
    /// `jobs.cancel`, `queue.pause`, `cron.run`, `import.upload`, ...
    pub action: String,
    /// Which rows: ids, a filter, a queue's or a schedule's name.
    pub target: String,
    /// How many rows it changed.
    pub affected: i64,
    /// The tenant whose operator acted; none for the platform admin.
    pub tenant_id: Option<TenantId>,
}

impl Store {
    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        let sql = "INSERT INTO audit_log (id, at, actor, action, target, affected, tenant_id) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_writer!(&self.backend, c => sqlx::query(sql)
            .bind(uuid::Uuid::now_v7()).bind(entry.at).bind(&entry.actor).bind(&entry.action).bind(&entry.target)
            .bind(entry.affected).bind(entry.tenant_id).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// The latest `limit` entries, newest first: every one, or (`tenant`) only that tenant's operators'.
    pub async fn audit_log(&self, tenant: Option<TenantId>, limit: i64) -> Result<Vec<AuditEntry>> {
        // Two statements rather than `$1 IS NULL OR ...`, whose one plan cannot use the tenant's index.
        const SELECT: &str = "SELECT at, actor, action, target, affected, tenant_id FROM audit_log";
        match tenant {
            Some(tenant) => {
                let sql = format!("{SELECT} WHERE tenant_id = $1 ORDER BY at DESC LIMIT $2");
                Ok(
                    on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(limit).fetch_all(c).await)?,
                )
            }
            None => {
                let sql = format!("{SELECT} ORDER BY at DESC LIMIT $1");
                Ok(
                    on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(limit).fetch_all(c).await)?,
                )
            }
        }
    }
}
