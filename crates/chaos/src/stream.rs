//! The booking stream: API clients and website visitors booking at a steady pace until told to stop, each
//! retrying a booking with its key through whatever the faults do, as a careful client does. What they send
//! and hear goes to the [`Record`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use skybook_testkit::fixtures::{CARD_DECLINED, CARD_OK, CARD_OK_2};
use skybook_testkit::stream::letters;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::record::{Kind, Record, Trip};

/// How long one attempt keeps retrying: past the key lease (60 s) a request cut off with its node is taken over
/// by the next retry, plus room for a failover on top.
pub const ATTEMPT_DEADLINE: Duration = Duration::from_secs(180);

/// The flights the stream books.
pub struct Flights {
    /// Roomy flights: they never sell out.
    pub roomy: Vec<String>,
    /// Flights of [`SMALL_CAPACITY`] seats, booked one after the other: the current one sells out, then the
    /// next is booked.
    pub small: Vec<String>,
    current_small: AtomicUsize,
}

pub const SMALL_CAPACITY: u32 = 20;

impl Flights {
    pub fn new(roomy: Vec<String>, small: Vec<String>) -> Self {
        Self {
            roomy,
            small,
            current_small: AtomicUsize::new(0),
        }
    }

    /// The small flight being sold now, with its index; `None` once all are sold out.
    pub fn current_small(&self) -> Option<(usize, String)> {
        let i = self.current_small.load(Ordering::Relaxed);
        self.small.get(i).map(|id| (i, id.clone()))
    }

    /// Moves on from small flight `i` (many clients may see it sold out; it moves on once).
    pub fn sold_out(&self, i: usize) {
        let _ = self
            .current_small
            .compare_exchange(i, i + 1, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Spaces the starts of attempts to the target rate across all clients. Clients held up by a fault do not
/// bank their slots: no burst when they come back.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().unwrap();
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

/// What every client shares.
pub struct Stream {
    pub cluster: Arc<Cluster>,
    pub record: Arc<Record>,
    pub flights: Flights,
    pub http: reqwest::Client,
    pacer: Pacer,
    stop: AtomicBool,
    travellers: AtomicUsize,
}

impl Stream {
    pub fn new(cluster: Arc<Cluster>, record: Arc<Record>, flights: Flights, rate: f64) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Self {
            cluster,
            record,
            flights,
            http,
            pacer: Pacer {
                interval: Duration::from_secs_f64(1.0 / rate),
                next: Mutex::new(Instant::now()),
            },
            stop: AtomicBool::new(false),
            travellers: AtomicUsize::new(0),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A new trip: `passengers` travellers of one new family on `flight`, paying with `card`.
    pub fn new_trip(&self, flight: &str, passengers: usize, card: &'static str) -> usize {
        let n = self.travellers.fetch_add(1, Ordering::Relaxed);
        // Names take letters only; the family name is what makes each trip new.
        let family_name = format!("Chaos{}", letters(n));
        let given_names: Vec<String> = ["Ann", "Bob", "Cy"][..passengers.clamp(1, 3)]
            .iter()
            .map(|g| (*g).to_owned())
            .collect();
        let email = format!("ann.{}@example.com", family_name.to_lowercase());
        self.record.add_trip(Trip {
            flight_id: flight.to_owned(),
            given_names,
            family_name,
            email,
            card,
        })
    }

    pub fn roomy_flight(&self) -> String {
        let flights = &self.flights.roomy;
        flights[rand::rng().random_range(0..flights.len())].clone()
    }

    /// A working card, one of two.
    pub fn good_card() -> &'static str {
        if rand::rng().random_bool(0.5) {
            CARD_OK
        } else {
            CARD_OK_2
        }
    }

    pub fn declined_card() -> &'static str {
        CARD_DECLINED
    }

    pub async fn pace(&self) {
        self.pacer.wait().await;
    }

    /// A fresh idempotency key.
    pub fn key(kind: &Kind) -> String {
        let tag = match kind {
            Kind::New => "new",
            Kind::Replay => "replay",
            Kind::Duplicate { .. } => "dup",
            Kind::Storm => "storm",
            Kind::Declined => "declined",
            Kind::SmallFlight => "small",
            Kind::DoubleClick => "click",
        };
        format!("chaos-{tag}-{}", uuid::Uuid::new_v4().simple())
    }

    /// The pause between two requests of one attempt.
    pub async fn backoff(&self) {
        let ms = rand::rng().random_range(150..350);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The running clients.
pub struct Clients {
    stream: Arc<Stream>,
    tasks: Vec<JoinHandle<()>>,
}

impl Clients {
    pub fn start(stream: Arc<Stream>, api_clients: usize, site_clients: usize) -> Self {
        let mut tasks = Vec::new();
        for _ in 0..api_clients {
            tasks.push(tokio::spawn(crate::api::client(Arc::clone(&stream))));
        }
        for _ in 0..site_clients {
            tasks.push(tokio::spawn(crate::site::client(Arc::clone(&stream))));
        }
        Self { stream, tasks }
    }

    /// Stops every client after its current attempt (each is bounded by [`ATTEMPT_DEADLINE`]).
    pub async fn finish(self) {
        self.stream.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            if let Err(e) = task.await {
                self.stream
                    .cluster
                    .incident(format!("a booking client panicked: {e}"));
            }
        }
    }
}
