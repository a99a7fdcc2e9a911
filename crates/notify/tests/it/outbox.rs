//! The outbox sender with a real SMTP server.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use skybook_domain::{BookingStatus, Email, Flight, RetryPolicy};
use skybook_notify::outbox::EMAIL_UNDELIVERABLE_ALERT;
use skybook_notify::{FileMailer, Mailer, OutboxSender, OutboxSenderConfig, SmtpMailer};
use skybook_storage::{
    BookingRecord, Engine, NewOutboxEmail, OutboxEmail, Settlement, StatusChange, Store, Tenant,
};
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{confirmed_booking, held_booking, tenant_with_flight, CARD_OK};
use skybook_testkit::smtp::{decode_quoted_printable, SmtpSink, DEFERRED_PREFIX, REFUSED_PREFIX};

pub fn from() -> skybook_notify::Mailbox {
    "skybook <bookings@skybook.test>".parse().unwrap()
}

fn smtp(url: &str) -> Arc<dyn Mailer> {
    Arc::new(SmtpMailer::new(&url.to_owned().into(), from()).unwrap())
}

/// Retries at once, so a test can drive attempts without waiting out a backoff.
fn config() -> OutboxSenderConfig {
    OutboxSenderConfig {
        retry: RetryPolicy {
            initial_delay: Duration::ZERO,
            ..RetryPolicy::outbound()
        },
        ..OutboxSenderConfig::default()
    }
}

async fn confirmation_is_handed_to_the_smtp_server_once(engine: Engine) {
    let store = skybook_testkit::store(engine, "outbox_smtp").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let booking = confirmed_booking(&store, &tenant, &flight, "O'Neill", "ch_1").await;
    let dir = skybook_testkit::test_dir("outbox-smtp");
    let sink = SmtpSink::start(&dir);
    let sender = OutboxSender::new(store.clone(), smtp(&sink.url()), config());

    assert_eq!(sender.run_once().await.unwrap(), 1);
    let messages = sink.wait_for_messages(1, Duration::from_secs(10));
    assert_eq!(messages.len(), 1);
    let message = decode_quoted_printable(&messages[0]);
    let expected_id = format!("Message-ID: <booking-{}.confirmation@skybook>", booking.id);
    assert!(message.contains(&expected_id), "{message}");
    assert!(message.contains("To: ann@example.com"), "{message}");
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(
        message.contains("Content-Type: text/plain") && message.contains("Content-Type: text/html"),
        "{message}"
    );
    for fact in [
        booking.reference.as_str(),
        "EI154",
        "DUB to LHR",
        "Ann O'Neill",
        "95.99 EUR",
        "ending 4242",
    ] {
        assert!(message.contains(fact), "{fact:?} missing: {message}");
    }
    assert!(
        message.contains("Ann O&#39;Neill") || message.contains("Ann O&#x27;Neill"),
        "the HTML part escapes names: {message}"
    );
    assert!(!message.contains(CARD_OK), "never the card number");

    let sent = store
        .outbox_for_booking(tenant.id, booking.id)
        .await
        .unwrap();
    assert!(sent[0].sent_at.is_some());
    assert_eq!(sender.run_once().await.unwrap(), 0, "nothing left to send");
    assert_eq!(sink.messages().len(), 1, "handed off exactly once");
}

async fn an_unreachable_smtp_server_means_a_retry_not_a_loss(engine: Engine) {
    let store = skybook_testkit::store(engine, "outbox_retry").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let booking = confirmed_booking(&store, &tenant, &flight, "Ryan", "ch_1").await;
    let dir = skybook_testkit::test_dir("outbox-retry");
    let mut sink = SmtpSink::start(&dir);
    let port = sink.port;
    sink.stop();
    let sender = OutboxSender::new(
        store.clone(),
        smtp(&format!("smtp://127.0.0.1:{port}")),
        config(),
    );

    assert_eq!(sender.run_once().await.unwrap(), 1);
    let unsent = store
        .outbox_for_booking(tenant.id, booking.id)
        .await
        .unwrap();
    assert_eq!((unsent[0].sent_at, unsent[0].attempts), (None, 1));
    let stuck = store
        .unsent_outbox_emails(Utc::now() + chrono::Duration::seconds(1), 10)
        .await
        .unwrap();
    assert!(
        stuck[0].last_error.as_deref().unwrap().contains("SMTP"),
        "{stuck:?}"
    );

    let sink = SmtpSink::start_on(&dir, port);
    assert_eq!(
        sender.run_once().await.unwrap(),
        1,
        "due again at once under this test's policy"
    );
    assert_eq!(sink.wait_for_messages(1, Duration::from_secs(10)).len(), 1);
    let sent = store
        .outbox_for_booking(tenant.id, booking.id)
        .await
        .unwrap();
    assert_eq!((sent[0].sent_at.is_some(), sent[0].attempts), (true, 2));
}

/// A booking confirmed as Tx 2 leaves it, its confirmation queued to `recipient` (the outbox row's recipient
/// is the one the sender uses).
async fn confirmed_booking_to(
    store: &Store,
    tenant: &Tenant,
    flight: &Flight,
    recipient: &str,
) -> BookingRecord {
    let hold_ends = Utc::now() + chrono::Duration::minutes(15);
    let booking = held_booking(store, tenant, flight, "Reid", hold_ends).await;
    let email = NewOutboxEmail {
        recipient: Email::parse(recipient).unwrap(),
        ..NewOutboxEmail::confirmation(&booking)
    };
    store
        .settle(&Settlement {
            tenant: tenant.id,
            booking: booking.id,
            change: StatusChange::new(&[BookingStatus::SeatHeld], BookingStatus::Confirmed)
                .unwrap()
                .with_charge("ch_refused"),
            email: Some(&email),
            response: None,
            now: Utc::now(),
        })
        .await
        .unwrap()
        .unwrap()
}

async fn outbox_row(store: &Store, booking: &BookingRecord) -> OutboxEmail {
    let rows = store
        .outbox_for_booking(booking.tenant_id, booking.id)
        .await
        .unwrap();
    rows.into_iter().next().unwrap()
}

async fn undeliverable_alerts(store: &Store) -> Vec<skybook_storage::Alert> {
    let alerts = store.recent_alerts(None, 50).await.unwrap();
    alerts
        .into_iter()
        .filter(|a| a.kind == EMAIL_UNDELIVERABLE_ALERT)
        .collect()
}

/// Issue 12, defect 5: a `550` used to be retried forever while nobody heard of it.
async fn an_email_refused_for_good_is_failed_and_alerted_once_not_retried(engine: Engine) {
    let store = skybook_testkit::store(engine, "outbox_refused").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let address = format!("{REFUSED_PREFIX}.ann@example.com");
    let refused = confirmed_booking_to(&store, &tenant, &flight, &address).await;
    let fine = confirmed_booking(&store, &tenant, &flight, "Lee", "ch_1").await;
    let sink = SmtpSink::start(&skybook_testkit::test_dir("outbox-refused"));
    let sender = OutboxSender::new(store.clone(), smtp(&sink.url()), config());

    assert_eq!(sender.run_once().await.unwrap(), 2);
    let messages = sink.wait_for_messages(1, Duration::from_secs(10));
    assert_eq!(messages.len(), 1, "the other email still goes");
    assert!(
        messages[0].contains("To: ann@example.com"),
        "{}",
        messages[0]
    );
    assert!(outbox_row(&store, &fine).await.sent_at.is_some());

    let row = outbox_row(&store, &refused).await;
    assert_eq!(
        (row.sent_at, row.failed_at.is_some(), row.attempts),
        (None, true, 1)
    );
    assert!(row.failure.as_deref().unwrap().contains("550"), "{row:?}");

    let alerts = undeliverable_alerts(&store).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.subject, row.id.to_string());
    assert_eq!(alert.tenant_id, Some(tenant.id));
    let details: serde_json::Value = serde_json::from_str(&alert.details).unwrap();
    assert_eq!(details["booking_id"], refused.id.to_string());
    assert_eq!(details["recipient_domain"], "example.com");
    let reason = details["reason"].as_str().unwrap();
    assert!(
        reason.contains("550") && reason.contains("5.1.1"),
        "{reason}"
    );
    assert!(alert.message.contains(reason), "{}", alert.message);
    for text in [&alert.message, &alert.details] {
        assert!(
            !text.contains(&address),
            "names the domain, not the address: {text}"
        );
    }

    // The next rounds, even long after any backoff, leave it alone: one attempt, one alert, one message.
    for _ in 0..2 {
        assert_eq!(sender.run_once().await.unwrap(), 0);
    }
    assert_eq!(outbox_row(&store, &refused).await.attempts, 1);
    assert_eq!(undeliverable_alerts(&store).await.len(), 1);
    assert_eq!(sink.messages().len(), 1);
    let later = Utc::now() + chrono::Duration::days(1);
    assert!(
        store
            .unsent_outbox_emails(later, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing left for the sentinel to call unsent"
    );
}

/// A temporary refusal (4xx) keeps today's retries: not failed, not alerted, claimed again when due.
async fn a_temporary_refusal_is_retried_not_failed(engine: Engine) {
    let store = skybook_testkit::store(engine, "outbox_deferred").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let booking = confirmed_booking_to(
        &store,
        &tenant,
        &flight,
        &format!("{DEFERRED_PREFIX}.ann@example.com"),
    )
    .await;
    let sink = SmtpSink::start(&skybook_testkit::test_dir("outbox-deferred"));
    let sender = OutboxSender::new(store.clone(), smtp(&sink.url()), config());

    assert_eq!(sender.run_once().await.unwrap(), 1);
    let row = outbox_row(&store, &booking).await;
    assert_eq!((row.sent_at, row.failed_at), (None, None));
    assert!(undeliverable_alerts(&store).await.is_empty());
    let unsent = store
        .unsent_outbox_emails(Utc::now() + chrono::Duration::seconds(1), 10)
        .await
        .unwrap();
    assert!(
        unsent[0].last_error.as_deref().unwrap().contains("451"),
        "{unsent:?}"
    );
    assert_eq!(sender.run_once().await.unwrap(), 1, "claimed again");
    assert_eq!(outbox_row(&store, &booking).await.attempts, 2);
}

backend_tests!(
    confirmation_is_handed_to_the_smtp_server_once,
    an_unreachable_smtp_server_means_a_retry_not_a_loss,
    an_email_refused_for_good_is_failed_and_alerted_once_not_retried,
    a_temporary_refusal_is_retried_not_failed,
);

#[tokio::test]
async fn the_demo_writes_each_email_once_as_an_eml_file() {
    let store = skybook_testkit::store(Engine::Sqlite, "outbox_files").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let booking = confirmed_booking(&store, &tenant, &flight, "Byrne", "ch_1").await;
    let dir = skybook_testkit::test_dir("outbox-files").join("mail");
    let mailer = Arc::new(FileMailer::new(dir.clone(), from()));
    let sender = OutboxSender::new(store.clone(), mailer.clone(), config());
    assert_eq!(sender.run_once().await.unwrap(), 1);
    let path = mailer.path_for(&skybook_domain::confirmation_message_id(booking.id));
    let eml = std::fs::read_to_string(&path).unwrap();
    assert!(eml.contains(booking.reference.as_str()));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no partial files left behind"
    );
}

#[test]
fn the_confirmation_reads_well() {
    use skybook_domain::*;
    let flight = Flight {
        id: FlightId::new(),
        tenant_id: TenantId::new(),
        number: FlightNumber::parse("EI154").unwrap(),
        origin: AirportCode::parse("DUB").unwrap(),
        destination: AirportCode::parse("LHR").unwrap(),
        departs_at: "2026-12-01T09:30:00Z".parse().unwrap(),
        capacity: 10,
        seats_sold: 2,
        fare: Money::new(9599, Currency::parse("EUR").unwrap()),
    };
    let tenant = skybook_storage::Tenant {
        id: flight.tenant_id,
        slug: TenantSlug::parse("demo").unwrap(),
        name: "Demo Air".into(),
    };
    let row = skybook_testkit::fixtures::booking_row(tenant.id, &flight, "Walsh");
    let booking = skybook_storage::BookingRecord {
        id: row.id,
        tenant_id: tenant.id,
        reference: BookingReference::parse("K7M2QX").unwrap(),
        flight_id: flight.id,
        status: BookingStatus::Confirmed,
        contact_email: row.contact_email,
        passengers: vec![
            row.passengers[0].clone(),
            Passenger {
                given_name: PersonName::parse("Seán").unwrap(),
                family_name: PersonName::parse("Walsh").unwrap(),
            },
        ],
        seats: 2,
        amount: Money::new(19198, Currency::parse("EUR").unwrap()),
        card_last4: "4242".into(),
        card_brand: "visa".into(),
        entity_fingerprint: row.entity_fingerprint,
        charge_id: Some("ch_1".into()),
        failure_reason: None,
        hold_expires_at: row.hold_expires_at,
        created_at: row.now,
        updated_at: row.now,
    };
    let email = skybook_notify::confirmation::compose(&tenant, &booking, &flight).unwrap();
    assert_eq!(email.message_id, confirmation_message_id(booking.id));
    insta::assert_snapshot!("confirmation_subject", email.subject);
    insta::assert_snapshot!("confirmation_text", email.text);
    insta::assert_snapshot!("confirmation_html", email.html);
}
