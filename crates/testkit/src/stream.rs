//! A steady stream of bookings from concurrent API clients, for the tests that break the database under load
//! (an outage, a failover). Each client books one traveller after another, retrying each booking with its key
//! until it is acknowledged, as a careful client does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use skybook_domain::Flight;
use tokio::task::JoinHandle;

use crate::fixtures::{booking_body, CARD_OK};

/// The contact email of every booking a stream makes (the proof a read needs).
pub const STREAM_EMAIL: &str = "ann@example.com";

/// A booking the server acknowledged.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    /// 201 (confirmed) or 202 (payment pending, settled later).
    pub status: u16,
    pub reference: String,
    /// Requests it took; more than one means the client retried through a refusal.
    pub attempts: usize,
    pub at: Instant,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct StreamRecord {
    pub acknowledged: Vec<Acknowledged>,
    /// When a request was refused (503, 409 `request_in_progress`, or no answer) and retried.
    pub refusals: Vec<Instant>,
}

impl StreamRecord {
    /// From the first refusal to the first acknowledgement after the last one: how long bookings were refused.
    pub fn refused_window(&self) -> Option<(Instant, Instant)> {
        let first = *self.refusals.iter().min()?;
        let last = *self.refusals.iter().max()?;
        let recovered = self
            .acknowledged
            .iter()
            .map(|a| a.at)
            .filter(|at| *at > last)
            .min()
            .unwrap_or(last);
        Some((first, recovered))
    }
}

/// The running clients; [`BookingStream::finish`] stops them and collects what they saw.
pub struct BookingStream {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<StreamRecord>>,
}

impl BookingStream {
    /// Starts `clients` clients booking `flight` of `tenant`, client `c` on `nodes[c % nodes.len()]`. Keys
    /// start with `tag`.
    pub fn start(
        nodes: &[String],
        tenant: &str,
        flight: &Flight,
        clients: usize,
        tag: &str,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let clients = (0..clients)
            .map(|c| {
                let (http, stop, flight) = (http.clone(), Arc::clone(&stop), flight.clone());
                let base = nodes[c % nodes.len()].clone();
                let (tenant, tag) = (tenant.to_owned(), tag.to_owned());
                let family = format!("Stream{tag}");
                tokio::spawn(async move {
                    let mut record = StreamRecord::default();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        // The tag keeps two streams of one test from booking the same travellers.
                        let family = format!("{family}{}{}", letters(c), letters(i));
                        let key = format!("{tag}-{c}-{i}-{}", uuid::Uuid::new_v4().simple());
                        let body = booking_body(&flight, "Ann", &family, CARD_OK);
                        book_until_acknowledged(&http, &base, &tenant, &key, &body, &mut record)
                            .await;
                        i += 1;
                    }
                    record
                })
            })
            .collect();
        Self { stop, clients }
    }

    /// Stops every client after its current booking; returns what all of them saw.
    pub async fn finish(self) -> StreamRecord {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = StreamRecord::default();
        for client in self.clients {
            let record = client.await.expect("a stream client panicked");
            all.acknowledged.extend(record.acknowledged);
            all.refusals.extend(record.refusals);
        }
        all
    }
}

/// Books until acknowledged (201 or 202), retrying with the same key on 503, 409 `request_in_progress` or a
/// failed connection; records the acknowledgement and every refusal in `record`. Any other answer fails the test.
pub async fn book_until_acknowledged(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    key: &str,
    body: &Value,
    record: &mut StreamRecord,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    for attempts in 1.. {
        assert!(
            Instant::now() < deadline,
            "booking {key} never acknowledged"
        );
        let response = http
            .post(format!("{base}/api/v1/tenants/{tenant}/bookings"))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        if let Ok(response) = response {
            let status = response.status().as_u16();
            let json: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                201 | 202 => {
                    record.acknowledged.push(Acknowledged {
                        status,
                        reference: json["booking"]["reference"].as_str().unwrap().to_owned(),
                        attempts,
                        at: Instant::now(),
                    });
                    return;
                }
                503 => {}
                409 if json["error"] == "request_in_progress" => {}
                other => panic!("unexpected {other} for {key}: {json}"),
            }
        }
        record.refusals.push(Instant::now());
        // Pacing between a client's retries (Retry-After says 2 s; a test client is more eager).
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `n` in letters (a, b, ..., z, ba, bb, ...): passenger names take no digits.
pub fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}
