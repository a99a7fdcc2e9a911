//! One booking through claim, charge and settle: what each answer writes, and what it charges.

use serde_json::json;
use skybook_booking::BookingError;
use skybook_domain::BookingReference;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{CARD_DECLINED, CARD_OK};
use skybook_web::BookingAnswer;

use crate::harness::{key, Pipeline};

async fn a_booking_is_charged_once_confirmed_and_replayed(engine: Engine) {
    let app = Pipeline::start(engine, "pipeline_confirmed", 5).await;
    let k = key("ok", 0);
    let first = app
        .book(&k, app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    let BookingAnswer::Confirmed(booking) = &first.answer else {
        panic!("{first:?}")
    };
    assert_eq!((first.status, first.replayed), (201, false));
    assert_eq!(booking.status, "confirmed");
    assert_eq!((app.charges().await, app.seats_left().await), (1, 4));
    let stored = app
        .store
        .booking_by_reference(
            app.tenant.id,
            &BookingReference::parse(&booking.reference).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let emails = app
        .store
        .outbox_for_booking(app.tenant.id, stored.id)
        .await
        .unwrap();
    assert_eq!(emails.len(), 1, "Tx 2 queued the confirmation email");

    let again = app
        .book(&k, app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.status, &again.body),
        (201, &first.body),
        "a replay is the stored answer"
    );
    assert_eq!(app.charges().await, 1, "and charges nothing");
}

async fn the_same_trip_under_a_new_key_is_a_duplicate_and_not_charged(engine: Engine) {
    let app = Pipeline::start(engine, "pipeline_duplicate", 5).await;
    let first = app
        .book(&key("trip", 0), app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    let BookingAnswer::Confirmed(booking) = first.answer else {
        panic!("{}", first.body)
    };
    let second = app
        .book(&key("trip", 1), app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    let BookingAnswer::Duplicate(existing) = &second.answer else {
        panic!("{}", second.body)
    };
    assert_eq!(
        (existing.reference.as_str(), existing.status.as_str()),
        (booking.reference.as_str(), "confirmed")
    );
    assert_eq!((app.charges().await, app.seats_left().await), (1, 4));
}

async fn a_declined_card_fails_the_booking_and_releases_its_seats(engine: Engine) {
    let app = Pipeline::start(engine, "pipeline_declined", 5).await;
    let answer = app
        .book(&key("no", 0), app.request("Ann", "Lee", CARD_DECLINED))
        .await
        .unwrap();
    let BookingAnswer::Declined(booking) = &answer.answer else {
        panic!("{}", answer.body)
    };
    assert_eq!(answer.status, 402);
    assert_eq!(
        (booking.status.as_str(), booking.failure_reason.as_deref()),
        ("failed", Some("card_declined"))
    );
    assert_eq!((app.charges().await, app.seats_left().await), (0, 5));
}

async fn the_last_seat_goes_to_one_booking_and_the_next_is_sold_out(engine: Engine) {
    let app = Pipeline::start(engine, "pipeline_sold_out", 1).await;
    let first = app
        .book(&key("seat", 0), app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    assert!(
        matches!(first.answer, BookingAnswer::Confirmed(_)),
        "{}",
        first.body
    );
    let second = app
        .book(&key("seat", 1), app.request("Bob", "Ray", CARD_OK))
        .await
        .unwrap();
    assert_eq!(second.answer, BookingAnswer::SoldOut, "{}", second.body);
    assert_eq!((app.charges().await, app.seats_left().await), (1, 0));
}

async fn a_key_reused_for_another_request_is_refused(engine: Engine) {
    let app = Pipeline::start(engine, "pipeline_key_reused", 5).await;
    let k = key("reuse", 0);
    app.book(&k, app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    let other = app.book(&k, app.request("Bob", "Ray", CARD_OK)).await;
    assert!(matches!(other, Err(BookingError::KeyReused)), "{other:?}");
    assert_eq!(app.charges().await, 1);
}

/// Every charge response lost: the outcome is unknown, so the booking waits `payment_pending` (202); the retry
/// with the same key resumes it, finds the charge the provider kept under the booking id, and confirms it
/// without charging again.
async fn a_lost_charge_response_is_pending_then_settled_by_the_retry_without_a_second_charge(
    engine: Engine,
) {
    let app = Pipeline::start(engine, "pipeline_resume", 5).await;
    app.sandbox_faults(json!({"lose_next_charge_responses": 1000}))
        .await;
    let k = key("lost", 0);
    let first = app
        .book(&k, app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    assert!(
        matches!(first.answer, BookingAnswer::Pending(_)),
        "{}",
        first.body
    );
    assert_eq!(first.status, 202);
    assert_eq!(
        app.charges().await,
        1,
        "the provider charged, the answer was lost"
    );

    app.sandbox_faults(json!({"lose_next_charge_responses": 0}))
        .await;
    let retry = app
        .book(&k, app.request("Ann", "Lee", CARD_OK))
        .await
        .unwrap();
    assert!(
        matches!(retry.answer, BookingAnswer::Confirmed(_)),
        "{}",
        retry.body
    );
    assert_eq!(app.charges().await, 1, "resumed by asking, not by charging");
    assert_eq!(app.seats_left().await, 4);
}

backend_tests!(
    a_booking_is_charged_once_confirmed_and_replayed,
    the_same_trip_under_a_new_key_is_a_duplicate_and_not_charged,
    a_declined_card_fails_the_booking_and_releases_its_seats,
    the_last_seat_goes_to_one_booking_and_the_next_is_sold_out,
    a_key_reused_for_another_request_is_refused,
    a_lost_charge_response_is_pending_then_settled_by_the_retry_without_a_second_charge,
);
