//! A booking service on a fresh store, wired to a real sandbox over HTTP: the pipeline without the web layer.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use skybook_booking::{BookingError, BookingService, PipelineConfig};
use skybook_domain::{
    Card, CardNumber, Cvc, Email, Expiry, Flight, IdempotencyKey, NewBooking, Passenger, PersonName,
};
use skybook_sandbox::RunningSandbox;
use skybook_storage::{Engine, Store, Tenant};
use skybook_testkit::fixtures;
use skybook_testkit::payments::payments_for;
use skybook_web::{BookingAnswer, JsonRenderer};

pub use skybook_testkit::payments::unreachable_payments;

pub struct Pipeline {
    pub bookings: BookingService,
    pub store: Store,
    /// The store's database, for edits from outside skybook.
    pub url: String,
    pub sandbox: RunningSandbox,
    pub tenant: Tenant,
    pub flight: Flight,
}

/// What a booking request answered: the stored response's status, read back as the website reads it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub answer: BookingAnswer,
    pub replayed: bool,
    pub body: String,
}

impl Pipeline {
    /// Tenant `air` with one flight of `capacity` seats.
    pub async fn start(engine: Engine, name: &str, capacity: u32) -> Self {
        Self::start_with(engine, name, capacity, PipelineConfig::default()).await
    }

    pub async fn start_with(
        engine: Engine,
        name: &str,
        capacity: u32,
        config: PipelineConfig,
    ) -> Self {
        let url = skybook_testkit::fresh_database_url(engine, name).await;
        let store = skybook_testkit::store_at(&url).await;
        let sandbox = skybook_testkit::sandbox(name).await;
        let (tenant, flight) = fixtures::tenant_with_flight(&store, "air", capacity).await;
        let bookings = BookingService::new(
            store.clone(),
            payments_for(&sandbox),
            Arc::new(skybook_testkit::secret_key()),
            Arc::new(JsonRenderer),
            config,
        );
        Self {
            bookings,
            store,
            url,
            sandbox,
            tenant,
            flight,
        }
    }

    /// A booking service on the same store whose provider never answers.
    pub fn with_unreachable_provider(&self) -> BookingService {
        BookingService::new(
            self.store.clone(),
            unreachable_payments(),
            Arc::new(skybook_testkit::secret_key()),
            Arc::new(JsonRenderer),
            PipelineConfig::default(),
        )
    }

    /// One traveller on the flight, paying with `card`.
    pub fn request(&self, given: &str, family: &str, card: &str) -> NewBooking {
        let today = Utc::now().date_naive();
        NewBooking {
            flight_id: self.flight.id,
            contact_email: Email::parse(&format!("{}@example.com", ascii_lower(given))).unwrap(),
            passengers: vec![Passenger {
                given_name: PersonName::parse(given).unwrap(),
                family_name: PersonName::parse(family).unwrap(),
            }],
            card: Card {
                number: CardNumber::parse(card).unwrap(),
                expiry: Expiry::parse(12, 2031, today).unwrap(),
                cvc: Cvc::parse("123").unwrap(),
            },
        }
    }

    pub async fn book(&self, key: &str, request: NewBooking) -> Result<Answer, BookingError> {
        let key = IdempotencyKey::parse(key).unwrap();
        let reply = self.bookings.create(&self.tenant, &key, request).await?;
        Ok(Answer {
            status: reply.rendered.status,
            answer: BookingAnswer::read(&reply.rendered).expect("a booking answer"),
            replayed: reply.replayed,
            body: reply.rendered.body,
        })
    }

    pub async fn sandbox_stats(&self) -> Value {
        skybook_testkit::process::sandbox_stats(&self.sandbox.url()).await
    }

    pub async fn sandbox_faults(&self, faults: Value) {
        skybook_testkit::process::sandbox_faults(&self.sandbox.url(), faults).await;
    }

    /// Successful charges at the provider.
    pub async fn charges(&self) -> i64 {
        skybook_testkit::process::sandbox_charges(&self.sandbox.url()).await
    }

    pub async fn seats_left(&self) -> u32 {
        fixtures::seats_left(&self.store, &self.tenant, &self.flight).await
    }
}

/// `name` as an email's local part: its ASCII letters, lower-cased ("Zoé" → "zo").
fn ascii_lower(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A fresh idempotency key.
pub fn key(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:04}-{}", uuid::Uuid::new_v4().simple())
}
