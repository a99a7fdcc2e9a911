//! Test data: a tenant with flights, valid booking bodies, the cards tests use.

use chrono::{Duration, Utc};
use skybook_domain::{
    AirportCode, BookingId, BookingReference, BookingStatus, CardFingerprint, CardNumber, Currency,
    Email, EntityFingerprint, Flight, FlightNumber, Money, Passenger, PersonName, TenantId,
    TenantSlug,
};
use skybook_storage::{
    BookingRecord, FlightSearch, InsertBooking, NewBookingRow, NewFlight, NewOutboxEmail,
    Settlement, StatusChange, Store, Tenant,
};

/// Cards used across the suite; the final scan looks for every one of them.
pub const CARD_OK: &str = "4242424242424242";
pub const CARD_OK_2: &str = "5555555555554444";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const ALL_CARDS: [&str; 3] = [CARD_OK, CARD_OK_2, CARD_DECLINED];

/// A tenant with one DUB→LHR flight tomorrow of `capacity` seats at 95.99 EUR.
pub async fn tenant_with_flight(store: &Store, slug: &str, capacity: u32) -> (Tenant, Flight) {
    let tenant = store
        .ensure_tenant(&TenantSlug::parse(slug).unwrap(), "Test Air")
        .await
        .unwrap();
    let flight = add_flight(store, &tenant, "EI154", capacity).await;
    (tenant, flight)
}

pub async fn add_flight(store: &Store, tenant: &Tenant, number: &str, capacity: u32) -> Flight {
    let departs_at = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(9, 30, 0)
        .unwrap()
        .and_utc();
    let new = NewFlight {
        number: FlightNumber::parse(number).unwrap(),
        origin: AirportCode::parse("DUB").unwrap(),
        destination: AirportCode::parse("LHR").unwrap(),
        departs_at,
        capacity,
        fare: Money::new(9599, Currency::parse("EUR").unwrap()),
    };
    store.ensure_flight(tenant.id, &new).await.unwrap();
    store
        .search_flights(
            tenant.id,
            &FlightSearch {
                date: Some(departs_at.date_naive()),
                ..FlightSearch::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.number.as_str() == number)
        .unwrap()
}

/// A valid booking request body for one passenger.
pub fn booking_body(flight: &Flight, given: &str, family: &str, card: &str) -> serde_json::Value {
    serde_json::json!({
        "flight_id": flight.id.to_string(),
        "contact_email": format!("{}@example.com", given.to_lowercase()),
        "passengers": [{"given_name": given, "family_name": family}],
        "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    })
}

/// The verdict on a storm of requests for one booking under different keys: exactly one `201`, every other
/// answer a `409 duplicate_booking` naming that booking (in a live status). Returns its reference.
pub fn assert_one_booking_rest_duplicates(results: &[(u16, serde_json::Value)]) -> String {
    let created: Vec<&serde_json::Value> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "exactly one booking: {results:?}");
    let reference = created[0]["booking"]["reference"]
        .as_str()
        .expect("a reference")
        .to_owned();
    for (status, body) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["error"], "duplicate_booking", "{body}");
        assert_eq!(body["existing"]["reference"], reference.as_str(), "{body}");
        assert!(
            matches!(
                body["existing"]["status"].as_str(),
                Some("seat_held" | "payment_pending" | "confirmed")
            ),
            "{body}"
        );
    }
    reference
}

/// The row Tx 1 would write for one passenger `Ann <family>` paying with [`CARD_OK`].
pub fn booking_row(tenant: TenantId, flight: &Flight, family: &str) -> NewBookingRow {
    let key = crate::secret_key();
    let passengers = vec![Passenger {
        given_name: PersonName::parse("Ann").unwrap(),
        family_name: PersonName::parse(family).unwrap(),
    }];
    let card = CardFingerprint::compute(&key, &CardNumber::parse(CARD_OK).unwrap());
    let now = Utc::now();
    NewBookingRow {
        id: BookingId::new(),
        tenant_id: tenant,
        reference: BookingReference::generate(&mut rand::rng()),
        flight_id: flight.id,
        contact_email: Email::parse("ann@example.com").unwrap(),
        entity_fingerprint: EntityFingerprint::compute(&key, tenant, flight.id, &passengers, &card),
        passengers,
        amount: flight.fare.clone(),
        card_last4: "4242".into(),
        card_brand: "visa".into(),
        card_fingerprint: card,
        hold_expires_at: now + Duration::minutes(15),
        now,
    }
}

/// A booking written straight to the store as Tx 1 leaves it: `seat_held`, its seat taken, the hold ending at
/// `hold_expires_at`.
pub async fn held_booking(
    store: &Store,
    tenant: &Tenant,
    flight: &Flight,
    family: &str,
    hold_expires_at: chrono::DateTime<Utc>,
) -> BookingRecord {
    let mut row = booking_row(tenant.id, flight, family);
    row.hold_expires_at = hold_expires_at;
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_booking(&row).await.unwrap(),
        InsertBooking::Inserted(_)
    ));
    assert!(tx.take_seats(tenant.id, flight.id, 1).await.unwrap());
    tx.commit().await.unwrap();
    store.booking(tenant.id, row.id).await.unwrap().unwrap()
}

/// A booking as Tx 1 and Tx 2 leave it: seat taken, `confirmed` with `charge_id`, and its confirmation email in
/// the outbox.
pub async fn confirmed_booking(
    store: &Store,
    tenant: &Tenant,
    flight: &Flight,
    family: &str,
    charge_id: &str,
) -> BookingRecord {
    let booking = held_booking(
        store,
        tenant,
        flight,
        family,
        Utc::now() + Duration::minutes(15),
    )
    .await;
    let email = NewOutboxEmail::confirmation(&booking);
    store
        .settle(&Settlement {
            tenant: tenant.id,
            booking: booking.id,
            change: StatusChange::new(&[BookingStatus::SeatHeld], BookingStatus::Confirmed)
                .expect("a transition of the state machine")
                .with_charge(charge_id),
            email: Some(&email),
            response: None,
            now: Utc::now(),
        })
        .await
        .unwrap()
        .expect("a held booking confirms")
}

/// Seats still for sale on `flight`, as the store has it now.
pub async fn seats_left(store: &Store, tenant: &Tenant, flight: &Flight) -> u32 {
    store
        .flight(tenant.id, flight.id)
        .await
        .unwrap()
        .unwrap()
        .seats_left()
}

/// A feed type of many rows and few columns (an integer key, a decimal, a text), for the benchmarks and tests
/// that load a large file.
pub const POINTS_FEED: &str = r#"
name = "points"
key = ["id"]

[[columns]]
name = "id"
type = "integer"
required = true

[[columns]]
name = "value"
type = "decimal"
required = true

[[columns]]
name = "label"
type = "text"
"#;
