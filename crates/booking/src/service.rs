//! The booking service: the entry point the web layer (and later the sentinel) calls.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use skybook_clients::payments::{CardDetails, PaymentProvider};
use skybook_domain::{
    CardFingerprint, EntityFingerprint, ErrorChain, IdempotencyKey, NewBooking, RequestFingerprint,
    RetryPolicy, SecretKey,
};
use skybook_storage::{IdempotencyRecord, StorageError, Store, Tenant};
use tracing::Instrument;

use crate::claim::{Claim, ClaimInput};
use crate::outcome::{BookingView, RenderOutcome, Rendered, Reply};

/// Timings of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// How long a request holds its idempotency key. Longer than the slowest charge with all its retries, so a
    /// live request is never taken over; after a crash a retry with the same key resumes once it lapses.
    pub key_lease: Duration,
    /// How long seats stay held for a booking that has not been charged; the sentinel releases them after.
    pub seat_hold: Duration,
    /// Retries of a phase whose transaction failed with a transient database error (connection lost, pool
    /// timeout, serialization failure, deadlock). A failed transaction wrote nothing, so running the phase again
    /// is safe; past the budget the request answers 503 and a retry (or the sentinel) picks it up.
    pub db_retry: RetryPolicy,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            key_lease: Duration::from_secs(60),
            seat_hold: Duration::from_secs(15 * 60),
            db_retry: RetryPolicy::database(),
        }
    }
}

/// Why a request got no outcome. The web layer maps each to its status code.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("flight not found")]
    FlightNotFound,
    #[error("the flight has already departed")]
    FlightDeparted,
    #[error("another request with this idempotency key is in progress")]
    RequestInProgress,
    #[error("the idempotency key was used for a different request")]
    KeyReused,
    #[error("the booking total is out of range")]
    AmountOutOfRange,
    #[error("the payment provider is unavailable: {0}")]
    PaymentUnavailable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The pipeline's task was cancelled (the runtime is shutting down); the key's lease lets a retry resume.
    #[error("booking task aborted: {0}")]
    Aborted(String),
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) payments: Arc<dyn PaymentProvider>,
    pub(crate) secret: Arc<SecretKey>,
    pub(crate) renderer: Arc<dyn RenderOutcome>,
    pub(crate) config: PipelineConfig,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct BookingService(pub(crate) Arc<Inner>);

impl BookingService {
    pub fn new(
        store: Store,
        payments: Arc<dyn PaymentProvider>,
        secret: Arc<SecretKey>,
        renderer: Arc<dyn RenderOutcome>,
        config: PipelineConfig,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            payments,
            secret,
            renderer,
            config,
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Creates a booking, or replays / resumes the request this key already made.
    ///
    /// The work runs on its own task, so a client that goes away (a browser's second click cancels the first
    /// request's navigation; a proxy times out) does not cut the pipeline off between its phases: the request
    /// that started a booking finishes it, and the retry finds the stored answer instead of a lease to wait out.
    pub async fn create(
        &self,
        tenant: &Tenant,
        key: &IdempotencyKey,
        request: NewBooking,
    ) -> Result<Reply, BookingError> {
        let (service, tenant, key) = (self.clone(), tenant.clone(), key.clone());
        // The task keeps the request's crash context: a panic in it is reported as this request's.
        let task = tokio::spawn(
            skybook_crash::propagate(async move { service.run(&tenant, &key, request).await })
                .in_current_span(),
        );
        match task.await {
            Ok(result) => result,
            // Re-raised on the caller's task, where the web layer's panic handling answers with a 500.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(BookingError::Aborted(e.to_string())),
        }
    }

    #[tracing::instrument(name = "booking.create", skip_all, fields(tenant = %tenant.slug, booking.id, outcome))]
    async fn run(
        &self,
        tenant: &Tenant,
        key: &IdempotencyKey,
        request: NewBooking,
    ) -> Result<Reply, BookingError> {
        let inner = &self.0;
        let fingerprint = RequestFingerprint::compute(&inner.secret, tenant.id, &request);

        let card_fingerprint = CardFingerprint::compute(&inner.secret, &request.card.number);
        let entity_fingerprint = EntityFingerprint::compute(
            &inner.secret,
            tenant.id,
            request.flight_id,
            &request.passengers,
            &card_fingerprint,
        );
        let holder = uuid::Uuid::new_v4();
        let input = || ClaimInput {
            tenant,
            key,
            fingerprint: &fingerprint,
            request: &request,
            card_fingerprint: card_fingerprint.clone(),
            entity_fingerprint: entity_fingerprint.clone(),
            holder,
        };
        // Replays and in-progress answers come out of the claim too: its key insert is the check.
        let (booking, flight, attempt) = match self
            .retry_transient("claim", || self.claim(input()))
            .await?
        {
            Claim::Answered(reply) => return Ok(reply),
            Claim::Proceed {
                booking,
                flight,
                attempt,
            } => (booking, flight, attempt),
        };
        tracing::Span::current().record("booking.id", tracing::field::display(booking.id));
        let view = BookingView::new(*booking, flight);
        let reply = self
            .charge_and_settle(tenant, key, view, attempt, &request)
            .await?;
        tracing::Span::current().record("outcome", reply.label);
        Ok(reply)
    }
}

impl BookingService {
    /// Runs `phase` again while it fails with a transient database error, within [`PipelineConfig::db_retry`].
    /// Each phase is one transaction, so a failed attempt left nothing behind.
    pub(crate) async fn retry_transient<T, F, Fut>(
        &self,
        phase: &'static str,
        phase_fn: F,
    ) -> Result<T, BookingError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BookingError>>,
    {
        use backon::Retryable;
        phase_fn
            .retry(self.0.config.db_retry.backoff())
            .when(BookingError::is_transient_storage)
            .notify(|e, delay| {
                metrics::counter!("skybook_db_retries_total", "phase" => phase).increment(1);
                tracing::warn!(phase, error = %ErrorChain(e), retry_in_ms = delay.as_millis() as u64, "database unavailable; retrying the phase");
            })
            .await
    }
}

impl BookingError {
    /// A database failure that may pass (connection lost, pool timeout, serialization failure, deadlock).
    pub fn is_transient_storage(&self) -> bool {
        matches!(self, Self::Storage(e) if e.is_transient())
    }
}

/// What an existing key answers without further work: its stored response, 422 for a different request, 409
/// while another request holds it. `None` when the request should go on (a resume after a lapsed lease).
pub(crate) fn check_existing(
    existing: &IdempotencyRecord,
    fingerprint: &RequestFingerprint,
) -> Result<Option<Reply>, BookingError> {
    if &existing.request_fingerprint != fingerprint {
        return Err(BookingError::KeyReused);
    }
    if let Some((status, body)) = existing.response() {
        metrics::counter!("skybook_bookings_total", "outcome" => "replayed").increment(1);
        return Ok(Some(Reply {
            rendered: Rendered {
                status,
                body: body.to_owned(),
            },
            replayed: true,
            label: "replayed",
        }));
    }
    if existing.is_locked(Utc::now()) {
        return Err(BookingError::RequestInProgress);
    }
    Ok(None)
}

/// The card as the provider's tokeniser takes it.
pub(crate) fn card_details(request: &NewBooking) -> CardDetails {
    let card = &request.card;
    CardDetails {
        number: SecretString::from(card.number.expose_digits().to_owned()),
        exp_month: card.expiry.month(),
        exp_year: card.expiry.year(),
        cvc: SecretString::from(card.cvc.expose().to_owned()),
    }
}
