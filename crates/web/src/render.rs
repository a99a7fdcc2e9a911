//! The JSON shapes of the booking API, and the [`RenderOutcome`] the pipeline stores responses with.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use skybook_booking::{BookingView, Outcome, RenderOutcome, Rendered};
use skybook_domain::{Flight, Money};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyJson {
    /// Integer minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<&Money> for MoneyJson {
    fn from(m: &Money) -> Self {
        Self {
            amount_minor: m.amount_minor,
            currency: m.currency.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlightJson {
    pub id: String,
    pub number: String,
    pub origin: String,
    pub destination: String,
    /// RFC 3339, UTC.
    pub departs_at: String,
    pub seats_left: u32,
    pub fare: MoneyJson,
}

impl From<&Flight> for FlightJson {
    fn from(f: &Flight) -> Self {
        Self {
            id: f.id.to_string(),
            number: f.number.to_string(),
            origin: f.origin.to_string(),
            destination: f.destination.to_string(),
            departs_at: timestamp(f.departs_at),
            seats_left: f.seats_left(),
            fare: (&f.fare).into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlightsJson {
    pub flights: Vec<FlightJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PassengerJson {
    pub given_name: String,
    pub family_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardSummaryJson {
    pub brand: String,
    pub last4: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookedFlightJson {
    pub id: String,
    pub number: String,
    pub origin: String,
    pub destination: String,
    pub departs_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingJson {
    /// The 6-character booking reference.
    pub reference: String,
    /// `seat_held`, `payment_pending`, `confirmed` or `failed`.
    pub status: String,
    pub flight: BookedFlightJson,
    pub contact_email: String,
    pub passengers: Vec<PassengerJson>,
    pub amount: MoneyJson,
    pub card: CardSummaryJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingEnvelope {
    pub booking: BookingJson,
}

impl From<&BookingView> for BookingJson {
    fn from(v: &BookingView) -> Self {
        let b = &v.booking;
        Self {
            reference: b.reference.to_string(),
            status: b.status.to_string(),
            flight: BookedFlightJson {
                id: v.flight.id.to_string(),
                number: v.flight.number.to_string(),
                origin: v.flight.origin.to_string(),
                destination: v.flight.destination.to_string(),
                departs_at: timestamp(v.flight.departs_at),
            },
            contact_email: b.contact_email.to_string(),
            passengers: b
                .passengers
                .iter()
                .map(|p| PassengerJson {
                    given_name: p.given_name.as_str().into(),
                    family_name: p.family_name.as_str().into(),
                })
                .collect(),
            amount: (&b.amount).into(),
            card: CardSummaryJson {
                brand: b.card_brand.clone(),
                last4: b.card_last4.clone(),
            },
            failure_reason: b.failure_reason.clone(),
            created_at: timestamp(b.created_at),
        }
    }
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Renders pipeline outcomes as CONTRACT.md's booking responses.
pub struct JsonRenderer;

impl RenderOutcome for JsonRenderer {
    fn render(&self, outcome: &Outcome) -> Rendered {
        let (status, body) = match outcome {
            Outcome::Confirmed(v) => (201, json!({"booking": BookingJson::from(v)})),
            Outcome::Pending(v) => (202, json!({"booking": BookingJson::from(v)})),
            Outcome::Failed(v) if v.booking.failure_reason.as_deref() == Some("card_declined") => (
                402,
                json!({"error": "card_declined", "booking": BookingJson::from(v)}),
            ),
            Outcome::Failed(v) => (
                502,
                json!({"error": "payment_failed", "booking": BookingJson::from(v)}),
            ),
            Outcome::SoldOut => (409, json!({"error": "sold_out"})),
            Outcome::Duplicate(existing) => (
                409,
                json!({"error": "duplicate_booking",
                       "existing": {"reference": existing.reference.as_str(), "status": existing.status.as_str()}}),
            ),
        };
        Rendered {
            status,
            body: body.to_string(),
        }
    }
}
