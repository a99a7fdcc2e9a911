//! What the pipeline decides, and the rendered form stored with an idempotency key.

use skybook_domain::Flight;
use skybook_storage::BookingRecord;

/// A booking with the flight it is for: everything a response or an email shows.
#[derive(Debug, Clone)]
pub struct BookingView {
    pub booking: BookingRecord,
    pub flight: Flight,
}

/// The pipeline's answer to one booking request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Charged and confirmed.
    Confirmed(BookingView),
    /// The charge's outcome is not known yet; it will be settled without charging twice.
    Pending(BookingView),
    /// Not charged: declined by the card issuer, or refused by the provider. Seats released.
    Failed(BookingView),
    /// Not enough seats left; nothing was written but the key.
    SoldOut,
    /// The same booking (tenant, flight, passengers, card) is already live under another key.
    Duplicate(BookingRecord),
}

impl Outcome {
    /// A label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Confirmed(_) => "confirmed",
            Self::Pending(_) => "payment_pending",
            Self::Failed(_) => "failed",
            Self::SoldOut => "sold_out",
            Self::Duplicate(_) => "duplicate_booking",
        }
    }

    /// Pending outcomes are not final, so they are never stored as a key's response: a retry resumes instead.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending(_))
    }
}

/// A response as sent to the client: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    pub body: String,
}

/// Turns an outcome into the response the client gets. Implemented by the web layer.
pub trait RenderOutcome: Send + Sync + 'static {
    fn render(&self, outcome: &Outcome) -> Rendered;
}

/// The pipeline's reply: a fresh outcome (already rendered) or a stored response replayed.
#[derive(Debug, Clone)]
pub struct Reply {
    pub rendered: Rendered,
    /// `true` when this is a finished key's stored response sent again.
    pub replayed: bool,
    /// The outcome label (`replayed` for replays), for logs and metrics.
    pub label: &'static str,
}
