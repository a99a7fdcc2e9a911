//! A booking as an operator reads it: `GET /admin/bookings/{tenant}/{reference}` (the page) and
//! `GET /admin/api/bookings/{tenant}/{reference}` (JSON), with what it led to: its emails in the outbox and
//! whether each went, its charge at the payment provider, the sentinel's alerts about it or its charge, and
//! its jobs (those whose payload names it). A tenant operator reads its tenant's bookings only.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use skybook_domain::{BookingReference, TenantSlug};
use skybook_storage::{Alert, BookingRecord, OutboxEmail};

use super::admin_params as params;
use super::operator::{operator, require_operator, Operator};
use super::session::Visit;
use super::views::AdminNav;
use super::{see_other, PageError};
use crate::openapi::AdminErrors;
use crate::render::ErrorJson;
use crate::throttle::Client;
use crate::{ApiError, AppState};

/// The booking and what it led to, if `operator` may see it (`404` otherwise, as if there were none).
async fn find(
    state: &AppState,
    operator: &Operator,
    tenant: &str,
    reference: &str,
) -> Result<(BookingRecord, Vec<OutboxEmail>, Vec<Alert>), ApiError> {
    let not_found = || ApiError::NotFound("booking");
    let slug = TenantSlug::parse(tenant).map_err(|_| not_found())?;
    let reference = BookingReference::parse(reference).map_err(|_| not_found())?;
    let tenant = state
        .store
        .tenant_by_slug(&slug)
        .await?
        .filter(|t| operator.sees(Some(t.id)))
        .ok_or_else(not_found)?;
    let booking = state
        .store
        .booking_by_reference(tenant.id, &reference)
        .await?
        .ok_or_else(not_found)?;
    let emails = state
        .store
        .outbox_for_booking(tenant.id, booking.id)
        .await?;
    let mut subjects = vec![booking.id.to_string()];
    subjects.extend(booking.charge_id.clone());
    let alerts = state.store.alerts_about(tenant.id, &subjects).await?;
    Ok((booking, emails, alerts))
}

fn email_state(e: &OutboxEmail) -> String {
    match (e.sent_at, e.failed_at) {
        (Some(at), _) => format!("sent {}", params::time(at)),
        (None, Some(at)) => format!("failed for good {}", params::time(at)),
        (None, None) => format!("not sent yet ({} attempts)", e.attempts),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_booking.html")]
pub struct BookingPage {
    pub nav: AdminNav,
    pub tenant: String,
    pub reference: String,
    pub id: String,
    pub fields: Vec<(&'static str, String)>,
    pub charge: Option<String>,
    pub emails: Vec<(String, String, String)>,
    pub alerts: Vec<(String, String, String)>,
}

pub async fn booking_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path((tenant, reference)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    let (b, emails, alerts) = find(&state, &operator, &tenant, &reference).await?;
    Ok(BookingPage {
        nav: AdminNav::of(&operator),
        tenant,
        reference: b.reference.to_string(),
        id: b.id.to_string(),
        fields: vec![
            ("Status", b.status.as_str().to_owned()),
            ("Contact", b.contact_email.to_string()),
            ("Seats", b.seats.to_string()),
            ("Amount", b.amount.to_string()),
            ("Card", format!("{} ending {}", b.card_brand, b.card_last4)),
            ("Failure", b.failure_reason.clone().unwrap_or_default()),
            ("Flight", b.flight_id.to_string()),
            ("Created", params::time(b.created_at)),
            ("Updated", params::time(b.updated_at)),
        ],
        charge: b.charge_id.clone(),
        emails: emails
            .iter()
            .map(|e| (e.kind.clone(), e.recipient.clone(), email_state(e)))
            .collect(),
        alerts: alerts
            .iter()
            .map(|a| {
                (
                    params::time(a.created_at),
                    a.kind.clone(),
                    a.message.clone(),
                )
            })
            .collect(),
    }
    .into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/bookings/{tenant}/{reference}",
    operation_id = "admin_booking",
    description = "A booking with its emails, charge and alerts.",
    params(("tenant" = String, Path, description = "Tenant slug"), ("reference" = String, Path, description = "Booking reference")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 404, description = "`not_found`: no such booking, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn booking_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path((tenant, reference)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let (b, emails, alerts) = find(&state, &operator, &tenant, &reference).await?;
    Ok(Json(json!({
        "booking": {
            "id": b.id,
            "tenant": tenant,
            "reference": b.reference.to_string(),
            "status": b.status.as_str(),
            "contact_email": b.contact_email.to_string(),
            "seats": b.seats,
            "amount_minor": b.amount.amount_minor,
            "currency": b.amount.currency.as_str(),
            "card_last4": b.card_last4,
            "charge_id": b.charge_id,
            "failure_reason": b.failure_reason,
            "flight_id": b.flight_id,
            "created_at": b.created_at,
            "updated_at": b.updated_at,
        },
        "emails": emails.iter().map(|e| json!({
            "kind": e.kind, "recipient": e.recipient, "sent_at": e.sent_at, "failed_at": e.failed_at,
            "attempts": e.attempts,
        })).collect::<Vec<_>>(),
        "alerts": alerts.iter().map(|a| json!({
            "kind": a.kind, "subject": a.subject, "message": a.message, "created_at": a.created_at,
        })).collect::<Vec<_>>(),
        "jobs": format!("/admin/api/jobs?q={}", b.id),
    })))
}
