//! A booking's page (`/bookings/{reference}`) and "find my booking" by reference and contact email.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use skybook_booking::BookingView;
use skybook_domain::{BookingReference, BookingStatus, Email, FieldErrors};

use super::forms::CsrfForm;
use super::session::Visit;
use super::views::{summary, BookingPage, BookingSummary, FindPage};
use super::{see_other, site_tenant, PageError};
use crate::error::ApiError;
use crate::throttle::Client;
use crate::AppState;

/// A booking, shown only to the session that made it or proved its contact email; others are sent to "find".
#[tracing::instrument(name = "site.booking", skip_all, fields(tenant = %state.options.site.tenant))]
pub async fn show(
    State(state): State<AppState>,
    visit: Visit,
    Path(reference): Path<String>,
) -> Result<Response, PageError> {
    let tenant = site_tenant(&state).await?;
    let reference =
        BookingReference::parse(&reference).map_err(|_| ApiError::NotFound("booking"))?;
    if !visit.may_see_booking(reference.as_str()).await? {
        return Ok(see_other(&format!("/find?reference={reference}")));
    }
    let BookingView { booking, flight } =
        crate::api::booking_view(&state, tenant.id, &reference).await?;
    let (heading, message, tone, pending) = match booking.status {
        BookingStatus::Confirmed => (
            "Booking confirmed",
            "You're booked. A confirmation email is on its way.",
            "good",
            false,
        ),
        BookingStatus::SeatHeld | BookingStatus::PaymentPending => (
            "Confirming your payment",
            "Your seats are held while we confirm the payment with the card issuer.",
            "warn",
            true,
        ),
        BookingStatus::Failed if booking.failure_reason.as_deref() == Some("card_declined") => (
            "Card declined",
            "The card was declined, so nothing was charged and the seats were released.",
            "bad",
            false,
        ),
        BookingStatus::Failed => (
            "Booking not completed",
            "The payment did not go through, so nothing was charged and the seats were released.",
            "bad",
            false,
        ),
    };
    Ok(BookingPage {
        heading,
        message,
        tone,
        pending,
        booking: BookingSummary::new(&booking, &flight),
    }
    .into_response())
}

pub async fn find_form(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    site_tenant(&state).await?;
    Ok(FindPage {
        csrf: visit.csrf_token().await?,
        reference: query.get("reference").cloned().unwrap_or_default(),
        email: String::new(),
        errors: Vec::new(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct FindForm {
    #[serde(default)]
    reference: String,
    #[serde(default)]
    email: String,
}

/// Reference + contact email → the booking's page. A wrong pair gets the same answer whichever half was wrong.
pub async fn find(
    State(state): State<AppState>,
    client: Client,
    CsrfForm(visit, form): CsrfForm<FindForm>,
) -> Result<Response, PageError> {
    state.throttles.booking_lookup.attempt(client)?;
    let tenant = site_tenant(&state).await?;
    let mut errors = FieldErrors::new();
    let reference = errors.check(
        "reference",
        BookingReference::parse(form.reference.trim().to_uppercase().as_str()),
    );
    let email = errors.check("email", Email::parse(form.email.trim()));
    if let (Some(reference), Some(email)) = (&reference, &email) {
        let found = state
            .store
            .booking_by_reference(tenant.id, reference)
            .await?;
        match found {
            Some(b)
                if b.contact_email
                    .as_str()
                    .eq_ignore_ascii_case(email.as_str()) =>
            {
                visit.allow_booking(reference.as_str()).await?;
                return Ok(see_other(&format!("/bookings/{reference}")));
            }
            _ => errors.add("reference", "no booking matches this reference and email"),
        }
    }
    let page = FindPage {
        csrf: visit.csrf_token().await?,
        reference: form.reference,
        email: form.email,
        errors: summary(&errors),
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
