//! The soak's own record of every booking attempt it made (one idempotency key each), every request it sent
//! for it and the answer it settled on. The checks at the end hold the server to this record; it is also
//! written out as JSON lines (`record.jsonl`) for whoever investigates a failed check.

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// Where an attempt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Api,
    Site,
}

/// What an attempt was meant to exercise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new traveller on a roomy flight.
    New,
    /// The same key and body again after an answer: must answer the same booking.
    Replay,
    /// The website's form posted twice at once (a double click): both land on the same booking.
    DoubleClick,
    /// The same trip under a new key, as from a fresh browser: must be refused as a duplicate of `of` (or
    /// book anew only if `of` ended failed).
    Duplicate { of: String },
    /// One of several keys sent at once for one new trip: at most one of them books it.
    Storm,
    /// The always-declined card.
    Declined,
    /// A flight of few seats, sold out as the soak goes.
    SmallFlight,
}

/// The answer an attempt settled on (after retrying through 5xx, `request_in_progress` and lost connections).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "answer")]
pub enum Answer {
    /// 201, 202, or the website's redirect to the booking (with the status its page showed, when read).
    Booked {
        status: u16,
        reference: String,
        shown: Option<String>,
    },
    Declined {
        reference: Option<String>,
    },
    PaymentFailed {
        reference: Option<String>,
    },
    SoldOut,
    Duplicate {
        existing: String,
    },
    /// An answer outside the contract for this request.
    Unexpected {
        status: u16,
        body: String,
    },
    /// No final answer within the attempt's deadline.
    Unanswered {
        last: String,
    },
}

/// One request of an attempt: when (ms into the soak), to which node, and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub at_ms: u64,
    pub node: usize,
    /// The status code, or the transport error.
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub channel: Channel,
    pub kind: Kind,
    pub key: String,
    /// Index of the trip (travellers, flight, card) in [`Record::trips`].
    pub trip: usize,
    pub started_ms: u64,
    pub finished_ms: u64,
    pub requests: Vec<Request>,
    pub answer: Answer,
}

impl Attempt {
    /// The reference this attempt was acknowledged with, if it was.
    pub fn acknowledged(&self) -> Option<&str> {
        match &self.answer {
            Answer::Booked { reference, .. } => Some(reference),
            _ => None,
        }
    }
}

/// What is booked: the entity the duplicate guard is about.
#[derive(Debug, Clone, Serialize)]
pub struct Trip {
    pub flight_id: String,
    pub given_names: Vec<String>,
    pub family_name: String,
    pub email: String,
    pub card: &'static str,
}

pub struct Record {
    pub start: Instant,
    pub trips: Mutex<Vec<Trip>>,
    pub attempts: Mutex<Vec<Attempt>>,
}

impl Record {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            trips: Mutex::default(),
            attempts: Mutex::default(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn add_trip(&self, trip: Trip) -> usize {
        let mut trips = self.trips.lock().unwrap();
        trips.push(trip);
        trips.len() - 1
    }

    pub fn trip(&self, index: usize) -> Trip {
        self.trips.lock().unwrap()[index].clone()
    }

    pub fn push(&self, attempt: Attempt) {
        self.attempts.lock().unwrap().push(attempt);
    }

    /// Every attempt, in the order they finished.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    /// Writes every attempt as one JSON line, with its trip.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let trips = self.trips.lock().unwrap();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for attempt in self.attempts.lock().unwrap().iter() {
            let line = serde_json::json!({"attempt": attempt, "trip": trips[attempt.trip]});
            writeln!(out, "{line}")?;
        }
        out.flush()
    }
}
