//! A website booking whose request stopped between placing the booking and settling its payment (its node
//! died): once no request holds the key, the status page asks for the card again, and the next submit resumes
//! the same booking — charged once. (Found by the chaos soak: the visitor used to be left on a page that
//! "refreshes itself" until the hold expired.)

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use skybook_domain::{
    Card, CardNumber, Cvc, Email, Expiry, IdempotencyKey, NewBooking, Passenger, PersonName,
    RequestFingerprint,
};
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{self, CARD_OK};

use crate::harness::TestApp;
use crate::site::{booking_fields, borrowed};
use crate::visitor::Visitor;

async fn an_interrupted_payment_asks_for_the_card_again_and_resumes_the_booking(engine: Engine) {
    let app = TestApp::start(engine, "site_interrupted", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let path = format!("/book/{}", app.flight.id);
    let form = visitor.get(&path).await;
    let fields = booking_fields(&form, "Ann", CARD_OK);
    let key = form.input("idempotency_key").unwrap();

    // What a request that died after Tx 1 leaves: the key (its lease lapsed) and the booking holding a seat.
    let request = NewBooking {
        flight_id: app.flight.id,
        contact_email: Email::parse("ann@example.com").unwrap(),
        passengers: vec![Passenger {
            given_name: PersonName::parse("Ann").unwrap(),
            family_name: PersonName::parse("Lee").unwrap(),
        }],
        card: Card {
            number: CardNumber::parse(CARD_OK).unwrap(),
            expiry: Expiry::parse(12, 2031, Utc::now().date_naive()).unwrap(),
            cvc: Cvc::parse("123").unwrap(),
        },
    };
    let fingerprint =
        RequestFingerprint::compute(&skybook_testkit::secret_key(), app.tenant.id, &request);
    let booking = fixtures::held_booking(
        &app.store,
        &app.tenant,
        &app.flight,
        "Lee",
        Utc::now() + Duration::minutes(15),
    )
    .await;
    let now = Utc::now();
    let mut tx = app.store.begin().await.unwrap();
    let key_id = IdempotencyKey::parse(&key).unwrap();
    let lapsed = (now - Duration::seconds(1), uuid::Uuid::new_v4());
    assert!(tx
        .insert_idempotency_key(app.tenant.id, &key_id, &fingerprint, lapsed, now)
        .await
        .unwrap());
    tx.attach_booking_to_key(app.tenant.id, &key_id, booking.id)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let status = visitor.get(&format!("/book/status/{key}")).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.html);
    let reference = booking.reference.to_string();
    assert!(
        status.html.contains(&format!(
            "Your payment for booking {reference} was interrupted"
        )),
        "{}",
        status.html
    );
    assert_eq!(
        status.input("idempotency_key").as_deref(),
        Some(key.as_str()),
        "the same key: the same booking"
    );
    assert_eq!(app.sandbox_stats().await["charges"], 0);

    let posted = visitor.post(&path, &borrowed(&fields)).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.html);
    let page = visitor.follow(&posted).await;
    assert_eq!(
        page.text_of_id("reference").as_deref(),
        Some(reference.as_str()),
        "{}",
        page.html
    );
    let stored = app
        .store
        .booking(app.tenant.id, booking.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status.to_string(), "confirmed");
    assert_eq!(app.sandbox_stats().await["charges"], 1, "charged once");
}

backend_tests!(an_interrupted_payment_asks_for_the_card_again_and_resumes_the_booking);
