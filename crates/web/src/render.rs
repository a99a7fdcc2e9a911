//! The JSON shapes of the booking API, and the [`RenderOutcome`] the pipeline stores responses with.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use skybook_booking::{BookingView, Outcome, RenderOutcome, Rendered};
use skybook_domain::{Flight, Money};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PassengerJson {
    pub given_name: String,
    pub family_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardSummaryJson {
    pub brand: String,
    pub last4: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BookedFlightJson {
    pub id: String,
    pub number: String,
    pub origin: String,
    pub destination: String,
    pub departs_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A booking request's answer, as the pipeline stores it under the idempotency key and replays it: the one
/// type that writes those bodies ([`JsonRenderer`]) and reads them back (the website, [`BookingAnswer::read`]).
#[derive(Debug, Clone, PartialEq)]
pub enum BookingAnswer {
    /// 201: booked and charged.
    Confirmed(BookingJson),
    /// 202: the payment outcome is not known yet.
    Pending(BookingJson),
    /// 402: the card was declined; nothing charged.
    Declined(BookingJson),
    /// 502: the payment failed for another reason; nothing charged.
    PaymentFailed(BookingJson),
    /// 409: not enough seats left.
    SoldOut,
    /// 409: a live booking for the same travellers, flight and card exists.
    Duplicate(ExistingBookingJson),
}

/// Every error answer of the API (documentation: [`crate::error::ApiError`] and [`BookingAnswer`] write them).
/// `error` is a stable code; which other fields come with it depends on the code.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ErrorJson {
    /// `not_found`, `invalid`, `idempotency_key_required`, `idempotency_key_reused`, `request_in_progress`,
    /// `unsupported_media_type`, `payload_too_large`, `too_many_requests`, `card_declined`, `payment_failed`,
    /// `sold_out`, `duplicate_booking`, `service_unavailable`, `internal`...
    error: String,
    /// What to do about it, for a person.
    message: Option<String>,
    /// `not_found`: what was not found (`tenant`, `flight`, `booking`).
    resource: Option<String>,
    /// `invalid`: every bad field (a JSON path such as `passengers[1].family_name`) with its messages.
    fields: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// `too_many_requests`: seconds to wait (also in `Retry-After`).
    retry_after: Option<u64>,
    /// `duplicate_booking`: the live booking for the same trip.
    existing: Option<ExistingBookingJson>,
    /// `card_declined`, `payment_failed`: the failed booking.
    booking: Option<BookingJson>,
    /// `internal`: quote it to support; the log has the cause under it.
    request_id: Option<String>,
}

/// The booking a duplicate request ran into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExistingBookingJson {
    pub reference: String,
    pub status: String,
}

/// The error codes a booking answer carries (CONTRACT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AnswerError {
    CardDeclined,
    PaymentFailed,
    SoldOut,
    DuplicateBooking,
}

/// The wire form of every [`BookingAnswer`] body.
#[derive(Serialize, Deserialize)]
struct AnswerBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    booking: Option<BookingJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<AnswerError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    existing: Option<ExistingBookingJson>,
}

/// A stored booking response that is not one of [`BookingAnswer`]'s.
#[derive(Debug, thiserror::Error)]
#[error("stored booking response {status} is not a booking answer: {reason}")]
pub struct UnreadableAnswer {
    pub status: u16,
    pub reason: String,
}

impl BookingAnswer {
    pub fn status(&self) -> u16 {
        match self {
            Self::Confirmed(_) => 201,
            Self::Pending(_) => 202,
            Self::Declined(_) => 402,
            Self::PaymentFailed(_) => 502,
            Self::SoldOut | Self::Duplicate(_) => 409,
        }
    }

    fn body(&self) -> AnswerBody {
        let (booking, error, existing) = match self {
            Self::Confirmed(b) | Self::Pending(b) => (Some(b.clone()), None, None),
            Self::Declined(b) => (Some(b.clone()), Some(AnswerError::CardDeclined), None),
            Self::PaymentFailed(b) => (Some(b.clone()), Some(AnswerError::PaymentFailed), None),
            Self::SoldOut => (None, Some(AnswerError::SoldOut), None),
            Self::Duplicate(e) => (None, Some(AnswerError::DuplicateBooking), Some(e.clone())),
        };
        AnswerBody {
            booking,
            error,
            existing,
        }
    }

    /// The stored form: status and JSON body.
    pub fn render(&self) -> Rendered {
        // Through `Value`, whose object keys are sorted: the bytes stay those every earlier answer was stored
        // with, so a replay of an old key and of a new one look alike.
        let body = serde_json::to_value(self.body())
            .expect("a booking answer is plain data")
            .to_string();
        Rendered {
            status: self.status(),
            body,
        }
    }

    /// Reads a stored answer back.
    pub fn read(rendered: &Rendered) -> Result<Self, UnreadableAnswer> {
        let unreadable = |reason: String| UnreadableAnswer {
            status: rendered.status,
            reason,
        };
        let body: AnswerBody =
            serde_json::from_str(&rendered.body).map_err(|e| unreadable(e.to_string()))?;
        use AnswerError as E;
        match (rendered.status, body) {
            (
                201,
                AnswerBody {
                    booking: Some(b),
                    error: None,
                    ..
                },
            ) => Ok(Self::Confirmed(b)),
            (
                202,
                AnswerBody {
                    booking: Some(b),
                    error: None,
                    ..
                },
            ) => Ok(Self::Pending(b)),
            (
                402,
                AnswerBody {
                    booking: Some(b),
                    error: Some(E::CardDeclined),
                    ..
                },
            ) => Ok(Self::Declined(b)),
            (
                502,
                AnswerBody {
                    booking: Some(b),
                    error: Some(E::PaymentFailed),
                    ..
                },
            ) => Ok(Self::PaymentFailed(b)),
            (
                409,
                AnswerBody {
                    error: Some(E::SoldOut),
                    ..
                },
            ) => Ok(Self::SoldOut),
            (
                409,
                AnswerBody {
                    error: Some(E::DuplicateBooking),
                    existing: Some(e),
                    ..
                },
            ) => Ok(Self::Duplicate(e)),
            (_, body) => Err(unreadable(format!("unexpected error {:?}", body.error))),
        }
    }
}

/// Renders pipeline outcomes as CONTRACT.md's booking responses.
pub struct JsonRenderer;

impl RenderOutcome for JsonRenderer {
    fn render(&self, outcome: &Outcome) -> Rendered {
        let answer = match outcome {
            Outcome::Confirmed(v) => BookingAnswer::Confirmed(v.into()),
            Outcome::Pending(v) => BookingAnswer::Pending(v.into()),
            Outcome::Failed(v) if v.booking.failure_reason.as_deref() == Some("card_declined") => {
                BookingAnswer::Declined(v.into())
            }
            Outcome::Failed(v) => BookingAnswer::PaymentFailed(v.into()),
            Outcome::SoldOut => BookingAnswer::SoldOut,
            Outcome::Duplicate(existing) => BookingAnswer::Duplicate(ExistingBookingJson {
                reference: existing.reference.to_string(),
                status: existing.status.to_string(),
            }),
        };
        answer.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booking(status: &str) -> BookingJson {
        BookingJson {
            reference: "ABC234".into(),
            status: status.into(),
            flight: BookedFlightJson {
                id: "f".into(),
                number: "EI154".into(),
                origin: "DUB".into(),
                destination: "LHR".into(),
                departs_at: "2026-12-01T07:30:00Z".into(),
            },
            contact_email: "ann@example.com".into(),
            passengers: vec![PassengerJson {
                given_name: "Ann".into(),
                family_name: "Lee".into(),
            }],
            amount: MoneyJson {
                amount_minor: 9599,
                currency: "EUR".into(),
            },
            card: CardSummaryJson {
                brand: "visa".into(),
                last4: "4242".into(),
            },
            failure_reason: None,
            created_at: "2026-11-30T00:00:00Z".into(),
        }
    }

    #[test]
    fn every_answer_reads_back_as_written() {
        let answers = [
            BookingAnswer::Confirmed(booking("confirmed")),
            BookingAnswer::Pending(booking("payment_pending")),
            BookingAnswer::Declined(booking("failed")),
            BookingAnswer::PaymentFailed(booking("failed")),
            BookingAnswer::SoldOut,
            BookingAnswer::Duplicate(ExistingBookingJson {
                reference: "XYZ789".into(),
                status: "confirmed".into(),
            }),
        ];
        for answer in answers {
            let rendered = answer.render();
            assert_eq!(
                BookingAnswer::read(&rendered).unwrap(),
                answer,
                "{}",
                rendered.body
            );
        }
    }

    #[test]
    fn an_answer_is_stored_as_contract_md_shows_it() {
        let rendered = BookingAnswer::SoldOut.render();
        assert_eq!(
            (rendered.status, rendered.body.as_str()),
            (409, r#"{"error":"sold_out"}"#)
        );
        let rendered = BookingAnswer::Duplicate(ExistingBookingJson {
            reference: "XYZ789".into(),
            status: "confirmed".into(),
        })
        .render();
        assert_eq!(
            rendered.body,
            r#"{"error":"duplicate_booking","existing":{"reference":"XYZ789","status":"confirmed"}}"#
        );
    }

    #[test]
    fn a_body_that_is_not_an_answer_is_refused() {
        for (status, body) in [
            (201, r#"{"error":"sold_out"}"#),
            (409, r#"{"error":"card_declined"}"#),
            (409, r#"{"error":"duplicate_booking"}"#),
            (200, r#"{"booking":null}"#),
            (201, "not json"),
        ] {
            let rendered = Rendered {
                status,
                body: body.into(),
            };
            assert!(BookingAnswer::read(&rendered).is_err(), "{status} {body}");
        }
    }
}
