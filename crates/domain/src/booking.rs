//! Bookings: the parsed request, the status state machine, and the flight data pricing needs.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::card::Card;
use crate::error::ParseError;
use crate::ids::{FlightId, TenantId};
use crate::money::Money;
use crate::passenger::Passenger;
use crate::text::{AirportCode, Email, FlightNumber};

/// A booking request that has passed every field rule. Building one is the "Receive" step.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub flight_id: FlightId,
    pub contact_email: Email,
    pub passengers: Vec<Passenger>,
    pub card: Card,
}

/// Where a booking is in the pipeline. The status doubles as its recovery point: after a crash the pipeline
/// resumes from what the status says has happened.
///
/// ```text
///   seat_held ──charge ok──▶ confirmed
///      │   └──outcome unknown──▶ payment_pending ──charge found──▶ confirmed
///      │                              │
///      └──declined / hold expired─────┴──no charge──▶ failed (seats released)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingStatus {
    /// Tx 1 committed: seats taken, nothing charged yet.
    SeatHeld,
    /// The charge was sent and its outcome is not known; the sentinel or a retry settles it.
    PaymentPending,
    /// Charged and recorded. Final.
    Confirmed,
    /// Not charged (declined, or abandoned before a charge); seats released. Final.
    Failed,
}

impl BookingStatus {
    pub const ALL: [BookingStatus; 4] = [
        Self::SeatHeld,
        Self::PaymentPending,
        Self::Confirmed,
        Self::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SeatHeld => "seat_held",
            Self::PaymentPending => "payment_pending",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| ParseError::new(format!("unknown booking status {raw:?}")))
    }

    /// Live bookings hold seats and count for duplicate detection.
    pub fn is_live(&self) -> bool {
        !matches!(self, Self::Failed)
    }

    pub fn can_become(&self, next: BookingStatus) -> bool {
        use BookingStatus::*;
        matches!(
            (self, next),
            (SeatHeld, PaymentPending)
                | (SeatHeld, Confirmed)
                | (SeatHeld, Failed)
                | (PaymentPending, Confirmed)
                | (PaymentPending, Failed)
        )
    }
}

crate::sqlx_string_newtype!(BookingStatus);

/// A status change the booking state machine does not allow ([`BookingStatus::can_become`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a booking cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: BookingStatus,
    pub to: BookingStatus,
}

impl fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a booking failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    CardDeclined,
    PaymentRejected,
    /// The provider could not be reached before anything was sent to it.
    ProviderUnavailable,
    HoldExpired,
}

impl FailureReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::PaymentRejected => "payment_rejected",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::HoldExpired => "hold_expired",
        }
    }
}

/// A scheduled flight as the pipeline and the API see it.
#[derive(Debug, Clone)]
pub struct Flight {
    pub id: FlightId,
    pub tenant_id: TenantId,
    pub number: FlightNumber,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departs_at: DateTime<Utc>,
    pub capacity: u32,
    pub seats_sold: u32,
    pub fare: Money,
}

impl Flight {
    pub fn seats_left(&self) -> u32 {
        self.capacity.saturating_sub(self.seats_sold)
    }

    /// The total for `passengers` travellers, or `None` on overflow.
    pub fn price_for(&self, passengers: usize) -> Option<Money> {
        self.fare.times(u32::try_from(passengers).ok()?)
    }
}

/// The outbox kind of a booking's confirmation email.
pub const CONFIRMATION_EMAIL_KIND: &str = "booking_confirmation";

/// The deterministic Message-ID of a booking's confirmation email: a re-send (after a crash between the SMTP
/// server's acceptance and our record of it) carries the same id, which receivers use to drop the copy.
pub fn confirmation_message_id(booking: crate::BookingId) -> String {
    format!("<booking-{booking}.confirmation@skybook>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine() {
        use BookingStatus::*;
        for s in BookingStatus::ALL {
            assert_eq!(BookingStatus::parse(s.as_str()).unwrap(), s);
            assert!(!s.can_become(s), "{s} -> {s}");
        }
        assert!(SeatHeld.can_become(Confirmed));
        assert!(PaymentPending.can_become(Failed));
        assert!(!Confirmed.can_become(Failed));
        assert!(!Failed.can_become(Confirmed));
        assert!(!Failed.is_live() && Confirmed.is_live());
    }
}
