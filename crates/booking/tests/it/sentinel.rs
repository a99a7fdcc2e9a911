//! The sentinel against the real sandbox: what a crash, a lost answer or a stray charge leaves behind is put
//! right — confirmed with its email, failed with its seats back, or refunded once — and alerted.

use std::time::Duration;

use chrono::Utc;
use skybook_booking::{charge_request, refund_idempotency_key, SentinelConfig};
use skybook_clients::payments::{CardDetails, ChargeOutcome, PaymentProvider};
use skybook_domain::{BookingStatus, FailureReason};
use skybook_storage::{BookingRecord, Engine};
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{held_booking, CARD_OK};

use crate::harness::{key, Pipeline};
use skybook_testkit::payments::payments_for;

/// Every threshold at zero: whatever is unsettled now is the sentinel's.
fn eager() -> SentinelConfig {
    SentinelConfig {
        settle_after: Duration::ZERO,
        stuck_alert_after: Duration::ZERO,
        unsent_email_alert_after: Duration::ZERO,
        batch: 100,
    }
}

/// A booking as Tx 1 leaves it (`seat_held`, seat taken), its hold ending at `hold_expires_at`.
async fn held(
    app: &Pipeline,
    family: &str,
    hold_expires_at: chrono::DateTime<Utc>,
) -> BookingRecord {
    held_booking(
        &app.store,
        &app.tenant,
        &app.flight,
        family,
        hold_expires_at,
    )
    .await
}

/// Charges `booking` at the sandbox as the pipeline would, but under `idempotency_key`.
async fn charge(app: &Pipeline, booking: &BookingRecord, idempotency_key: &str) -> String {
    let payments = payments_for(&app.sandbox);
    let token = payments
        .tokenize(&CardDetails {
            number: CARD_OK.to_owned().into(),
            exp_month: 12,
            exp_year: 2031,
            cvc: "123".to_owned().into(),
        })
        .await
        .unwrap();
    // Exactly what the pipeline sends (metadata included), under the key the test chooses.
    let mut request = charge_request(booking, token.id);
    request.idempotency_key = idempotency_key.to_owned();
    match payments.charge(&request).await {
        ChargeOutcome::Succeeded(charge) => charge.id,
        other => panic!("planting a charge failed: {other:?}"),
    }
}

async fn status(app: &Pipeline, booking: &BookingRecord) -> BookingRecord {
    app.store
        .booking(app.tenant.id, booking.id)
        .await
        .unwrap()
        .unwrap()
}

async fn a_booking_charged_before_a_crash_is_confirmed_with_its_email(engine: Engine) {
    let app = Pipeline::start(engine, "sentinel_resume", 5).await;
    let booking = held(&app, "Crash", Utc::now() + chrono::Duration::minutes(15)).await;
    // The process died after the provider charged and before Tx 2: the charge exists under the booking id.
    let charge_id = charge(&app, &booking, &booking.id.to_string()).await;

    let report = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!(
        (report.confirmed, report.failed, report.refunds.len()),
        (1, 0, 0),
        "{report:?}"
    );
    let settled = status(&app, &booking).await;
    assert_eq!(
        (settled.status, settled.charge_id.as_deref()),
        (BookingStatus::Confirmed, Some(charge_id.as_str()))
    );
    let outbox = app
        .store
        .outbox_for_booking(app.tenant.id, booking.id)
        .await
        .unwrap();
    assert_eq!(
        outbox.len(),
        1,
        "the confirmation email is queued with the settlement"
    );
    assert_eq!(app.charges().await, 1);
    assert_eq!(app.seats_left().await, 4);

    let again = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!(
        (again.confirmed, again.refunds.len()),
        (0, 0),
        "its own charge is not a stray: {again:?}"
    );
}

async fn an_uncharged_booking_is_failed_and_its_seats_released_once_its_hold_expires(
    engine: Engine,
) {
    let app = Pipeline::start(engine, "sentinel_hold", 5).await;
    let expired = held(&app, "Expired", Utc::now() - chrono::Duration::seconds(1)).await;
    let holding = held(&app, "Holding", Utc::now() + chrono::Duration::minutes(15)).await;
    assert_eq!(app.seats_left().await, 3);

    let report = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!((report.confirmed, report.failed), (0, 1), "{report:?}");
    let failed = status(&app, &expired).await;
    assert_eq!(
        (failed.status, failed.failure_reason.as_deref()),
        (
            BookingStatus::Failed,
            Some(FailureReason::HoldExpired.as_str())
        )
    );
    assert_eq!(
        status(&app, &holding).await.status,
        BookingStatus::SeatHeld,
        "a live hold is left alone"
    );
    assert_eq!(
        app.seats_left().await,
        4,
        "the expired hold's seat is back on sale"
    );
    assert_eq!(app.charges().await, 0, "the sentinel never charges");
}

async fn a_planted_duplicate_charge_is_refunded_once_and_alerted(engine: Engine) {
    let app = Pipeline::start(engine, "sentinel_duplicate", 5).await;
    let answer = app
        .book(&key("dup", 0), app.request("Ann", "Twice", CARD_OK))
        .await
        .unwrap();
    let skybook_web::BookingAnswer::Confirmed(booked) = answer.answer else {
        panic!("{}", answer.body)
    };
    let reference = booked.reference;
    let booking = app
        .store
        .booking_by_reference(
            app.tenant.id,
            &skybook_domain::BookingReference::parse(&reference).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let duplicate = charge(&app, &booking, "someone-else-charged-again").await;
    assert_eq!(app.charges().await, 2);

    let report = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!(report.refunds.len(), 1, "{report:?}");
    assert_eq!(report.refunds[0].0, duplicate);
    let again = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert!(again.refunds.is_empty(), "refunded once: {again:?}");
    assert_eq!(app.sandbox_stats().await["refunds"], 1);

    let kept = status(&app, &booking).await;
    assert_eq!(kept.status, BookingStatus::Confirmed);
    assert_ne!(
        kept.charge_id.as_deref(),
        Some(duplicate.as_str()),
        "the booking keeps its own charge"
    );
    let payments = payments_for(&app.sandbox);
    let refunded = payments.list_charges().await.unwrap();
    let dup = refunded.iter().find(|c| c.id == duplicate).unwrap();
    assert!(
        dup.refunded && dup.amount_refunded == booking.amount.amount_minor,
        "{dup:?}"
    );
    let own = refunded
        .iter()
        .find(|c| Some(c.id.as_str()) == kept.charge_id.as_deref())
        .unwrap();
    assert!(!own.refunded, "the booking's own charge is untouched");

    let alerts = app.store.recent_alerts(None, 10).await.unwrap();
    let alert = alerts
        .iter()
        .find(|a| a.kind == "duplicate_charge")
        .expect("a duplicate_charge alert");
    assert_eq!(alert.subject, duplicate);
    assert!(alert.message.contains(&reference), "{}", alert.message);
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.kind == "duplicate_charge")
            .count(),
        1
    );
    // The refund used the sentinel's own key: asking again returns the same refund, never a second.
    let refund = payments
        .refund(&duplicate, None, &refund_idempotency_key(&duplicate))
        .await
        .unwrap();
    assert_eq!(refund.id, report.refunds[0].1);
    assert_eq!(app.sandbox_stats().await["refunds"], 1);
}

async fn a_charge_for_a_failed_booking_is_refunded_as_an_orphan(engine: Engine) {
    let app = Pipeline::start(engine, "sentinel_orphan", 5).await;
    let booking = held(&app, "Late", Utc::now() - chrono::Duration::seconds(1)).await;
    app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!(status(&app, &booking).await.status, BookingStatus::Failed);
    // The lost request's charge lands after the booking was given up.
    let late = charge(&app, &booking, &booking.id.to_string()).await;

    let report = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!(
        report
            .refunds
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        [late.as_str()]
    );
    let alerts = app.store.recent_alerts(None, 10).await.unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == "orphan_charge" && a.subject == late),
        "{alerts:?}"
    );
    assert_eq!(
        status(&app, &booking).await.status,
        BookingStatus::Failed,
        "a refund does not revive a booking"
    );
}

async fn an_email_not_handed_off_is_alerted_once(engine: Engine) {
    let app = Pipeline::start(engine, "sentinel_email", 5).await;
    let answer = app
        .book(&key("mail", 0), app.request("Ann", "Mail", CARD_OK))
        .await
        .unwrap();
    assert_eq!(answer.status, 201, "{}", answer.body);
    // No outbox sender runs in this test: the email stays unsent.
    let first = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    let second = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!((first.alerts_raised, second.alerts_raised), (1, 0));
    let alerts = app.store.recent_alerts(None, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "unsent_email");
    assert_eq!(alerts[0].tenant_id, Some(app.tenant.id));
}

async fn a_charge_for_an_unsettled_booking_is_left_until_it_settles(engine: Engine) {
    let app = Pipeline::start(engine, "sentinel_unsettled", 5).await;
    let booking = held(&app, "Waiting", Utc::now() + chrono::Duration::minutes(15)).await;
    // A charge for this booking under another key, while the booking is still held (however it got there):
    // never refunded while the booking could still settle with it.
    charge(&app, &booking, "another-key-for-a-held-booking").await;
    let report = app.bookings.sentinel_sweep(&eager()).await.unwrap();
    assert!(report.refunds.is_empty(), "{report:?}");
    assert_eq!(status(&app, &booking).await.status, BookingStatus::SeatHeld);
    assert_eq!(app.sandbox_stats().await["refunds"], 0);
}

async fn a_booking_the_provider_cannot_account_for_is_kept_and_alerted(engine: Engine) {
    let app = Pipeline::start(engine, "sentinel_stuck", 5).await;
    // Past its hold, but nobody can say whether it was charged: it must not be failed (it may have been).
    let booking = held(&app, "Unknown", Utc::now() - chrono::Duration::seconds(1)).await;
    let blind = app.with_unreachable_provider();
    let report = blind.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!(
        (report.unresolved, report.failed, report.alerts_raised),
        (1, 0, 1),
        "{report:?}"
    );
    assert_eq!(status(&app, &booking).await.status, BookingStatus::SeatHeld);
    assert_eq!(app.seats_left().await, 4, "its seat stays held");
    let alerts = app.store.recent_alerts(None, 10).await.unwrap();
    assert_eq!(
        (alerts[0].kind.as_str(), alerts[0].subject.clone()),
        ("stuck_booking", booking.id.to_string())
    );
    let again = blind.sentinel_sweep(&eager()).await.unwrap();
    assert_eq!(again.alerts_raised, 0, "alerted once");
}

backend_tests!(
    a_booking_the_provider_cannot_account_for_is_kept_and_alerted,
    a_charge_for_an_unsettled_booking_is_left_until_it_settles,
    a_booking_charged_before_a_crash_is_confirmed_with_its_email,
    an_uncharged_booking_is_failed_and_its_seats_released_once_its_hold_expires,
    a_planted_duplicate_charge_is_refunded_once_and_alerted,
    a_charge_for_a_failed_booking_is_refunded_as_an_orphan,
    an_email_not_handed_off_is_alerted_once,
);
