//! An outbox email failed for good (refused by the server, or to an address the mailer refuses) leaves play:
//! no claim takes it and the sentinel's unsent list skips it. On both engines.

use chrono::{Duration, Utc};
use skybook_domain::BookingId;
use skybook_storage::{Engine, NewOutboxEmail, OutboxEmail, Store};
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{held_booking, tenant_with_flight};

/// A held booking with its confirmation email queued.
async fn queued_email(store: &Store) -> BookingId {
    let (tenant, flight) = tenant_with_flight(store, "air", 5).await;
    let booking = held_booking(store, &tenant, &flight, "Ode", Utc::now()).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_outbox_email(&NewOutboxEmail::confirmation(&booking), Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    booking.id
}

async fn claim(store: &Store, worker: &str, at: chrono::DateTime<Utc>) -> Vec<OutboxEmail> {
    store
        .claim_outbox_emails(worker, at, Duration::seconds(30), 10)
        .await
        .unwrap()
}

async fn a_failed_email_is_never_claimed_or_listed_as_unsent(engine: Engine) {
    let store = skybook_testkit::store(engine, "outbox_failed").await;
    queued_email(&store).await;
    let now = Utc::now();
    let claimed = claim(&store, "w1", now).await;
    let id = claimed[0].id;
    let refusal = "SMTP: permanent error (550): 5.1.1 mailbox unavailable";

    assert!(
        !store
            .mark_outbox_failed(id, "w2", refusal, now)
            .await
            .unwrap(),
        "only the sender holding the email fails it"
    );
    assert!(store
        .mark_outbox_failed(id, "w1", refusal, now)
        .await
        .unwrap());
    assert!(
        !store.mark_outbox_sent(id, "w1", now).await.unwrap(),
        "a failed email is not sent as well"
    );
    assert!(!store
        .outbox_attempt_failed(id, "w1", "421 try later", now)
        .await
        .unwrap());

    let later = now + Duration::days(1);
    assert!(
        claim(&store, "w3", later).await.is_empty(),
        "not claimed again, lease or no lease"
    );
    assert!(
        store
            .unsent_outbox_emails(later, 10)
            .await
            .unwrap()
            .is_empty(),
        "the sentinel does not alert on it as unsent: its sender alerted when it failed it"
    );
    let row = &store
        .outbox_for_booking(claimed[0].tenant_id, claimed[0].booking_id)
        .await
        .unwrap()[0];
    assert_eq!(
        (
            row.sent_at,
            row.failed_at.is_some(),
            row.failure.as_deref(),
            row.attempts
        ),
        (None, true, Some(refusal), 1)
    );
}

/// Rows queued before `Email::parse` refused addresses such as `a,b@...` are still in the outbox. Read back as
/// `Email`, one of them failed every claim, stopping every email behind it; read as text, it is claimed and
/// the sender fails it for good.
async fn an_email_queued_under_looser_rules_is_still_claimed(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "outbox_legacy").await;
    let store = skybook_testkit::store_at(&url).await;
    queued_email(&store).await;
    let legacy = "UPDATE outbox_emails SET recipient = 'a,b@example.com'";
    assert_eq!(
        skybook_testkit::execute_outside(&url, legacy)
            .await
            .unwrap(),
        1
    );

    let claimed = claim(&store, "w1", Utc::now()).await;
    assert_eq!(claimed[0].recipient, "a,b@example.com");
    assert!(store
        .mark_outbox_failed(claimed[0].id, "w1", "recipient refused", Utc::now())
        .await
        .unwrap());

    let both = "UPDATE outbox_emails SET sent_at = failed_at";
    assert!(
        skybook_testkit::execute_outside(&url, both).await.is_err(),
        "the database refuses an email both sent and failed"
    );
}

backend_tests!(
    a_failed_email_is_never_claimed_or_listed_as_unsent,
    an_email_queued_under_looser_rules_is_still_claimed,
);
