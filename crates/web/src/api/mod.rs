//! The JSON booking API under `/api/v1`.

pub mod bookings;
pub mod flights;

use skybook_booking::BookingView;
use skybook_domain::{BookingReference, TenantId, TenantSlug};
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

/// A tenant's booking by reference, with its flight (the API's and the website's booking pages).
pub(crate) async fn booking_view(
    state: &AppState,
    tenant: TenantId,
    reference: &BookingReference,
) -> Result<BookingView, ApiError> {
    let booking = state
        .store
        .booking_by_reference(tenant, reference)
        .await?
        .ok_or(ApiError::NotFound("booking"))?;
    let flight = state
        .store
        .flight(tenant, booking.flight_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("booking {} has no flight", booking.id)))?;
    Ok(BookingView { booking, flight })
}
