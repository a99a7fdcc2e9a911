//! Tenant operator tokens: created by `skybook admin token create`, looked up by their hash at each sign-in
//! and each request of a signed-in session (so a revoked token ends its sessions too), revoked by `revoke`.

use chrono::{DateTime, Utc};
use skybook_domain::{OperatorTokenHash, OperatorTokenId, TenantId};

use crate::backend::{on_pool, on_writer};
use crate::error::Result;
use crate::store::Store;

/// One tenant operator's token, as stored (without the token).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OperatorTokenRecord {
    pub id: OperatorTokenId,
    pub tenant_id: TenantId,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, tenant_id, read_only, created_at, revoked_at";

impl Store {
    pub async fn create_operator_token(
        &self,
        tenant: TenantId,
        hash: &OperatorTokenHash,
        read_only: bool,
        now: DateTime<Utc>,
    ) -> Result<OperatorTokenId> {
        let id = OperatorTokenId::new();
        let sql = "INSERT INTO operator_tokens (id, tenant_id, token_hash, read_only, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_writer!(&self.backend, c => sqlx::query(sql).bind(id).bind(tenant).bind(hash.as_str()).bind(read_only)
            .bind(now).execute(c).await.map(|_| ()))?;
        Ok(id)
    }

    /// The unrevoked token with this hash.
    pub async fn live_operator_token(
        &self,
        hash: &OperatorTokenHash,
    ) -> Result<Option<OperatorTokenRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM operator_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        );
        Ok(
            on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(hash.as_str()).fetch_optional(c).await)?,
        )
    }

    /// The token `id`, unless revoked (a signed-in session's check at each request).
    pub async fn live_operator_token_by_id(
        &self,
        id: OperatorTokenId,
    ) -> Result<Option<OperatorTokenRecord>> {
        let sql =
            format!("SELECT {COLUMNS} FROM operator_tokens WHERE id = $1 AND revoked_at IS NULL");
        Ok(on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?)
    }

    /// Every token, a tenant's or all, oldest first.
    pub async fn operator_tokens(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Vec<OperatorTokenRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM operator_tokens WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_at, id"
        );
        Ok(on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).fetch_all(c).await)?)
    }

    /// Revokes `id`; false when there is no such token or it was revoked already.
    pub async fn revoke_operator_token(
        &self,
        id: OperatorTokenId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "UPDATE operator_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        let done = on_writer!(&self.backend, c => sqlx::query(sql).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }
}
