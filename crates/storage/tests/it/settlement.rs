//! The pipeline's combined writes: `Tx::place_booking` (Tx 1's row, seats and key) and `Store::settle` (Tx 2's
//! change, email and response), each all or nothing.

use chrono::{Duration, Utc};
use skybook_domain::*;
use skybook_storage::*;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{booking_row, held_booking, tenant_with_flight};

const UNSETTLED: &[BookingStatus] = &[BookingStatus::SeatHeld, BookingStatus::PaymentPending];

fn confirm(charge_id: &str) -> StatusChange<'_> {
    StatusChange::new(UNSETTLED, BookingStatus::Confirmed)
        .expect("a transition of the state machine")
        .with_charge(charge_id)
}

/// Settles `booking` as confirmed with its confirmation email and `body` stored on `key`.
async fn settle_confirmed(
    store: &Store,
    booking: &BookingRecord,
    key: &IdempotencyKey,
    charge_id: &str,
    body: &str,
) -> Option<BookingRecord> {
    let email = NewOutboxEmail::confirmation(booking);
    store
        .settle(&Settlement {
            tenant: booking.tenant_id,
            booking: booking.id,
            change: confirm(charge_id),
            email: Some(&email),
            response: Some(FinalResponse {
                key,
                status: 201,
                body,
            }),
            now: Utc::now(),
        })
        .await
        .unwrap()
}

/// A key leased by a request, as Tx 1 leaves it.
async fn leased_key(store: &Store, tenant: TenantId, name: &str) -> IdempotencyKey {
    let key = IdempotencyKey::parse(&format!("settlement-key-{name}-0123456789")).unwrap();
    let now = Utc::now();
    let mut tx = store.begin().await.unwrap();
    let fingerprint = RequestFingerprint::parse(&"b".repeat(64)).unwrap();
    assert!(tx
        .insert_idempotency_key(
            tenant,
            &key,
            &fingerprint,
            (now + Duration::minutes(1), uuid::Uuid::new_v4()),
            now
        )
        .await
        .unwrap());
    tx.commit().await.unwrap();
    key
}

async fn settling_writes_the_change_the_email_and_the_response(engine: Engine) {
    let store = skybook_testkit::store(engine, "settle_applies").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let booking = held_booking(
        &store,
        &tenant,
        &flight,
        "Lee",
        Utc::now() + Duration::minutes(15),
    )
    .await;
    let key = leased_key(&store, tenant.id, "applies").await;
    let settled = settle_confirmed(&store, &booking, &key, "ch_settled", "{\"booking\":{}}")
        .await
        .expect("an unsettled booking is settled");
    assert_eq!(
        (settled.status, settled.charge_id.as_deref()),
        (BookingStatus::Confirmed, Some("ch_settled"))
    );
    let stored = store.booking(tenant.id, booking.id).await.unwrap().unwrap();
    assert_eq!(
        format!("{stored:?}"),
        format!("{settled:?}"),
        "returned as stored"
    );
    let emails = store
        .outbox_for_booking(tenant.id, booking.id)
        .await
        .unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].message_id, confirmation_message_id(booking.id));
    let record = store
        .idempotency_key(tenant.id, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.response(), Some((201, "{\"booking\":{}}")));
    assert!(!record.is_locked(Utc::now()), "the lease is released");
}

async fn settling_a_booking_settled_since_writes_nothing(engine: Engine) {
    let store = skybook_testkit::store(engine, "settle_skips").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let booking = held_booking(
        &store,
        &tenant,
        &flight,
        "Ray",
        Utc::now() + Duration::minutes(15),
    )
    .await;
    let key = leased_key(&store, tenant.id, "skips").await;
    // The sentinel gave the booking up first (its settlements carry neither email nor response).
    let failed = Settlement {
        tenant: tenant.id,
        booking: booking.id,
        change: StatusChange::new(UNSETTLED, BookingStatus::Failed)
            .expect("a transition of the state machine")
            .with_failure(FailureReason::HoldExpired),
        email: None,
        response: None,
        now: Utc::now(),
    };
    let given_up = store.settle(&failed).await.unwrap().expect("applied");
    assert_eq!(given_up.failure_reason.as_deref(), Some("hold_expired"));

    let settled = settle_confirmed(&store, &booking, &key, "ch_late", "{}").await;
    assert!(settled.is_none(), "the change did not apply");
    let stored = store.booking(tenant.id, booking.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.charge_id),
        (BookingStatus::Failed, None)
    );
    assert!(store
        .outbox_for_booking(tenant.id, booking.id)
        .await
        .unwrap()
        .is_empty());
    let record = store
        .idempotency_key(tenant.id, &key)
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.response().is_none() && record.is_locked(Utc::now()),
        "the key is untouched"
    );
}

async fn placing_takes_seats_and_attaches_the_key_or_nothing(engine: Engine) {
    let store = skybook_testkit::store(engine, "placing").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 1).await;
    let seats_sold = |store: Store| async move {
        let flight = store.flight(tenant.id, flight.id).await.unwrap().unwrap();
        flight.seats_sold
    };

    let key = leased_key(&store, tenant.id, "placed").await;
    let row = booking_row(tenant.id, &flight, "First");
    let mut tx = store.begin().await.unwrap();
    let PlaceBooking::Held(held) = tx.place_booking(&row, &key).await.unwrap() else {
        panic!("the last seat is taken");
    };
    tx.commit().await.unwrap();
    assert_eq!((held.id, held.status), (row.id, BookingStatus::SeatHeld));
    assert_eq!(seats_sold(store.clone()).await, 1);
    let record = store
        .idempotency_key(tenant.id, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.booking_id,
        Some(row.id),
        "the key points at the booking"
    );

    // The same entity again: the live booking is named and nothing is written.
    let again_key = leased_key(&store, tenant.id, "again").await;
    let mut again = booking_row(tenant.id, &flight, "First");
    again.entity_fingerprint = row.entity_fingerprint.clone();
    let mut tx = store.begin().await.unwrap();
    let PlaceBooking::Duplicate(existing) = tx.place_booking(&again, &again_key).await.unwrap()
    else {
        panic!("a live booking of the same entity exists");
    };
    tx.commit().await.unwrap();
    assert_eq!(existing.id, row.id);

    // Another traveller: inserted, but no seat is left; no seat is taken and the key is not attached.
    let late_key = leased_key(&store, tenant.id, "late").await;
    let late = booking_row(tenant.id, &flight, "Late");
    let mut tx = store.begin().await.unwrap();
    let PlaceBooking::SoldOut(sold_out) = tx.place_booking(&late, &late_key).await.unwrap() else {
        panic!("the flight is full");
    };
    assert_eq!(sold_out.id, late.id);
    tx.discard_new_booking(tenant.id, late.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(seats_sold(store.clone()).await, 1, "no oversell");
    assert!(store.booking(tenant.id, late.id).await.unwrap().is_none());
    let record = store
        .idempotency_key(tenant.id, &late_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.booking_id, None);
}

backend_tests!(
    placing_takes_seats_and_attaches_the_key_or_nothing,
    settling_writes_the_change_the_email_and_the_response,
    settling_a_booking_settled_since_writes_nothing,
);
