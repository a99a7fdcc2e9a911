//! Tx 1 — claim: the idempotency key, the booking row and its seats, in one transaction.
//!
//! The key comes first: its insert is also the pipeline's replay check (an existing key is read under its row
//! lock and answers from what it holds), so a replay is answered whatever has become of the flight since. The
//! flight is read next, in the same transaction on the same connection; a missing or departed flight rolls the
//! new key back, leaving nothing behind, as any error before the booking row does.

use chrono::Utc;
use skybook_domain::{
    BookingId, BookingReference, CardFingerprint, EntityFingerprint, Flight, IdempotencyKey,
    NewBooking, RequestFingerprint,
};
use skybook_storage::{BookingRecord, NewBookingRow, PlaceBooking, Tenant, Tx};

use crate::outcome::{BookingView, Outcome, Reply};
use crate::service::{check_existing, BookingError, BookingService};

pub(crate) struct ClaimInput<'a> {
    pub tenant: &'a Tenant,
    pub key: &'a IdempotencyKey,
    pub fingerprint: &'a RequestFingerprint,
    pub request: &'a NewBooking,
    pub card_fingerprint: CardFingerprint,
    pub entity_fingerprint: EntityFingerprint,
    /// This run of the pipeline, the same for every retry of the phase: the key's lease is taken in its name.
    pub holder: uuid::Uuid,
}

pub(crate) enum Claim {
    /// The request is answered without charging: replay, duplicate, sold out.
    Answered(Reply),
    /// A booking holds seats and awaits its charge.
    Proceed {
        booking: Box<BookingRecord>,
        flight: Flight,
        attempt: Attempt,
    },
}

/// Whether a charge may already exist for a claimed booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// This request placed the booking: nothing has been sent to the provider.
    First,
    /// An earlier request with the same key placed it and may have sent the charge before it died.
    Resumed,
}

/// A fresh reference collides with odds of ~1 in 887 million per existing booking; a few draws always suffice.
const REFERENCE_ATTEMPTS: usize = 8;

impl BookingService {
    #[tracing::instrument(name = "booking.claim", skip_all, fields(tenant = %input.tenant.slug))]
    pub(crate) async fn claim(&self, input: ClaimInput<'_>) -> Result<Claim, BookingError> {
        let inner = &self.0;
        let now = Utc::now();
        let lease_until = now + inner.config.key_lease;
        let tenant = input.tenant.id;
        let mut tx = inner.store.begin().await?;

        let mut resume = None;
        let lease = (lease_until, input.holder);
        if !tx
            .insert_idempotency_key(tenant, input.key, input.fingerprint, lease, now)
            .await?
        {
            // The key exists (possibly committed a moment ago by a concurrent request): decide under its row lock.
            let existing = tx
                .lock_idempotency_key(tenant, input.key)
                .await?
                .ok_or_else(|| {
                    BookingError::Storage(skybook_storage::StorageError::Corrupt(
                        "idempotency key vanished".into(),
                    ))
                })?;
            // Leased to this very run: an earlier attempt of this phase committed, but the answer to its COMMIT
            // was lost (the connection died with the primary), so it was retried. Carry on with what it placed,
            // rather than answer "in progress" to the request that holds the lease.
            let own_lease =
                existing.lease_holder == Some(input.holder) && existing.response().is_none();
            if !own_lease {
                if let Some(reply) = check_existing(&existing, input.fingerprint)? {
                    return Ok(Claim::Answered(reply));
                }
            }
            // Ours, or unfinished and unleased (the request that held it died or left it pending): take the
            // lease and resume.
            tx.lease_idempotency_key(tenant, input.key, Some(lease), now)
                .await?;
            if let Some(booking_id) = existing.booking_id {
                resume = tx.booking(tenant, booking_id).await?;
            }
        }

        let flight = tx
            .flight(tenant, input.request.flight_id)
            .await?
            .ok_or(BookingError::FlightNotFound)?;
        if flight.departs_at <= now {
            return Err(BookingError::FlightDeparted);
        }
        if let Some(booking) = resume {
            // Touched, so the sentinel (which takes over only bookings left alone for a while) leaves it to this
            // request.
            tx.touch_booking(tenant, booking.id, now).await?;
            tx.commit().await?;
            tracing::info!(booking.id = %booking.id, "resuming a booking after its key's lease lapsed");
            return Ok(Claim::Proceed {
                booking: Box::new(booking),
                flight,
                attempt: Attempt::Resumed,
            });
        }
        let amount = flight
            .price_for(input.request.passengers.len())
            .ok_or(BookingError::AmountOutOfRange)?;

        let row = NewBookingRow {
            id: BookingId::new(),
            tenant_id: tenant,
            reference: BookingReference::generate(&mut rand::rng()),
            flight_id: flight.id,
            contact_email: input.request.contact_email.clone(),
            passengers: input.request.passengers.clone(),
            amount,
            card_last4: input.request.card.number.last4(),
            card_brand: input.request.card.number.brand().as_str().to_owned(),
            card_fingerprint: input.card_fingerprint,
            entity_fingerprint: input.entity_fingerprint,
            hold_expires_at: now + inner.config.seat_hold,
            now,
        };
        match self
            .place_with_fresh_reference(&mut tx, row, input.key)
            .await?
        {
            PlaceBooking::Held(booking) => {
                tx.commit().await?;
                Ok(Claim::Proceed {
                    booking,
                    flight,
                    attempt: Attempt::First,
                })
            }
            PlaceBooking::SoldOut(booking) => {
                tx.discard_new_booking(tenant, booking.id).await?;
                let reply = self
                    .finish(&mut tx, input.tenant, Some(input.key), Outcome::SoldOut)
                    .await?;
                tx.commit().await?;
                Ok(Claim::Answered(reply))
            }
            PlaceBooking::Duplicate(existing) => {
                tracing::info!(existing.reference = %existing.reference, "duplicate booking refused");
                let reply = self
                    .finish(
                        &mut tx,
                        input.tenant,
                        Some(input.key),
                        Outcome::Duplicate(*existing),
                    )
                    .await?;
                tx.commit().await?;
                Ok(Claim::Answered(reply))
            }
            PlaceBooking::ReferenceTaken => Err(BookingError::Storage(
                skybook_storage::StorageError::Corrupt(
                    "could not draw a free booking reference".into(),
                ),
            )),
        }
    }

    /// Places the booking ([`Tx::place_booking`]), drawing new references on collision. Never
    /// [`PlaceBooking::ReferenceTaken`] unless every draw collided.
    async fn place_with_fresh_reference(
        &self,
        tx: &mut Tx,
        mut row: NewBookingRow,
        key: &IdempotencyKey,
    ) -> Result<PlaceBooking, BookingError> {
        for _ in 1..REFERENCE_ATTEMPTS {
            match tx.place_booking(&row, key).await? {
                PlaceBooking::ReferenceTaken => {
                    row.reference = BookingReference::generate(&mut rand::rng());
                }
                placed => return Ok(placed),
            }
        }
        Ok(tx.place_booking(&row, key).await?)
    }

    /// Renders `outcome`, stores it as the key's final response (unless pending) and returns it.
    /// Without a key (the sentinel settling in the background) it only renders.
    pub(crate) async fn finish(
        &self,
        tx: &mut Tx,
        tenant: &Tenant,
        key: Option<&IdempotencyKey>,
        outcome: Outcome,
    ) -> Result<Reply, BookingError> {
        let reply = self.reply(&outcome);
        let now = Utc::now();
        match key {
            Some(key) if outcome.is_final() => {
                let rendered = &reply.rendered;
                tx.finish_idempotency_key(tenant.id, key, rendered.status, &rendered.body, now)
                    .await?;
            }
            Some(key) => tx.lease_idempotency_key(tenant.id, key, None, now).await?,
            None => {}
        }
        Ok(reply.counted())
    }

    /// `outcome` rendered as this request's answer.
    pub(crate) fn reply(&self, outcome: &Outcome) -> Reply {
        Reply {
            rendered: self.0.renderer.render(outcome),
            replayed: false,
            label: outcome.label(),
        }
    }
}

impl Reply {
    /// Counts the outcome, once it is the answer.
    pub(crate) fn counted(self) -> Self {
        metrics::counter!("skybook_bookings_total", "outcome" => self.label).increment(1);
        self
    }
}

impl BookingView {
    pub(crate) fn new(booking: BookingRecord, flight: Flight) -> Self {
        Self { booking, flight }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use skybook_domain::{
        Card, CardNumber, Cvc, Email, Expiry, IdempotencyKey, NewBooking, Passenger, PersonName,
    };
    use skybook_testkit::{backend_tests, fixtures, Engine};

    use super::{Attempt, Claim, ClaimInput};
    use crate::outcome::{Outcome, RenderOutcome, Rendered};
    use crate::service::{BookingError, BookingService};
    use crate::PipelineConfig;

    struct Status;
    impl RenderOutcome for Status {
        fn render(&self, _: &Outcome) -> Rendered {
            Rendered {
                status: 200,
                body: "{}".into(),
            }
        }
    }

    /// A claim whose COMMIT reached the database but whose answer was lost is retried by the same run of the
    /// pipeline (same holder): it finds its own lease and carries on with the booking it placed. Any other run
    /// with the same key, meanwhile, is told the request is in progress.
    async fn a_retried_claim_carries_on_with_its_own_lease(engine: Engine) {
        let url = skybook_testkit::fresh_database_url(engine, "own_lease").await;
        let store = skybook_testkit::store_at(&url).await;
        let (tenant, flight) = fixtures::tenant_with_flight(&store, "air", 5).await;
        let service = BookingService::new(
            store.clone(),
            skybook_testkit::payments::unreachable_payments(),
            Arc::new(skybook_testkit::secret_key()),
            Arc::new(Status),
            PipelineConfig::default(),
        );
        let request = NewBooking {
            flight_id: flight.id,
            contact_email: Email::parse("ann@example.com").unwrap(),
            passengers: vec![Passenger {
                given_name: PersonName::parse("Ann").unwrap(),
                family_name: PersonName::parse("Lee").unwrap(),
            }],
            card: Card {
                number: CardNumber::parse(fixtures::CARD_OK).unwrap(),
                expiry: Expiry::parse(12, 2031, Utc::now().date_naive()).unwrap(),
                cvc: Cvc::parse("123").unwrap(),
            },
        };
        let key = IdempotencyKey::parse("own-lease-key-0000001").unwrap();
        let secret = skybook_testkit::secret_key();
        let fingerprint = skybook_domain::RequestFingerprint::compute(&secret, tenant.id, &request);
        let card = skybook_domain::CardFingerprint::compute(&secret, &request.card.number);
        let entity = skybook_domain::EntityFingerprint::compute(
            &secret,
            tenant.id,
            flight.id,
            &request.passengers,
            &card,
        );
        let input = |holder| ClaimInput {
            tenant: &tenant,
            key: &key,
            fingerprint: &fingerprint,
            request: &request,
            card_fingerprint: card.clone(),
            entity_fingerprint: entity.clone(),
            holder,
        };
        let run = uuid::Uuid::new_v4();
        let Claim::Proceed {
            booking: placed,
            attempt: Attempt::First,
            ..
        } = service.claim(input(run)).await.unwrap()
        else {
            panic!("the first claim places the booking");
        };
        // Another run with the key: the first holds it.
        assert!(matches!(
            service.claim(input(uuid::Uuid::new_v4())).await,
            Err(BookingError::RequestInProgress)
        ));
        // The same run again (its first attempt's answer "lost"): the booking it placed, not a second one.
        let Claim::Proceed { booking: again, .. } = service.claim(input(run)).await.unwrap() else {
            panic!("the retried claim carries on");
        };
        assert_eq!(again.id, placed.id);
        assert_eq!(
            fixtures::seats_left(&store, &tenant, &flight).await,
            4,
            "one seat taken, once"
        );
    }

    backend_tests!(a_retried_claim_carries_on_with_its_own_lease);
}
