//! The outbox sender with a real SMTP server.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use skybook_domain::RetryPolicy;
use skybook_notify::{FileMailer, Mailer, OutboxSender, OutboxSenderConfig, SmtpMailer};
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{confirmed_booking, tenant_with_flight, CARD_OK};
use skybook_testkit::smtp::{decode_quoted_printable, SmtpSink};

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

backend_tests!(
    confirmation_is_handed_to_the_smtp_server_once,
    an_unreachable_smtp_server_means_a_retry_not_a_loss,
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
