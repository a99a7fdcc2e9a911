//! The booking form: `GET /book/{flight}`, its autosave, the `POST` that books and pays, and the status page a
//! second click lands on while the first is still paying.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use skybook_booking::{BookingError, Rendered};
use skybook_domain::{
    BookingStatus, FieldErrors, Flight, FlightId, IdempotencyKey, MAX_PASSENGERS,
};
use skybook_storage::Tenant;

use super::forms::{BookingForm, CsrfForm};
use super::session::{Draft, Visit};
use super::views::{
    card_inputs, summary, BookPage, DuplicatePage, FlightView, Input, MessagePage, PassengerInputs,
};
use super::{see_other, site_tenant, PageError};
use crate::error::ApiError;
use crate::render::BookingAnswer;
use crate::AppState;

/// `GET /book/{flight}?passengers=N`: the form, refilled from the session's draft for this flight.
#[tracing::instrument(name = "site.book_form", skip_all, fields(tenant = %state.options.site.tenant, flight = %flight))]
pub async fn form(
    State(state): State<AppState>,
    visit: Visit,
    Path(flight): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let tenant = site_tenant(&state).await?;
    let flight = bookable_flight(&state, &tenant, &flight).await?;
    let wanted = query
        .get("passengers")
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n.clamp(1, MAX_PASSENGERS));
    let mut draft = visit
        .draft_for(&flight.id.to_string(), wanted.unwrap_or(1))
        .await?;
    if let Some(n) = wanted {
        draft.passengers.truncate(n);
        visit.save_draft(&draft).await?;
    }
    let page = form_page(&visit, &flight, &draft, &FieldErrors::new(), None).await?;
    Ok(page.into_response())
}

/// `POST /book/{flight}/draft`: the form's non-card fields saved while the traveller types (`draft.js`).
pub async fn save_draft(
    Path(flight): Path<String>,
    CsrfForm(visit, pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<StatusCode, PageError> {
    let form = BookingForm::new(pairs);
    let key = form.get("idempotency_key");
    if !visit.owns_key(key).await? {
        return Err(PageError(ApiError::Forbidden("form_key")));
    }
    // Card fields are never part of a draft: `BookingForm::draft` takes only the traveller and contact fields.
    visit.save_draft(&form.draft(&flight, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /book/{flight}`: book and pay, then redirect to the booking (or re-render the form with what to fix).
#[tracing::instrument(name = "site.book", skip_all, fields(tenant = %state.options.site.tenant, flight = %flight_id))]
pub async fn submit(
    State(state): State<AppState>,
    Path(flight_id): Path<String>,
    CsrfForm(visit, pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let tenant = site_tenant(&state).await?;
    let flight = bookable_flight(&state, &tenant, &flight_id).await?;
    let form = BookingForm::new(pairs);
    let raw_key = form.get("idempotency_key");
    // The key must be one this session minted: a form can't be replayed from another browser or forged.
    if !visit.owns_key(raw_key).await? {
        return Err(PageError(ApiError::Forbidden("form_key")));
    }
    let key = IdempotencyKey::parse(raw_key).map_err(|_| ApiError::Forbidden("form_key"))?;
    let mut draft = form.draft(&flight.id.to_string(), raw_key);
    visit.save_draft(&draft).await?;

    let request =
        match crate::parse::booking_request(&form.to_json(&flight_id), Utc::now().date_naive()) {
            Ok(request) => request,
            Err(errors) => return invalid_form(&visit, &flight, &draft, &errors).await,
        };
    match state.bookings.create(&tenant, &key, request).await {
        Ok(reply) => answer(&visit, &tenant, &flight, &mut draft, &reply.rendered).await,
        // The same form is being paid for by an earlier click: wait for it on the status page.
        Err(BookingError::RequestInProgress) => Ok(see_other(&format!("/book/status/{raw_key}"))),
        // This key already booked something else (the form was changed after it was sent): a fresh key.
        Err(BookingError::KeyReused) => {
            draft.key = visit.mint_key().await?;
            visit.save_draft(&draft).await?;
            let notice = "This form was already sent with other details. Check them, enter your card again, and pay to make a new booking.";
            let page =
                form_page(&visit, &flight, &draft, &FieldErrors::new(), Some(notice)).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e @ (BookingError::FlightDeparted | BookingError::AmountOutOfRange)) => {
            match ApiError::from(e) {
                ApiError::Invalid(errors) => invalid_form(&visit, &flight, &draft, &errors).await,
                other => Err(PageError(other)),
            }
        }
        Err(e) => Err(PageError::booking(e)),
    }
}

/// `GET /book/status/{key}`: where a form's key stands. Finished → its answer; paying → the booking's page;
/// not started yet → a page that refreshes itself.
pub async fn status(
    State(state): State<AppState>,
    visit: Visit,
    Path(raw_key): Path<String>,
) -> Result<Response, PageError> {
    let tenant = site_tenant(&state).await?;
    let not_found = || PageError(ApiError::NotFound("booking"));
    if !visit.owns_key(&raw_key).await? {
        return Err(not_found());
    }
    let key = IdempotencyKey::parse(&raw_key).map_err(|_| not_found())?;
    let Some(record) = state.store.idempotency_key(tenant.id, &key).await? else {
        return forgotten(&state, &visit, &tenant).await;
    };
    let booking = match record.booking_id {
        Some(id) => state.store.booking(tenant.id, id).await?,
        None => None,
    };
    if let Some((status, body)) = record.response() {
        let rendered = Rendered {
            status,
            body: body.to_owned(),
        };
        // The flight is the key's own booking's (a later form in this session may be for another flight);
        // keys answered without a booking (sold out, duplicate) never re-render a form, any flight will do.
        let mut draft = visit.draft().await?.unwrap_or_default();
        let flight_id = match &booking {
            Some(b) => b.flight_id,
            None => draft.flight_id.parse().map_err(|_| not_found())?,
        };
        let flight = state
            .store
            .flight(tenant.id, flight_id)
            .await?
            .ok_or_else(not_found)?;
        return answer(&visit, &tenant, &flight, &mut draft, &rendered).await;
    }
    if let Some(booking) = booking {
        if booking.status == BookingStatus::SeatHeld {
            if !record.is_locked(Utc::now()) {
                return interrupted(&state, &visit, &tenant, &booking, raw_key).await;
            }
            // A request is still working on it (or its node died and its lease has not lapsed yet): wait here,
            // where the page comes back to this check, not on the booking's page.
        } else {
            let reference = booking.reference.to_string();
            visit.allow_booking(&reference).await?;
            return Ok(see_other(&format!("/bookings/{reference}")));
        }
    }
    let mut page = MessagePage::new(
        "Confirming your payment",
        "Your booking is being processed. This page refreshes itself; you will not be charged twice.",
        "warn",
    );
    page.refresh = true;
    Ok(page.into_response())
}

/// The visitor's key is gone: its attempt was abandoned because nothing could reach the payment provider, and
/// the key forgotten so that it may start over. Nothing was charged: the form again, as for a failed payment.
async fn forgotten(
    state: &AppState,
    visit: &Visit,
    tenant: &Tenant,
) -> Result<Response, PageError> {
    let not_found = || PageError(ApiError::NotFound("booking"));
    let mut draft = visit.draft().await?.ok_or_else(not_found)?;
    let flight_id: FlightId = draft.flight_id.parse().map_err(|_| not_found())?;
    let flight = state
        .store
        .flight(tenant.id, flight_id)
        .await?
        .ok_or_else(not_found)?;
    draft.key = visit.mint_key().await?;
    draft.booked_reference = None;
    visit.save_draft(&draft).await?;
    let notice = "The payment could not be completed and nothing was charged. Please try again or use another card.";
    let page = form_page(visit, &flight, &draft, &FieldErrors::new(), Some(notice)).await?;
    Ok((StatusCode::BAD_GATEWAY, page).into_response())
}

/// The request that placed `booking` stopped before its payment was settled (its node died mid-payment) and
/// no request holds the key any more. The site keeps no card, so nothing else can finish it: the form again,
/// with the same key, so the traveller's next submit resumes this booking — a charge the stopped request did
/// make is found by the provider's idempotency key, not made again. Left alone, the hold expires and the seats
/// go back on sale, nothing charged.
async fn interrupted(
    state: &AppState,
    visit: &Visit,
    tenant: &Tenant,
    booking: &skybook_storage::BookingRecord,
    key: String,
) -> Result<Response, PageError> {
    let flight = state
        .store
        .flight(tenant.id, booking.flight_id)
        .await?
        .ok_or(PageError(ApiError::NotFound("booking")))?;
    let mut draft = visit
        .draft_for(&flight.id.to_string(), booking.passengers.len())
        .await?;
    draft.key = key;
    draft.booked_reference = None;
    visit.save_draft(&draft).await?;
    tracing::info!(tenant = %tenant.slug, booking.id = %booking.id, "site: a payment was interrupted; asking for the card again");
    let notice = format!(
        "Your payment for booking {} was interrupted before it completed. Your seats are still held: enter your card details again to finish. You will not be charged twice.",
        booking.reference
    );
    let page = form_page(visit, &flight, &draft, &FieldErrors::new(), Some(&notice)).await?;
    Ok(page.into_response())
}

/// Turns the pipeline's answer (the same stored response the API replays) into the page the traveller sees.
async fn answer(
    visit: &Visit,
    tenant: &Tenant,
    flight: &Flight,
    draft: &mut Draft,
    rendered: &Rendered,
) -> Result<Response, PageError> {
    let answer = BookingAnswer::read(rendered).map_err(|e| ApiError::Internal(e.to_string()))?;
    match answer {
        BookingAnswer::Confirmed(booking) | BookingAnswer::Pending(booking) => {
            let reference = booking.reference;
            visit.allow_booking(&reference).await?;
            if draft.booked_reference.is_none() {
                draft.booked_reference = Some(reference.clone());
                visit.save_draft(draft).await?;
            }
            Ok(see_other(&format!("/bookings/{reference}")))
        }
        BookingAnswer::Duplicate(existing) => {
            if visit.may_see_booking(&existing.reference).await? {
                return Ok(see_other(&format!("/bookings/{}", existing.reference)));
            }
            tracing::info!(tenant = %tenant.slug, existing = %existing.reference, "site: duplicate booking refused, no charge");
            let page = DuplicatePage {
                reference: existing.reference,
                status: existing.status.replace('_', " "),
            };
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        BookingAnswer::SoldOut => {
            let page = MessagePage::new(
                "Not enough seats left",
                "This flight no longer has seats for everyone in your party. Nothing was charged. Please pick another flight.",
                "warn",
            );
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        BookingAnswer::Declined(_) | BookingAnswer::PaymentFailed(_) => {
            // The key is spent on a failed attempt: the next try is a new booking request with a new key.
            draft.key = visit.mint_key().await?;
            draft.booked_reference = None;
            visit.save_draft(draft).await?;
            let (status, notice) = match answer {
                BookingAnswer::Declined(_) => (
                    StatusCode::PAYMENT_REQUIRED,
                    "Your card was declined and nothing was charged. Please try another card.",
                ),
                _ => (
                    StatusCode::BAD_GATEWAY,
                    "The payment could not be completed and nothing was charged. Please try again or use another card.",
                ),
            };
            let page = form_page(visit, flight, draft, &FieldErrors::new(), Some(notice)).await?;
            Ok((status, page).into_response())
        }
    }
}

async fn invalid_form(
    visit: &Visit,
    flight: &Flight,
    draft: &Draft,
    errors: &FieldErrors,
) -> Result<Response, PageError> {
    let page = form_page(visit, flight, draft, errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

async fn form_page(
    visit: &Visit,
    flight: &Flight,
    draft: &Draft,
    errors: &FieldErrors,
    notice: Option<&str>,
) -> Result<BookPage, PageError> {
    let n = draft.passengers.len().clamp(1, MAX_PASSENGERS);
    let total = flight
        .price_for(n)
        .map(|m| m.to_string())
        .unwrap_or_default();
    let mut passengers = draft.passengers.clone();
    passengers.resize(n, Default::default());
    Ok(BookPage {
        flight: FlightView::new(flight, n as u32),
        total,
        csrf: visit.csrf_token().await?,
        key: draft.key.clone(),
        passengers: passengers
            .iter()
            .enumerate()
            .map(|(i, p)| PassengerInputs {
                given: Input::new(
                    &format!("passengers[{i}].given_name"),
                    &p.given_name,
                    errors,
                ),
                family: Input::new(
                    &format!("passengers[{i}].family_name"),
                    &p.family_name,
                    errors,
                ),
            })
            .collect(),
        email: Input::new("contact_email", &draft.contact_email, errors),
        card: card_inputs(errors),
        errors: summary(errors),
        notice: notice.map(str::to_owned),
    })
}

/// The flight a form is for: it must exist for this tenant and not have left yet.
async fn bookable_flight(
    state: &AppState,
    tenant: &Tenant,
    raw: &str,
) -> Result<Flight, PageError> {
    let id: FlightId = raw.parse().map_err(|_| ApiError::NotFound("flight"))?;
    let flight = state
        .store
        .flight(tenant.id, id)
        .await?
        .ok_or(ApiError::NotFound("flight"))?;
    if flight.departs_at <= Utc::now() {
        return Err(PageError(ApiError::NotFound("flight")));
    }
    Ok(flight)
}
