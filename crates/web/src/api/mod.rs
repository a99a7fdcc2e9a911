//! The JSON booking API under `/api/v1`.

pub mod bookings;
pub mod flights;

use skybook_domain::TenantSlug;
use skybook_storage::Tenant;

use crate::error::ApiError;
use crate::AppState;

/// The tenant a path names; an unknown or malformed slug is a 404 like any missing resource.
pub(crate) async fn tenant(state: &AppState, slug: &str) -> Result<Tenant, ApiError> {
    let slug = TenantSlug::parse(slug).map_err(|_| ApiError::NotFound("tenant"))?;
    state
        .store
        .tenant_by_slug(&slug)
        .await?
        .ok_or(ApiError::NotFound("tenant"))
}
