//! API clients: new travellers, same-key replays, fresh-browser duplicates (same trip, new key), storms of
//! keys for one trip at once, declined cards and small flights that sell out.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use serde_json::{json, Value};

use crate::cluster::TENANT;
use crate::record::{Answer, Attempt, Channel, Kind, Request};
use crate::stream::{Stream, ATTEMPT_DEADLINE};

/// One API client: attempts, one after another, until the stream stops.
pub async fn client(stream: Arc<Stream>) {
    while !stream.stopping() {
        stream.pace().await;
        let draw = rand::rng().random_range(0..100);
        match draw {
            0..62 => new_booking(&stream).await,
            62..70 => storm(&stream).await,
            70..80 => {
                let trip = stream.new_trip(&stream.roomy_flight(), 1, Stream::declined_card());
                attempt(&stream, Kind::Declined, trip, None).await;
            }
            _ => small_flight(&stream).await,
        }
    }
}

/// A new trip; once acknowledged, sometimes the same request again (same key), sometimes the same trip under
/// a new key.
async fn new_booking(stream: &Stream) {
    let passengers = rand::rng().random_range(1..=2);
    let trip = stream.new_trip(&stream.roomy_flight(), passengers, Stream::good_card());
    let first = attempt(stream, Kind::New, trip, None).await;
    let Some(reference) = first.acknowledged().map(str::to_owned) else {
        return;
    };
    let (replay, duplicate) = {
        let mut rng = rand::rng();
        (rng.random_bool(0.3), rng.random_bool(0.2))
    };
    if replay {
        attempt(stream, Kind::Replay, trip, Some(first.key.clone())).await;
    }
    if duplicate {
        attempt(stream, Kind::Duplicate { of: reference }, trip, None).await;
    }
}

/// Three keys for one new trip, sent at once.
async fn storm(stream: &Stream) {
    let trip = stream.new_trip(&stream.roomy_flight(), 1, Stream::good_card());
    let storm = (0..3).map(|_| attempt(stream, Kind::Storm, trip, None));
    futures::future::join_all(storm).await;
}

async fn small_flight(stream: &Stream) {
    let Some((index, flight)) = stream.flights.current_small() else {
        return new_booking(stream).await;
    };
    let passengers = rand::rng().random_range(1..=3);
    let trip = stream.new_trip(&flight, passengers, Stream::good_card());
    let done = attempt(stream, Kind::SmallFlight, trip, None).await;
    if done.answer == Answer::SoldOut {
        stream.flights.sold_out(index);
    }
}

/// The API body of trip `trip`.
fn body(stream: &Stream, trip: usize) -> Value {
    let trip = stream.record.trip(trip);
    let passengers: Vec<Value> = trip
        .given_names
        .iter()
        .map(|g| json!({"given_name": g, "family_name": trip.family_name}))
        .collect();
    json!({
        "flight_id": trip.flight_id,
        "contact_email": trip.email,
        "passengers": passengers,
        "card": {"number": trip.card, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    })
}

/// What to do with one answer.
enum Next {
    Retry(String),
    Done(Answer),
}

fn classify(status: u16, json: &Value, text: &str) -> Next {
    let error = json["error"].as_str().unwrap_or_default();
    let reference = || json["booking"]["reference"].as_str().map(str::to_owned);
    match (status, error) {
        (201 | 202, _) => match reference() {
            Some(reference) => Next::Done(Answer::Booked {
                status,
                reference,
                shown: json["booking"]["status"].as_str().map(str::to_owned),
            }),
            None => Next::Done(unexpected(status, text)),
        },
        (402, "card_declined") => Next::Done(Answer::Declined {
            reference: reference(),
        }),
        (502, "payment_failed") => Next::Done(Answer::PaymentFailed {
            reference: reference(),
        }),
        (409, "sold_out") => Next::Done(Answer::SoldOut),
        (409, "duplicate_booking") => match json["existing"]["reference"].as_str() {
            Some(existing) => Next::Done(Answer::Duplicate {
                existing: existing.to_owned(),
            }),
            None => Next::Done(unexpected(status, text)),
        },
        (409, "request_in_progress") | (429, _) | (500..=599, _) => {
            Next::Retry(format!("{status} {error}"))
        }
        _ => Next::Done(unexpected(status, text)),
    }
}

fn unexpected(status: u16, text: &str) -> Answer {
    Answer::Unexpected {
        status,
        body: text.chars().take(300).collect(),
    }
}

/// Books trip `trip` under `key` (a new one unless given), retrying with that key until a final answer or
/// [`ATTEMPT_DEADLINE`]; records and returns the attempt.
async fn attempt(stream: &Stream, kind: Kind, trip: usize, key: Option<String>) -> Attempt {
    let key = key.unwrap_or_else(|| Stream::key(&kind));
    let body = body(stream, trip);
    let started = Instant::now();
    let started_ms = stream.record.now_ms();
    let mut requests = Vec::new();
    let mut avoid = None;
    let answer = loop {
        if started.elapsed() > ATTEMPT_DEADLINE {
            let last = requests
                .last()
                .map_or_else(|| "no node".to_owned(), |r: &Request| r.outcome.clone());
            break Answer::Unanswered { last };
        }
        let Some((node, base)) = stream.cluster.nodes.pick(avoid) else {
            stream.backoff().await;
            continue;
        };
        let at_ms = stream.record.now_ms();
        let sent = stream
            .http
            .post(format!("{base}/api/v1/tenants/{TENANT}/bookings"))
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(text) => {
                        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        classify(status, &json, &text)
                    }
                    Err(e) => Next::Retry(format!("{status}, body lost: {e}")),
                }
            }
            Err(e) => Next::Retry(format!("transport: {e}")),
        };
        match outcome {
            Next::Done(answer) => {
                requests.push(Request {
                    at_ms,
                    node,
                    outcome: answer_label(&answer),
                });
                break answer;
            }
            Next::Retry(why) => {
                requests.push(Request {
                    at_ms,
                    node,
                    outcome: why,
                });
                avoid = Some(node);
                stream.backoff().await;
            }
        }
    };
    let attempt = Attempt {
        channel: Channel::Api,
        kind,
        key,
        trip,
        started_ms,
        finished_ms: stream.record.now_ms(),
        requests,
        answer,
    };
    stream.record.push(attempt.clone());
    attempt
}

/// A short label of a final answer, for the request log.
pub fn answer_label(answer: &Answer) -> String {
    match answer {
        Answer::Booked { status, .. } => status.to_string(),
        Answer::Declined { .. } => "402 card_declined".into(),
        Answer::PaymentFailed { .. } => "502 payment_failed".into(),
        Answer::SoldOut => "409 sold_out".into(),
        Answer::Duplicate { .. } => "409 duplicate_booking".into(),
        Answer::Unexpected { status, .. } => format!("{status} unexpected"),
        Answer::Unanswered { .. } => "unanswered".into(),
    }
}
