//! Charge, then Tx 2 — settle. Also the resume path for bookings an earlier request left unfinished.

use chrono::{DateTime, SubsecRound, Utc};
use skybook_clients::payments::{ChargeOutcome, ChargeRequest, ChargeStatus};
use skybook_domain::{BookingStatus, FailureReason, IdempotencyKey, NewBooking};
use skybook_storage::{
    BookingRecord, FinalResponse, NewOutboxEmail, Settlement, StatusChange, Tenant,
};

use crate::claim::Attempt;
use crate::outcome::{BookingView, Outcome, Reply};
use crate::service::{card_details, BookingError, BookingService};

const UNSETTLED: &[BookingStatus] = &[BookingStatus::SeatHeld, BookingStatus::PaymentPending];

/// What the provider says about an earlier attempt.
pub(crate) enum Lookup {
    Found(Charged),
    NoCharge,
    Failed,
}

/// How the charge step ended, before Tx 2 writes it down.
pub(crate) enum Charged {
    Yes {
        charge_id: String,
    },
    No(FailureReason),
    /// Nothing was sent to the provider (tokenising failed): safe to forget the attempt entirely.
    NotAttempted(String),
    Unknown,
}

impl Charged {
    /// On a resumed booking an earlier request may still hold a charge the lookup could not see yet (it may
    /// be in flight), so only a definitive answer counts: a refusal or a provider that could not be reached
    /// becomes "unknown", never "not charged".
    fn after_earlier_attempt(self) -> Self {
        match self {
            Charged::No(FailureReason::PaymentRejected) | Charged::NotAttempted(_) => {
                Charged::Unknown
            }
            other => other,
        }
    }
}

impl BookingService {
    /// Charges a claimed booking and settles it. A resumed booking's charge may have been sent by the request
    /// that died, so the provider is asked first (by the booking id, its idempotency key) instead of charging
    /// blindly.
    #[tracing::instrument(name = "booking.charge_and_settle", skip_all, fields(booking.id = %view.booking.id, tenant = %tenant.slug, attempt = ?attempt))]
    pub(crate) async fn charge_and_settle(
        &self,
        tenant: &Tenant,
        key: &IdempotencyKey,
        view: BookingView,
        attempt: Attempt,
        request: &NewBooking,
    ) -> Result<Reply, BookingError> {
        match view.booking.status {
            BookingStatus::Confirmed => {
                return self
                    .record_final(tenant, key, Outcome::Confirmed(view))
                    .await
            }
            BookingStatus::Failed => {
                return self.record_final(tenant, key, Outcome::Failed(view)).await
            }
            BookingStatus::SeatHeld | BookingStatus::PaymentPending => {}
        }
        let charged = match attempt {
            Attempt::First => self.charge(&view, request).await,
            Attempt::Resumed => match self.lookup_charge(&view).await {
                Lookup::Found(charged) => charged,
                // Never charge on a failed lookup: the first charge may exist, and a second attempt (with a
                // fresh card token) would be refused as a reused key and read as "not charged".
                Lookup::Failed => Charged::Unknown,
                // The seats were held for a limited time, and the sentinel may be releasing them: past the hold,
                // a resumed booking is given up rather than charged.
                Lookup::NoCharge if view.booking.hold_expires_at <= Utc::now() => {
                    Charged::No(FailureReason::HoldExpired)
                }
                Lookup::NoCharge => self.charge(&view, request).await.after_earlier_attempt(),
            },
        };
        // Each settlement is one transaction, retried as a whole through a database blip. Past the retry budget
        // the booking stays unsettled (its charge is at the provider under the booking id): the client's retry
        // or the sentinel settles it.
        match charged {
            Charged::Yes { charge_id } => {
                self.retry_transient("settle_confirmed", || {
                    self.settle_confirmed(tenant, Some(key), view.clone(), &charge_id)
                })
                .await
            }
            Charged::No(reason) => {
                self.retry_transient("settle_failed", || {
                    self.settle_failed(tenant, Some(key), view.clone(), reason, None)
                })
                .await
            }
            Charged::NotAttempted(cause) => {
                self.retry_transient("abandon", || self.abandon(tenant, key, &view))
                    .await?;
                Err(BookingError::PaymentUnavailable(cause))
            }
            Charged::Unknown => {
                self.retry_transient("mark_pending", || {
                    self.mark_pending(tenant, key, view.clone())
                })
                .await
            }
        }
    }

    /// Asks the provider whether this booking was charged (by the booking id, the charge's idempotency key).
    pub(crate) async fn lookup_charge(&self, view: &BookingView) -> Lookup {
        match self
            .0
            .payments
            .find_charge(&view.booking.id.to_string())
            .await
        {
            Ok(Some(charge)) => Lookup::Found(match charge.status {
                ChargeStatus::Succeeded => Charged::Yes {
                    charge_id: charge.id,
                },
                ChargeStatus::Failed => Charged::No(FailureReason::CardDeclined),
            }),
            Ok(None) => Lookup::NoCharge,
            Err(e) => {
                tracing::warn!(error = %e, "charge lookup failed; leaving the booking for a later settlement");
                Lookup::Failed
            }
        }
    }

    #[tracing::instrument(name = "booking.charge", skip_all, fields(booking.id = %view.booking.id))]
    async fn charge(&self, view: &BookingView, request: &NewBooking) -> Charged {
        let payments = &self.0.payments;
        let token = match payments.tokenize(&card_details(request)).await {
            Ok(token) => token,
            Err(e) => return Charged::NotAttempted(e.to_string()),
        };
        let booking = &view.booking;
        let charge = charge_request(booking, token.id);
        match payments.charge(&charge).await {
            ChargeOutcome::Succeeded(charge) => Charged::Yes {
                charge_id: charge.id,
            },
            ChargeOutcome::Declined { .. } => Charged::No(FailureReason::CardDeclined),
            ChargeOutcome::Rejected { reason } => {
                tracing::error!(%reason, "the payment provider rejected the charge request");
                Charged::No(FailureReason::PaymentRejected)
            }
            ChargeOutcome::Unknown { reason } => {
                tracing::warn!(%reason, "charge outcome unknown; leaving the booking payment_pending");
                Charged::Unknown
            }
        }
    }

    /// Tx 2: charge id, `confirmed`, the confirmation email in the outbox and the final response, atomically.
    ///
    /// The common case — the booking still unsettled, as this request left it — is one write
    /// ([`skybook_storage::Store::settle`]), its response rendered beforehand from the booking as the change
    /// leaves it. If another actor settled the booking first, that write does nothing, and the request answers
    /// with the booking as it now is (storing that answer on its key, in a transaction of its own).
    #[tracing::instrument(name = "booking.settle_confirmed", skip_all, fields(booking.id = %view.booking.id))]
    pub(crate) async fn settle_confirmed(
        &self,
        tenant: &Tenant,
        key: Option<&IdempotencyKey>,
        view: BookingView,
        charge_id: &str,
    ) -> Result<Reply, BookingError> {
        // As PostgreSQL stores it (microseconds), so the booking rendered below is the one written.
        let now = Utc::now().trunc_subsecs(6);
        let id = view.booking.id;
        let email = NewOutboxEmail::confirmation(&view.booking);
        let mut confirmed = view.clone();
        confirmed.booking.status = BookingStatus::Confirmed;
        confirmed.booking.charge_id = Some(charge_id.to_owned());
        confirmed.booking.failure_reason = None;
        confirmed.booking.updated_at = now;
        let reply = self.reply(&Outcome::Confirmed(confirmed));
        let rendered = &reply.rendered;
        let settlement = Settlement {
            tenant: tenant.id,
            booking: id,
            change: StatusChange::new(UNSETTLED, BookingStatus::Confirmed)
                .expect("a transition of the state machine")
                .with_charge(charge_id),
            email: Some(&email),
            response: key.map(|key| FinalResponse {
                key,
                status: rendered.status,
                body: &rendered.body,
            }),
            now,
        };
        if self.0.store.settle(&settlement).await?.is_some() {
            return Ok(reply.counted());
        }

        let mut tx = self.0.store.begin().await?;
        let outcome = self.current_outcome(&mut tx, tenant, view, None).await?;
        if let Outcome::Failed(failed) = &outcome {
            // Charged after the booking was given up: the sentinel's duplicate/orphan scan refunds the charge.
            tracing::error!(booking.id = %failed.booking.id, %charge_id, "charge succeeded for a booking already failed");
        }
        let reply = self.finish(&mut tx, tenant, key, outcome).await?;
        tx.commit().await?;
        Ok(reply)
    }

    /// Tx 2 for a charge that did not happen: `failed`, seats released, final response stored. With
    /// `untouched_before` (the sentinel), only if no request has touched the booking since.
    #[tracing::instrument(name = "booking.settle_failed", skip_all, fields(booking.id = %view.booking.id, reason = reason.as_str()))]
    pub(crate) async fn settle_failed(
        &self,
        tenant: &Tenant,
        key: Option<&IdempotencyKey>,
        view: BookingView,
        reason: FailureReason,
        untouched_before: Option<DateTime<Utc>>,
    ) -> Result<Reply, BookingError> {
        let mut tx = self.0.store.begin().await?;
        let changed = fail_and_release(&mut tx, tenant, &view, reason, untouched_before).await?;
        let outcome = self.current_outcome(&mut tx, tenant, view, changed).await?;
        let reply = self.finish(&mut tx, tenant, key, outcome).await?;
        tx.commit().await?;
        Ok(reply)
    }

    /// The charge may or may not have happened: `payment_pending`, lease released so a retry or the sentinel
    /// can settle it later. Never stored as the key's response.
    #[tracing::instrument(name = "booking.mark_pending", skip_all, fields(booking.id = %view.booking.id))]
    async fn mark_pending(
        &self,
        tenant: &Tenant,
        key: &IdempotencyKey,
        view: BookingView,
    ) -> Result<Reply, BookingError> {
        let mut tx = self.0.store.begin().await?;
        let change = StatusChange::new(&[BookingStatus::SeatHeld], BookingStatus::PaymentPending)
            .expect("a transition of the state machine");
        let changed = tx
            .change_status(tenant.id, view.booking.id, &change, Utc::now())
            .await?;
        let outcome = self.current_outcome(&mut tx, tenant, view, changed).await?;
        let reply = self.finish(&mut tx, tenant, Some(key), outcome).await?;
        tx.commit().await?;
        Ok(reply)
    }

    /// Nothing reached the provider: release the seats, fail the booking and forget the key, so the client's
    /// retry (with the same key) starts afresh.
    async fn abandon(
        &self,
        tenant: &Tenant,
        key: &IdempotencyKey,
        view: &BookingView,
    ) -> Result<(), BookingError> {
        let mut tx = self.0.store.begin().await?;
        fail_and_release(
            &mut tx,
            tenant,
            view,
            FailureReason::ProviderUnavailable,
            None,
        )
        .await?;
        tx.delete_idempotency_key(tenant.id, key, view.booking.id)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a final outcome for a key whose booking is already settled.
    async fn record_final(
        &self,
        tenant: &Tenant,
        key: &IdempotencyKey,
        outcome: Outcome,
    ) -> Result<Reply, BookingError> {
        let mut tx = self.0.store.begin().await?;
        let reply = self.finish(&mut tx, tenant, Some(key), outcome).await?;
        tx.commit().await?;
        Ok(reply)
    }

    /// The booking as this transaction now sees it, as an outcome.
    async fn current_outcome(
        &self,
        tx: &mut skybook_storage::Tx,
        tenant: &Tenant,
        view: BookingView,
        changed: Option<BookingRecord>,
    ) -> Result<Outcome, BookingError> {
        let booking = match changed {
            Some(booking) => booking,
            None => tx
                .booking(tenant.id, view.booking.id)
                .await?
                .ok_or_else(|| {
                    BookingError::Storage(skybook_storage::StorageError::Corrupt(
                        "booking vanished".into(),
                    ))
                })?,
        };
        let view = BookingView::new(booking, view.flight);
        Ok(match view.booking.status {
            BookingStatus::Confirmed => Outcome::Confirmed(view),
            BookingStatus::Failed => Outcome::Failed(view),
            BookingStatus::SeatHeld | BookingStatus::PaymentPending => Outcome::Pending(view),
        })
    }
}

/// `failed` with `reason`, and the seats back on sale — if the booking is still unsettled (another actor may
/// have settled it first, in which case nothing changes and `None` is returned).
async fn fail_and_release(
    tx: &mut skybook_storage::Tx,
    tenant: &Tenant,
    view: &BookingView,
    reason: FailureReason,
    untouched_before: Option<DateTime<Utc>>,
) -> Result<Option<BookingRecord>, BookingError> {
    let change = StatusChange::new(UNSETTLED, BookingStatus::Failed)
        .expect("a transition of the state machine")
        .with_failure(reason)
        .untouched_before(untouched_before);
    let changed = tx
        .change_status(tenant.id, view.booking.id, &change, Utc::now())
        .await?;
    if changed.is_some() {
        tx.release_seats(tenant.id, view.booking.flight_id, view.booking.seats)
            .await?;
    }
    Ok(changed)
}

/// The charge metadata keys the pipeline sends and the sentinel reads back to tie a charge to its booking.
pub(crate) const META_BOOKING_ID: &str = "booking_id";
pub(crate) const META_TENANT_ID: &str = "tenant_id";
pub(crate) const META_ENTITY: &str = "entity_fingerprint";

/// The charge for `booking`, paid with the card token `source`: the booking id is the provider's idempotency
/// key, and the metadata ties the charge back to the booking (what the sentinel reads to judge it).
pub fn charge_request(booking: &BookingRecord, source: String) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: booking.id.to_string(),
        amount_minor: booking.amount.amount_minor,
        currency: booking.amount.currency.as_str().to_ascii_lowercase(),
        source,
        description: format!("skybook booking {}", booking.reference),
        metadata: [
            (META_BOOKING_ID.to_owned(), booking.id.to_string()),
            (META_TENANT_ID.to_owned(), booking.tenant_id.to_string()),
            ("reference".to_owned(), booking.reference.to_string()),
            (
                META_ENTITY.to_owned(),
                booking.entity_fingerprint.as_str().to_owned(),
            ),
        ]
        .into(),
    }
}
