//! The sentinel: the periodic sweep that makes "never billed twice, never loses a booking" hold after the
//! failures a request cannot handle itself (a crash between charge and settle, a charge whose answer was lost,
//! a provider that was down, a second charge from outside the pipeline).
//!
//! Each sweep, in order:
//! 1. **Unsettled bookings** (`seat_held` / `payment_pending`, untouched for [`SentinelConfig::settle_after`],
//!    so no live request is working on them): the provider is asked for the charge under the booking's id, its
//!    idempotency key. Charged → settled `confirmed` exactly as a request would (outbox email included);
//!    declined → `failed`; no charge and the seat hold expired → `failed` (`hold_expired`) with the seats
//!    released; no answer → left alone, and alerted once it has been unresolved for
//!    [`SentinelConfig::stuck_alert_after`]. The sentinel never charges.
//! 2. **The provider's charges**: every successful, unrefunded charge must be the `charge_id` of its booking.
//!    One that is not — a second charge for a confirmed booking or for the same entity (a *duplicate*), or a
//!    charge whose booking failed or does not exist (an *orphan*) — is refunded under the sentinel's own
//!    idempotency key (`sentinel-refund-<charge id>`, so two sweeps can never refund twice) and alerted. A
//!    charge without skybook's metadata is alerted, never refunded: it is not ours to judge.
//! 3. **Unsent emails**: an outbox email not handed off [`SentinelConfig::unsent_email_alert_after`] after it
//!    was queued is alerted (the outbox sender keeps retrying it).
//!
//! Alerts are rows (one per kind and subject, so a finding seen on every sweep is alerted once); delivering
//! them is `skybook-notify`' job. Cron runs the sweep once per tick across all nodes, and every step is safe to
//! repeat, so a sweep that dies half-way is simply finished by the next.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use skybook_clients::payments::{Charge, ChargeStatus};
use skybook_domain::{BookingId, BookingStatus, FailureReason, TenantId};
use skybook_storage::{BookingRecord, NewAlert, Tenant};

use crate::outcome::BookingView;
use crate::service::{BookingError, BookingService};
use crate::settle::{Charged, Lookup, META_BOOKING_ID, META_ENTITY, META_TENANT_ID};

#[derive(Debug, Clone)]
pub struct SentinelConfig {
    /// A booking untouched this long is no longer in a live request's hands (longer than the key lease).
    pub settle_after: Duration,
    /// Alert on a booking still unresolved this long after it was created.
    pub stuck_alert_after: Duration,
    /// Alert on an email not handed off this long after it was queued.
    pub unsent_email_alert_after: Duration,
    /// Bookings and emails looked at per sweep.
    pub batch: i64,
}

impl Default for SentinelConfig {
    fn default() -> Self {
        Self {
            settle_after: Duration::from_secs(90),
            stuck_alert_after: Duration::from_secs(15 * 60),
            unsent_email_alert_after: Duration::from_secs(15 * 60),
            batch: 200,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub confirmed: usize,
    pub failed: usize,
    /// Unsettled bookings whose charge could not be looked up.
    pub unresolved: usize,
    /// `(charge id, refund id)` of every charge refunded.
    pub refunds: Vec<(String, String)>,
    pub alerts_raised: usize,
}

/// Refund under this key, never another: the provider returns the same refund for it however often we ask.
pub fn refund_idempotency_key(charge_id: &str) -> String {
    format!("sentinel-refund-{charge_id}")
}

/// Why a charge is not one of ours to keep.
enum Stray {
    Duplicate(BookingRecord),
    Orphan(Option<BookingRecord>),
}

impl BookingService {
    /// One sentinel sweep (see the module docs). Errors only when the database fails; a provider that cannot
    /// be reached leaves its part of the sweep for the next one.
    #[tracing::instrument(name = "sentinel.sweep", skip_all)]
    pub async fn sentinel_sweep(
        &self,
        config: &SentinelConfig,
    ) -> Result<SweepReport, BookingError> {
        let mut report = SweepReport::default();
        self.settle_unsettled(config, &mut report).await?;
        self.refund_strays(&mut report).await?;
        self.alert_unsent_emails(config, &mut report).await?;
        if report == SweepReport::default() {
            tracing::debug!("sentinel sweep: nothing to do");
        } else {
            tracing::info!(?report, "sentinel sweep done");
        }
        Ok(report)
    }

    async fn settle_unsettled(
        &self,
        config: &SentinelConfig,
        report: &mut SweepReport,
    ) -> Result<(), BookingError> {
        let store = &self.0.store;
        let now = Utc::now();
        let untouched_since =
            now - chrono::Duration::from_std(config.settle_after).unwrap_or_default();
        for booking in store
            .unsettled_bookings(untouched_since, config.batch)
            .await?
        {
            let Some(tenant) = store.tenant(booking.tenant_id).await? else {
                continue;
            };
            let Some(flight) = store.flight(tenant.id, booking.flight_id).await? else {
                continue;
            };
            let stuck_since = booking.created_at;
            let view = BookingView::new(booking, flight);
            let id = view.booking.id;
            let hold_expired = view.booking.hold_expires_at <= now;
            let settled = match self.lookup_charge(&view).await {
                Lookup::Found(Charged::Yes { charge_id }) => {
                    tracing::info!(booking.id = %id, %charge_id, "sentinel: charge found; confirming");
                    self.settle_confirmed(&tenant, None, view, &charge_id)
                        .await?;
                    Some(BookingStatus::Confirmed)
                }
                Lookup::Found(_) => {
                    self.settle_failed(
                        &tenant,
                        None,
                        view,
                        FailureReason::CardDeclined,
                        Some(untouched_since),
                    )
                    .await?;
                    Some(BookingStatus::Failed)
                }
                Lookup::NoCharge if hold_expired => {
                    tracing::info!(booking.id = %id, "sentinel: no charge and the hold expired; releasing the seats");
                    self.settle_failed(
                        &tenant,
                        None,
                        view,
                        FailureReason::HoldExpired,
                        Some(untouched_since),
                    )
                    .await?;
                    Some(BookingStatus::Failed)
                }
                Lookup::NoCharge => None,
                Lookup::Failed => {
                    report.unresolved += 1;
                    // To the back of the line: the next sweeps look at other bookings first, and this one
                    // again once it has been left alone for `settle_after`.
                    let mut tx = store.begin().await?;
                    tx.touch_booking(tenant.id, id, now).await?;
                    tx.commit().await?;
                    let limit =
                        chrono::Duration::from_std(config.stuck_alert_after).unwrap_or_default();
                    if now - stuck_since >= limit {
                        let alert = NewAlert {
                            kind: "stuck_booking",
                            subject: id.to_string(),
                            tenant_id: Some(tenant.id),
                            message: format!(
                                "booking {} has been unsettled since {} and the provider cannot say whether it was charged",
                                view.booking.reference,
                                stuck_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            ),
                            details: json!({ "booking_id": id, "reference": view.booking.reference.as_str(), "tenant": tenant.slug.as_str(), "status": view.booking.status.as_str() }),
                        };
                        self.raise(&alert, report).await?;
                    }
                    None
                }
            };
            // Count what this sweep changed (another actor may have settled it a moment earlier).
            if let Some(expected) = settled {
                let now_status = store.booking(tenant.id, id).await?.map(|b| b.status);
                match (expected, now_status) {
                    (BookingStatus::Confirmed, Some(BookingStatus::Confirmed)) => {
                        report.confirmed += 1;
                    }
                    (BookingStatus::Failed, Some(BookingStatus::Failed)) => report.failed += 1,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    async fn refund_strays(&self, report: &mut SweepReport) -> Result<(), BookingError> {
        let charges = match self.0.payments.list_charges().await {
            Ok(charges) => charges,
            Err(e) => {
                tracing::warn!(error = %e, "sentinel: cannot list the provider's charges; checking next sweep");
                return Ok(());
            }
        };
        for charge in charges {
            if charge.status != ChargeStatus::Succeeded
                || charge.refunded
                || charge.amount_refunded > 0
            {
                continue;
            }
            let Some((tenant_id, booking_id)) = ours(&charge) else {
                let alert = NewAlert {
                    kind: "unrecognised_charge",
                    subject: charge.id.clone(),
                    tenant_id: None,
                    message: format!(
                        "charge {} carries no skybook booking; not refunded automatically",
                        charge.id
                    ),
                    details: json!({ "charge_id": charge.id, "amount_minor": charge.amount_minor, "currency": charge.currency }),
                };
                self.raise(&alert, report).await?;
                continue;
            };
            let Some(tenant) = self.0.store.tenant(tenant_id).await? else {
                continue;
            };
            let Some(stray) = self.classify(&tenant, booking_id, &charge).await? else {
                continue;
            };
            self.refund(&tenant, &charge, stray, report).await?;
        }
        Ok(())
    }

    /// `None`: the charge is the booking's own (settled with it, or about to be by step 1).
    async fn classify(
        &self,
        tenant: &Tenant,
        booking_id: BookingId,
        charge: &Charge,
    ) -> Result<Option<Stray>, BookingError> {
        let store = &self.0.store;
        let booking = store.booking(tenant.id, booking_id).await?;
        if let Some(b) = &booking {
            if b.charge_id.as_deref() == Some(charge.id.as_str()) {
                return Ok(None);
            }
            // Made for this booking while it is unsettled: its own charge, about to be settled (by step 1 or the
            // live request). A second charge for it, if any, is judged once it is settled.
            if matches!(
                b.status,
                BookingStatus::SeatHeld | BookingStatus::PaymentPending
            ) {
                return Ok(None);
            }
            if b.status == BookingStatus::Confirmed {
                return Ok(Some(Stray::Duplicate(b.clone())));
            }
        }
        // The booking failed or never existed: a duplicate still, if the same entity holds a confirmed booking.
        let entity = charge
            .metadata
            .get(META_ENTITY)
            .and_then(|f| skybook_domain::EntityFingerprint::parse(f).ok());
        if let Some(entity) = entity {
            if let Some(live) = store.live_booking_by_entity(tenant.id, &entity).await? {
                if live.status == BookingStatus::Confirmed
                    && live.charge_id.as_deref() != Some(charge.id.as_str())
                {
                    return Ok(Some(Stray::Duplicate(live)));
                }
            }
        }
        Ok(Some(Stray::Orphan(booking)))
    }

    #[tracing::instrument(name = "sentinel.refund", skip_all, fields(tenant = %tenant.slug, charge = %charge.id))]
    async fn refund(
        &self,
        tenant: &Tenant,
        charge: &Charge,
        stray: Stray,
        report: &mut SweepReport,
    ) -> Result<(), BookingError> {
        let refund = match self
            .0
            .payments
            .refund(&charge.id, None, &refund_idempotency_key(&charge.id))
            .await
        {
            Ok(refund) => refund,
            Err(e) => {
                tracing::warn!(error = %e, "sentinel: refund failed; retrying next sweep");
                return Ok(());
            }
        };
        metrics::counter!("skybook_sentinel_refunds_total").increment(1);
        let amount = format!(
            "{} minor units of {}",
            charge.amount_minor,
            charge.currency.to_ascii_uppercase()
        );
        let (kind, message, booking) = match &stray {
            Stray::Duplicate(b) => (
                "duplicate_charge",
                format!(
                    "charge {} ({amount}) duplicated booking {}'s charge {}; refunded",
                    charge.id,
                    b.reference,
                    b.charge_id.as_deref().unwrap_or("-")
                ),
                Some(b),
            ),
            Stray::Orphan(b) => (
                "orphan_charge",
                match b {
                    Some(b) => format!(
                        "charge {} ({amount}) for booking {}, which is {}; refunded",
                        charge.id, b.reference, b.status
                    ),
                    None => format!("charge {} ({amount}) has no booking; refunded", charge.id),
                },
                b.as_ref(),
            ),
        };
        tracing::warn!(refund.id = %refund.id, "{message}");
        let alert = NewAlert {
            kind,
            subject: charge.id.clone(),
            tenant_id: Some(tenant.id),
            message,
            details: json!({
                "charge_id": charge.id,
                "refund_id": refund.id,
                "amount_minor": charge.amount_minor,
                "currency": charge.currency,
                "booking_reference": booking.map(|b| b.reference.as_str()),
                "tenant": tenant.slug.as_str(),
            }),
        };
        self.raise(&alert, report).await?;
        report.refunds.push((charge.id.clone(), refund.id));
        Ok(())
    }

    async fn alert_unsent_emails(
        &self,
        config: &SentinelConfig,
        report: &mut SweepReport,
    ) -> Result<(), BookingError> {
        let before = Utc::now()
            - chrono::Duration::from_std(config.unsent_email_alert_after).unwrap_or_default();
        for unsent in self
            .0
            .store
            .unsent_outbox_emails(before, config.batch)
            .await?
        {
            let email = &unsent.email;
            let alert = NewAlert {
                kind: "unsent_email",
                subject: email.id.to_string(),
                tenant_id: Some(email.tenant_id),
                message: format!(
                    "the {} email for booking {} has not been handed off after {} attempt(s)",
                    email.kind, email.booking_id, email.attempts
                ),
                details: json!({ "booking_id": email.booking_id, "message_id": email.message_id, "attempts": email.attempts, "last_error": unsent.last_error }),
            };
            self.raise(&alert, report).await?;
        }
        Ok(())
    }

    async fn raise(&self, alert: &NewAlert, report: &mut SweepReport) -> Result<(), BookingError> {
        if self.0.store.raise_alert(alert, Utc::now()).await? {
            metrics::counter!("skybook_alerts_total", "kind" => alert.kind).increment(1);
            tracing::warn!(alert.kind = alert.kind, alert.subject = %alert.subject, "alert raised: {}", alert.message);
            report.alerts_raised += 1;
        }
        Ok(())
    }
}

/// The tenant and booking a charge was made for, from the metadata the pipeline sends with every charge.
fn ours(charge: &Charge) -> Option<(TenantId, BookingId)> {
    let tenant = charge.metadata.get(META_TENANT_ID)?.parse().ok()?;
    let booking = charge.metadata.get(META_BOOKING_ID)?.parse().ok()?;
    Some((tenant, booking))
}
