//! Bringing live bookings made under an older entity-fingerprint form to the current one, so the duplicate
//! guard (the unique index on the fingerprint) covers them as it covers new ones: without it, a traveller
//! booked before names were compared on their machine-readable form could be booked — and charged — again
//! under a new key.

use skybook_domain::EntityFingerprint;
use skybook_storage::NewAlert;

use crate::service::{BookingError, BookingService};

/// Bookings fingerprinted again per round.
const BATCH: i64 = 500;

/// What one [`BookingService::refingerprint_legacy`] pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refingerprinted {
    pub updated: usize,
    /// Live bookings whose new fingerprint another live booking already had: one traveller booked twice
    /// before names were compared this way. Alerted, left for the operators (no charge is touched).
    pub duplicates: usize,
}

impl BookingService {
    /// Fingerprints every live booking of an older form again, batch by batch, until none is left. Safe on any
    /// number of nodes at once: each update applies only while the booking is still of the older form.
    #[tracing::instrument(name = "booking.refingerprint_legacy", skip_all)]
    pub async fn refingerprint_legacy(&self) -> Result<Refingerprinted, BookingError> {
        let store = &self.0.store;
        let mut done = Refingerprinted::default();
        loop {
            let batch = store.legacy_fingerprinted_bookings(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for b in batch {
                let fingerprint = EntityFingerprint::compute(
                    &self.0.secret,
                    b.tenant_id,
                    b.flight_id,
                    &b.passengers,
                    &b.card_fingerprint,
                );
                if store.refingerprint(b.tenant_id, b.id, &fingerprint).await? {
                    done.updated += 1;
                    continue;
                }
                done.duplicates += 1;
                let alert = NewAlert {
                    kind: "duplicate_traveller",
                    subject: b.id.to_string(),
                    tenant_id: Some(b.tenant_id),
                    message: format!(
                        "booking {} is the same traveller, flight and card as another live booking",
                        b.id
                    ),
                    details: serde_json::json!({ "booking_id": b.id.to_string() }),
                };
                store.raise_alert(&alert, chrono::Utc::now()).await?;
            }
        }
        if done != Refingerprinted::default() {
            tracing::info!(?done, "live bookings fingerprinted again");
        }
        Ok(done)
    }
}
