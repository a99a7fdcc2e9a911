//! The statements behind background work besides the job queue: the outbox sender's claims, alerts and crash
//! groups, on both engines. Time is passed in, so leases and retries are tested without waiting.

use chrono::{Duration, Utc};
use skybook_domain::{BookingId, Email};
use skybook_storage::{Engine, InsertBooking, NewAlert, NewCrash, NewOutboxEmail, Store};
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::tenant_with_flight;

/// A booking with its confirmation email queued.
async fn queued_email(store: &Store) -> BookingId {
    let (tenant, flight) = tenant_with_flight(store, "air", 5).await;
    let row = skybook_testkit::fixtures::booking_row(tenant.id, &flight, "Ode");
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_booking(&row).await.unwrap(),
        InsertBooking::Inserted(_)
    ));
    let email = NewOutboxEmail {
        tenant_id: tenant.id,
        booking_id: row.id,
        kind: "booking_confirmation",
        recipient: Email::parse("ode@example.com").unwrap(),
        message_id: format!("<booking-{}@test>", row.id),
    };
    tx.insert_outbox_email(&email, Utc::now()).await.unwrap();
    tx.insert_outbox_email(&email, Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    row.id
}

async fn outbox_claims_are_leased_and_retried(engine: Engine) {
    let store = skybook_testkit::store(engine, "outbox_claims").await;
    let booking = queued_email(&store).await;
    let now = Utc::now();
    let lease = Duration::seconds(30);

    let claimed = store
        .claim_outbox_emails("w1", now, lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "one email per booking and kind");
    assert_eq!((claimed[0].booking_id, claimed[0].attempts), (booking, 1));
    assert!(
        store
            .claim_outbox_emails("w2", now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a leased email is not claimed twice"
    );

    let retry_at = now + Duration::seconds(5);
    assert!(store
        .outbox_attempt_failed(claimed[0].id, "w1", "421 try later", retry_at)
        .await
        .unwrap());
    assert!(
        store
            .claim_outbox_emails("w2", now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not before its retry time"
    );
    let again = store
        .claim_outbox_emails("w2", retry_at, lease, 10)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);

    // w2's sender dies: after the lease w3 takes the email over, and w2 can no longer mark it.
    let later = retry_at + lease + Duration::seconds(1);
    let rescued = store
        .claim_outbox_emails("w3", later, lease, 10)
        .await
        .unwrap();
    assert_eq!(rescued.len(), 1);
    assert!(!store
        .mark_outbox_sent(again[0].id, "w2", later)
        .await
        .unwrap());
    assert!(store
        .mark_outbox_sent(rescued[0].id, "w3", later)
        .await
        .unwrap());
    assert!(
        store
            .claim_outbox_emails("w4", later + Duration::hours(1), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a sent email is never claimed again"
    );
    let sent = store
        .outbox_for_booking(rescued[0].tenant_id, booking)
        .await
        .unwrap();
    assert!(sent[0].sent_at.is_some());
}

async fn unsent_emails_are_listed_after_a_threshold(engine: Engine) {
    let store = skybook_testkit::store(engine, "outbox_unsent").await;
    queued_email(&store).await;
    let now = Utc::now();
    assert!(store
        .unsent_outbox_emails(now - Duration::minutes(10), 10)
        .await
        .unwrap()
        .is_empty());
    let claimed = store
        .claim_outbox_emails("w1", now, Duration::seconds(30), 10)
        .await
        .unwrap();
    store
        .outbox_attempt_failed(claimed[0].id, "w1", "connection refused", now)
        .await
        .unwrap();
    let unsent = store
        .unsent_outbox_emails(now + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(unsent.len(), 1);
    assert_eq!(unsent[0].last_error.as_deref(), Some("connection refused"));
}

fn alert(subject: &str) -> NewAlert {
    NewAlert {
        kind: "duplicate_charge",
        subject: subject.into(),
        tenant_id: None,
        message: format!("charge {subject} duplicates a booking's charge"),
        details: serde_json::json!({ "charge_id": subject }),
    }
}

async fn alerts_are_raised_once_and_delivered_at_least_once(engine: Engine) {
    let store = skybook_testkit::store(engine, "alerts").await;
    let now = Utc::now();
    assert!(store.raise_alert(&alert("ch_1"), now).await.unwrap());
    assert!(
        !store.raise_alert(&alert("ch_1"), now).await.unwrap(),
        "same finding, no new alert"
    );
    assert!(store.raise_alert(&alert("ch_2"), now).await.unwrap());
    let recent = store.recent_alerts(None, 10).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&recent[0].details).unwrap()["charge_id"],
        recent[0].subject.as_str()
    );

    let lease = Duration::seconds(30);
    let claimed = store.claim_alert_deliveries(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        store
            .claim_alert_deliveries(now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "held while delivering"
    );
    store.alert_delivered(claimed[0].id, now).await.unwrap();
    store
        .alert_delivery_failed(
            claimed[1].id,
            "webhook: HTTP 500",
            now + Duration::seconds(2),
        )
        .await
        .unwrap();
    let retried = store
        .claim_alert_deliveries(now + Duration::seconds(2), lease, 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0].id, retried[0].delivery_attempts),
        (claimed[1].id, 2)
    );
    assert_eq!(retried[0].last_error.as_deref(), Some("webhook: HTTP 500"));
}

fn crash(fingerprint: &str, request_id: &str) -> NewCrash {
    NewCrash {
        fingerprint: fingerprint.into(),
        message: "boom".into(),
        location: "src/lib.rs:1:1".into(),
        backtrace: "0: skybook::boom".into(),
        route: Some("/debug/panic".into()),
        method: Some("POST".into()),
        tenant: None,
        request_id: Some(request_id.into()),
        task: None,
        release: "skybook test".into(),
    }
}

async fn crashes_are_grouped_by_fingerprint(engine: Engine) {
    let store = skybook_testkit::store(engine, "crashes").await;
    let now = Utc::now();
    let count = |fp: &'static str, request: &'static str, at| {
        let store = store.clone();
        async move { store.record_crash(&crash(fp, request), at).await.unwrap() }
    };
    assert_eq!(count("fp-a", "r1", now).await, 1, "a new group");
    assert_eq!(count("fp-a", "r2", now + Duration::seconds(1)).await, 2);
    assert_eq!(count("fp-b", "r3", now).await, 1);
    // A report of an earlier crash committed late (reports are stored off the request path) counts, but does
    // not become the group's last.
    assert_eq!(count("fp-a", "r0", now - Duration::seconds(1)).await, 3);
    let groups = store.crash_groups(10).await.unwrap();
    let a = groups.iter().find(|g| g.fingerprint == "fp-a").unwrap();
    assert_eq!((a.count, a.last_request_id.as_deref()), (3, Some("r2")));
    assert!(a.last_seen > a.first_seen);
    assert_eq!(groups[0].fingerprint, "fp-a", "most recently seen first");
    let reports = store.crash_reports("fp-a", 10).await.unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0].request_id.as_deref(), Some("r2"));
}

backend_tests!(
    outbox_claims_are_leased_and_retried,
    unsent_emails_are_listed_after_a_threshold,
    alerts_are_raised_once_and_delivered_at_least_once,
    crashes_are_grouped_by_fingerprint,
);
