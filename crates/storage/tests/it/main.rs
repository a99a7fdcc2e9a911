//! The storage contract, run against SQLite and PostgreSQL alike.

mod browse;
mod crashes;
mod events;
mod import_progress;
mod job_admin;
mod jobs;
mod operations;
mod outbox;
mod sessions;
mod settlement;

use std::sync::Arc;

use chrono::{Duration, Utc};
use futures::future::join_all;
use skybook_domain::*;
use skybook_storage::*;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{booking_row, held_booking, tenant_with_flight};

async fn migrations_report_up_to_date(engine: Engine) {
    let store = skybook_testkit::store(engine, "migrations").await;
    assert_eq!(
        store.migration_status().await.unwrap(),
        MigrationStatus::UpToDate
    );
    assert_eq!(store.engine(), engine);
    store.migrate().await.expect("migrating twice is a no-op");
    store.ping().await.unwrap();
}

async fn fresh_database_reports_pending_migrations(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "pending").await;
    let store = Store::connect(&url, &PoolSettings::default())
        .await
        .unwrap();
    assert!(
        matches!(store.migration_status().await.unwrap(), MigrationStatus::Pending(v) if !v.is_empty())
    );
}

async fn seeding_is_idempotent_and_search_filters(engine: Engine) {
    let store = skybook_testkit::store(engine, "seeding").await;
    let (tenant, flight) = tenant_with_flight(&store, "air-one", 5).await;
    let (again, same) = tenant_with_flight(&store, "air-one", 5).await;
    assert_eq!(tenant, again);
    assert_eq!(flight.id, same.id, "re-seeding must not duplicate a flight");

    let dub = AirportCode::parse("DUB").unwrap();
    let lhr = AirportCode::parse("LHR").unwrap();
    let day = flight.departs_at.date_naive();
    let search = |origin: &AirportCode, destination: &AirportCode, date| FlightSearch {
        origin: Some(origin.clone()),
        destination: Some(destination.clone()),
        date: Some(date),
        after: None,
        limit: 10,
    };
    assert_eq!(
        store
            .search_flights(tenant.id, &search(&dub, &lhr, day))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .search_flights(tenant.id, &search(&lhr, &dub, day))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .search_flights(tenant.id, &search(&dub, &lhr, day.succ_opt().unwrap()))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .search_flights(tenant.id, &FlightSearch::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let after_departure = FlightSearch {
        after: Some(flight.departs_at + Duration::seconds(1)),
        ..FlightSearch::default()
    };
    assert!(
        store
            .search_flights(tenant.id, &after_departure)
            .await
            .unwrap()
            .is_empty(),
        "departed flights are not offered"
    );

    let (other, _) = tenant_with_flight(&store, "air-two", 5).await;
    assert!(
        store.flight(other.id, flight.id).await.unwrap().is_none(),
        "flights are scoped by tenant"
    );
}

async fn seats_never_oversell_under_concurrency(engine: Engine) {
    let store = skybook_testkit::store(engine, "oversell").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 10).await;
    let attempts = (0..30).map(|_| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let taken = tx.take_seats(tenant.id, flight.id, 1).await.unwrap();
            tx.commit().await.unwrap();
            taken
        }
    });
    let taken = join_all(attempts.map(tokio::spawn))
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(taken, 10);
    let flight = store.flight(tenant.id, flight.id).await.unwrap().unwrap();
    assert_eq!((flight.seats_sold, flight.seats_left()), (10, 0));
}

async fn one_live_booking_per_entity_under_concurrency(engine: Engine) {
    let store = skybook_testkit::store(engine, "entity").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 50).await;
    let flight = Arc::new(flight);
    let attempts = (0..20).map(|_| {
        let (store, flight) = (store.clone(), flight.clone());
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let result = tx
                .insert_booking(&booking_row(tenant.id, &flight, "Lee"))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            result
        })
    });
    let results = join_all(attempts).await;
    let inserted = results
        .iter()
        .filter(|r| matches!(r.as_ref().unwrap(), InsertBooking::Inserted(_)))
        .count();
    let duplicates = results
        .iter()
        .filter(|r| matches!(r.as_ref().unwrap(), InsertBooking::Duplicate(_)))
        .count();
    assert_eq!((inserted, duplicates), (1, 19));

    // Once the live one fails, the same entity may book again.
    let InsertBooking::Duplicate(live) = results
        .into_iter()
        .find_map(|r| match r.unwrap() {
            d @ InsertBooking::Duplicate(_) => Some(d),
            _ => None,
        })
        .unwrap()
    else {
        unreachable!()
    };
    let mut tx = store.begin().await.unwrap();
    let change = StatusChange::new(&[BookingStatus::SeatHeld], BookingStatus::Failed)
        .expect("a transition of the state machine")
        .with_failure(FailureReason::CardDeclined);
    let changed = tx
        .change_status(tenant.id, live.id, &change, Utc::now())
        .await
        .unwrap()
        .expect("a held booking can fail");
    assert_eq!(changed.status, BookingStatus::Failed, "returned as changed");
    assert_eq!(
        changed.failure_reason.as_deref(),
        Some(FailureReason::CardDeclined.as_str())
    );
    assert!(
        tx.change_status(tenant.id, live.id, &change, Utc::now())
            .await
            .unwrap()
            .is_none(),
        "status changes are conditional"
    );
    assert!(matches!(
        tx.insert_booking(&booking_row(tenant.id, &flight, "Lee"))
            .await
            .unwrap(),
        InsertBooking::Inserted(_)
    ));
    tx.commit().await.unwrap();
}

/// The sentinel's guard: a change conditioned on "untouched since I listed it" does not apply to a booking a
/// request touched (resumed) after that, and does apply to one nobody touched.
async fn a_guarded_status_change_skips_a_booking_touched_since(engine: Engine) {
    let store = skybook_testkit::store(engine, "guarded_change").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let hold = Utc::now() + Duration::minutes(15);
    let left_alone = held_booking(&store, &tenant, &flight, "Alone", hold).await;
    let resumed = held_booking(&store, &tenant, &flight, "Resumed", hold).await;
    let listed_at = Utc::now() + Duration::milliseconds(1);
    let mut tx = store.begin().await.unwrap();
    tx.touch_booking(tenant.id, resumed.id, listed_at + Duration::seconds(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let change = StatusChange::new(
        &[BookingStatus::SeatHeld, BookingStatus::PaymentPending],
        BookingStatus::Failed,
    )
    .expect("a transition of the state machine")
    .with_failure(FailureReason::HoldExpired)
    .untouched_before(Some(listed_at));
    let mut tx = store.begin().await.unwrap();
    let touched = tx
        .change_status(tenant.id, resumed.id, &change, Utc::now())
        .await
        .unwrap();
    let untouched = tx
        .change_status(tenant.id, left_alone.id, &change, Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(touched.is_none(), "the resumed booking is the request's");
    assert_eq!(
        untouched.map(|b| b.status),
        Some(BookingStatus::Failed),
        "the booking left alone is changed"
    );
    let stored = store.booking(tenant.id, resumed.id).await.unwrap().unwrap();
    assert_eq!(stored.status, BookingStatus::SeatHeld);
}

async fn bookings_are_scoped_by_tenant(engine: Engine) {
    let store = skybook_testkit::store(engine, "scoping").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 5).await;
    let (other, _) = tenant_with_flight(&store, "other", 5).await;
    let row = booking_row(tenant.id, &flight, "Kim");
    let mut tx = store.begin().await.unwrap();
    let InsertBooking::Inserted(inserted) = tx.insert_booking(&row).await.unwrap() else {
        panic!("a fresh booking is inserted");
    };
    // Returned as stored: what a later read gives.
    assert_eq!(
        (inserted.id, &inserted.reference, inserted.status),
        (row.id, &row.reference, BookingStatus::SeatHeld)
    );
    tx.commit().await.unwrap();
    let stored = store.booking(tenant.id, row.id).await.unwrap().unwrap();
    assert_eq!(format!("{stored:?}"), format!("{inserted:?}"));
    let found = store
        .booking_by_reference(tenant.id, &row.reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.status, found.card_last4.as_str()),
        (row.id, BookingStatus::SeatHeld, "4242")
    );
    assert_eq!(found.passengers, row.passengers);
    assert!(store
        .booking_by_reference(other.id, &row.reference)
        .await
        .unwrap()
        .is_none());
    assert!(store.booking(other.id, row.id).await.unwrap().is_none());
}

async fn idempotency_keys_insert_once_and_finish(engine: Engine) {
    let store = skybook_testkit::store(engine, "keys").await;
    let (tenant, _) = tenant_with_flight(&store, "air", 5).await;
    let key = IdempotencyKey::parse("key-0123456789abcdef").unwrap();
    let fp = RequestFingerprint::parse(&"a".repeat(64)).unwrap();
    let now = Utc::now();
    let attempts = (0..10).map(|_| {
        let (store, key, fp) = (store.clone(), key.clone(), fp.clone());
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let inserted = tx
                .insert_idempotency_key(
                    tenant.id,
                    &key,
                    &fp,
                    (now + Duration::seconds(60), uuid::Uuid::new_v4()),
                    now,
                )
                .await
                .unwrap();
            tx.commit().await.unwrap();
            inserted
        })
    });
    let inserted = join_all(attempts)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(inserted, 1);

    let record = store
        .idempotency_key(tenant.id, &key)
        .await
        .unwrap()
        .unwrap();
    assert!(record.is_locked(Utc::now()) && record.response().is_none());
    let mut tx = store.begin().await.unwrap();
    tx.finish_idempotency_key(tenant.id, &key, 201, "{\"ok\":true}", Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let record = store
        .idempotency_key(tenant.id, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.response(), Some((201, "{\"ok\":true}")));
    assert!(!record.is_locked(Utc::now()));
}

backend_tests!(
    migrations_report_up_to_date,
    fresh_database_reports_pending_migrations,
    seeding_is_idempotent_and_search_filters,
    seats_never_oversell_under_concurrency,
    one_live_booking_per_entity_under_concurrency,
    bookings_are_scoped_by_tenant,
    a_guarded_status_change_skips_a_booking_touched_since,
    idempotency_keys_insert_once_and_finish,
);

#[test]
fn the_default_pool_is_the_size_the_benchmark_measures() {
    // `serve`'s help, the docs and scripts/bench-bookings all say DEFAULT_MAX_CONNECTIONS; a default that
    // differs would run production with a pool nobody measured.
    assert_eq!(
        PoolSettings::default().max_connections,
        PoolSettings::DEFAULT_MAX_CONNECTIONS
    );
    // The number the CLI help and docs print.
    assert_eq!(PoolSettings::DEFAULT_MAX_CONNECTIONS, 8);
}

#[test]
fn only_transitions_of_the_state_machine_can_be_built() {
    use BookingStatus::*;
    for from in BookingStatus::ALL {
        for to in BookingStatus::ALL {
            let sources = [from];
            let built = StatusChange::new(&sources, to);
            assert_eq!(
                built.is_ok(),
                from.can_become(to),
                "{from} -> {to}: {built:?}"
            );
        }
    }
    // One illegal source among legal ones spoils the change: it names the culprit.
    let err = StatusChange::new(&[SeatHeld, Confirmed], Failed).unwrap_err();
    assert_eq!(
        err,
        IllegalTransition {
            from: Confirmed,
            to: Failed
        }
    );
}

#[test]
fn a_storage_error_names_its_cause_once() {
    let refused = || {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused by the test",
        ))
    };
    for (e, cause) in [
        (
            StorageError::from(sqlx::Error::PoolTimedOut),
            "pool timed out",
        ),
        (
            StorageError::from(refused()),
            "connection refused by the test",
        ),
    ] {
        assert!(e.is_transient());
        let chain = ErrorChain(&e).to_string();
        assert_eq!(
            chain.matches(cause).count(),
            1,
            "the cause appears once in {chain:?}"
        );
        assert!(chain.starts_with("database unavailable: "), "{chain:?}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the cause stays the source"
        );
    }
}
