//! The CSV text of a feed, written row by row into any `Write`, so a file of twenty million rows
//! never exists in memory: at most one buffer of lines (64 KiB) does.
//!
//! Everything is derived from a small PRNG seeded from SHA-256 of the request (tenant, feed, date),
//! so the same request always produces byte-identical content. Three knobs shape it, each also
//! deterministic: the large generator (`rows`), bad rows (a fixed share of the rows damaged in one
//! field), and Latin-1 text (the airports feed with local spellings, encoded ISO-8859-1).

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::NaiveDate;
use sha2::{Digest as _, Sha256};

/// Feeds the sandbox can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Flights,
    Airports,
}

impl Feed {
    pub const ALL: [Feed; 2] = [Feed::Flights, Feed::Airports];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|feed| feed.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Flights => "flights",
            Self::Airports => "airports",
        }
    }

    /// The CSV's header line, newline included.
    pub fn header(self) -> &'static str {
        match self {
            Self::Flights => "number,origin,destination,departs_at,capacity,fare_minor,currency\n",
            Self::Airports => "iata,name,city,country,timezone\n",
        }
    }
}

/// What one feed file holds.
#[derive(Debug, Clone)]
pub struct Content {
    pub tenant: String,
    pub feed: Feed,
    pub date: NaiveDate,
    /// `Some(n)`: the first `n` rows of the large flights generator; `None`: the small nightly file.
    pub rows: Option<u64>,
    /// Share of rows made invalid, in parts per million.
    pub bad_ppm: u32,
    /// Airports with local spellings, encoded ISO-8859-1 instead of UTF-8.
    pub latin1: bool,
    /// The tenant's partner publishes this timetable: its small flights file is the timetable's window.
    pub timetable: Option<std::sync::Arc<super::timetable::Timetable>>,
}

impl Content {
    pub fn date_text(&self) -> String {
        self.date.format("%Y-%m-%d").to_string()
    }
}

/// `(iata, name, city, country, timezone)` of the airports the feeds draw on.
type Airport = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const AIRPORTS: &[Airport] = &[
    (
        "AMS",
        "Amsterdam Schiphol",
        "Amsterdam",
        "NL",
        "Europe/Amsterdam",
    ),
    (
        "BCN",
        "Barcelona El Prat",
        "Barcelona",
        "ES",
        "Europe/Madrid",
    ),
    (
        "CDG",
        "Paris Charles de Gaulle",
        "Paris",
        "FR",
        "Europe/Paris",
    ),
    ("DUB", "Dublin", "Dublin", "IE", "Europe/Dublin"),
    ("FCO", "Rome Fiumicino", "Rome", "IT", "Europe/Rome"),
    ("FRA", "Frankfurt", "Frankfurt", "DE", "Europe/Berlin"),
    ("LHR", "London Heathrow", "London", "GB", "Europe/London"),
    (
        "LIS",
        "Lisbon Humberto Delgado",
        "Lisbon",
        "PT",
        "Europe/Lisbon",
    ),
    ("MAD", "Madrid Barajas", "Madrid", "ES", "Europe/Madrid"),
    ("MUC", "Munich", "Munich", "DE", "Europe/Berlin"),
    ("VIE", "Vienna", "Vienna", "AT", "Europe/Vienna"),
    ("ZRH", "Zurich", "Zurich", "CH", "Europe/Zurich"),
];

/// The Latin-1 airports file spells these the local way (every character within ISO-8859-1), and
/// adds the airports that have no ASCII spelling at all.
const LOCAL_NAMES: &[Airport] = &[
    ("MUC", "Flughafen München", "München", "DE", "Europe/Berlin"),
    ("ZRH", "Flughafen Zürich", "Zürich", "CH", "Europe/Zurich"),
];
const LATIN1_EXTRA: &[Airport] = &[
    (
        "AGP",
        "Málaga-Costa del Sol",
        "Málaga",
        "ES",
        "Europe/Madrid",
    ),
    (
        "CPH",
        "København Lufthavn",
        "København",
        "DK",
        "Europe/Copenhagen",
    ),
    ("GVA", "Genève Aéroport", "Genève", "CH", "Europe/Zurich"),
];

const CAPACITIES: &[u32] = &[120, 150, 180, 189, 220];

/// Flight numbers have at most four digits (the importer's pattern), so the large generator gives
/// each of 10,000 numbers one departure per hour-long slot: `(number, departs_at)` never repeats.
const NUMBERS: u64 = 10_000;

/// SplitMix64: tiny, fast and — unlike library RNGs — guaranteed never to change its output.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn seeded(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&digest[..8]);
        Self(u64::from_le_bytes(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (n is tiny, so modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `Some(k)` when row `i` is the `k`-th bad row. Exactly ⌊n·ppm/10⁶⌋ of the first `n` rows are bad,
/// spread evenly, so a test can predict the count and a prefix of a file has its share too.
pub fn damage(i: u64, ppm: u32) -> Option<u64> {
    let before = i * u64::from(ppm) / 1_000_000;
    let through = (i + 1) * u64::from(ppm) / 1_000_000;
    (through > before).then_some(before)
}

/// Writes the CSV of `content`, header first.
pub fn write_csv(content: &Content, out: &mut dyn Write) -> io::Result<()> {
    let mut lines = Lines::new(out, content.latin1);
    lines.buf.push_str(content.feed.header());
    match (content.feed, content.rows) {
        (Feed::Flights, None) => match &content.timetable {
            Some(timetable) => timetable.write_rows(content.date, &mut lines.buf),
            None => nightly_flights(content, &mut lines)?,
        },
        (Feed::Flights, Some(rows)) => many_flights(content, rows, &mut lines)?,
        (Feed::Airports, _) => airports(content, &mut lines)?,
    }
    lines.flush()
}

/// The carrier code flight numbers start with: two letters from the tenant's name.
fn carrier(tenant: &str) -> String {
    let carrier: String = tenant
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(2)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if carrier.len() < 2 {
        "SB".to_owned()
    } else {
        carrier
    }
}

/// One flights row; `bad` damages one field (see [`damage`]).
struct Flight<'a> {
    carrier: &'a str,
    number: u64,
    origin: usize,
    destination: usize,
    day: &'a str,
    hour: u64,
    minute: u64,
    capacity: u32,
    fare_minor: u64,
    bad: Option<u64>,
}

impl Flight<'_> {
    /// Appends the row's line to `buf`.
    fn write(&self, buf: &mut String) {
        let (o, d) = (AIRPORTS[self.origin].0, AIRPORTS[self.destination].0);
        // Writing into a String cannot fail.
        let _ = write!(buf, "{}{},{o},{d},{}T", self.carrier, self.number, self.day);
        let kind = self.bad.map(|ordinal| ordinal % 3);
        // Each kind breaks a different rule of the flights declaration: an hour and minute past
        // the clock, a capacity that is not a number, a currency outside the allowed list.
        if kind == Some(2) {
            let _ = write!(buf, "{}:{}:00Z", self.hour + 24, self.minute + 60);
        } else {
            let _ = write!(buf, "{:02}:{:02}:00Z", self.hour, self.minute);
        }
        if kind == Some(0) {
            buf.push_str(",lots");
        } else {
            let _ = write!(buf, ",{}", self.capacity);
        }
        let _ = write!(buf, ",{},", self.fare_minor);
        buf.push_str(if kind == Some(1) { "ZZZ\n" } else { "EUR\n" });
    }
}

fn route(rng: &mut SplitMix64) -> (usize, usize) {
    let origin = rng.below(AIRPORTS.len() as u64) as usize;
    let hop = 1 + rng.below(AIRPORTS.len() as u64 - 1) as usize;
    (origin, (origin + hop) % AIRPORTS.len())
}

/// The default file: 12 to 20 flights on the feed's date, as it has always been.
fn nightly_flights(content: &Content, lines: &mut Lines<'_>) -> io::Result<()> {
    let day = content.date_text();
    let carrier = carrier(&content.tenant);
    let mut rng = SplitMix64::seeded(&[&content.tenant, "flights", &day]);
    let rows = 12 + rng.below(9);
    for i in 0..rows {
        let number = 100 + i * 10 + rng.below(10);
        let (origin, destination) = route(&mut rng);
        let hour = 5 + rng.below(18);
        let minute = rng.below(12) * 5;
        let capacity = CAPACITIES[rng.below(CAPACITIES.len() as u64) as usize];
        let fare_minor = (29 + rng.below(400)) * 100 + 99;
        Flight {
            carrier: &carrier,
            number,
            origin,
            destination,
            day: &day,
            hour,
            minute,
            capacity,
            fare_minor,
            bad: damage(i, content.bad_ppm),
        }
        .write(&mut lines.buf);
        lines.flush_if_full()?;
    }
    Ok(())
}

/// `rows` flights: row `i` is number `perm(i % 10,000)` in hour-long slot `i / 10,000` counted from
/// midnight of the feed's date, at a drawn minute within that hour. The rows of `rows=n` are the
/// first `n` rows of every larger file.
fn many_flights(content: &Content, rows: u64, lines: &mut Lines<'_>) -> io::Result<()> {
    let date_text = content.date_text();
    let carrier = carrier(&content.tenant);
    let mut rng = SplitMix64::seeded(&[&content.tenant, "flights", &date_text, "rows"]);
    let mut day = date_text;
    let mut day_slot = 0;
    for i in 0..rows {
        let slot = i / NUMBERS;
        if slot / 24 != day_slot / 24 {
            day_slot = slot;
            day = slot_day(content.date, slot);
        }
        // 7919 is coprime with 10,000, so within a slot this is a permutation of the numbers.
        let number = ((i % NUMBERS) * 7919 + slot * 4273) % NUMBERS;
        let (origin, destination) = route(&mut rng);
        let minute = rng.below(12) * 5;
        let capacity = CAPACITIES[rng.below(CAPACITIES.len() as u64) as usize];
        let fare_minor = (29 + rng.below(400)) * 100 + 99;
        Flight {
            carrier: &carrier,
            number,
            origin,
            destination,
            day: &day,
            hour: slot % 24,
            minute,
            capacity,
            fare_minor,
            bad: damage(i, content.bad_ppm),
        }
        .write(&mut lines.buf);
        lines.flush_if_full()?;
    }
    Ok(())
}

/// The date of hour-long slot `slot` counted from midnight of `date`.
fn slot_day(date: NaiveDate, slot: u64) -> String {
    (date + chrono::Days::new(slot / 24))
        .format("%Y-%m-%d")
        .to_string()
}

/// The airports list; with `latin1`, local spellings and the airports only they can name.
fn airport_list(latin1: bool) -> Vec<Airport> {
    let mut list: Vec<Airport> = AIRPORTS
        .iter()
        .map(|airport| {
            let local = LOCAL_NAMES.iter().find(|local| local.0 == airport.0);
            *local.filter(|_| latin1).unwrap_or(airport)
        })
        .collect();
    if latin1 {
        list.extend_from_slice(LATIN1_EXTRA);
        list.sort_by_key(|airport| airport.0);
    }
    list
}

fn airports(content: &Content, lines: &mut Lines<'_>) -> io::Result<()> {
    for (i, (iata, name, city, country, timezone)) in
        airport_list(content.latin1).into_iter().enumerate()
    {
        // A missing required name, a country that is not a code, a code in lower case.
        let row = match damage(i as u64, content.bad_ppm).map(|ordinal| ordinal % 3) {
            None => format!("{iata},{name},{city},{country},{timezone}\n"),
            Some(0) => format!("{iata},,{city},{country},{timezone}\n"),
            Some(1) => format!("{iata},{name},{city},Europe,{timezone}\n"),
            Some(_) => format!(
                "{},{name},{city},{country},{timezone}\n",
                iata.to_ascii_lowercase()
            ),
        };
        lines.buf.push_str(&row);
    }
    lines.flush_if_full()
}

/// Lines collected as text and written in 64 KiB pieces: one `write` per piece rather than per
/// row keeps the deflater behind it fed with large inputs.
struct Lines<'a> {
    out: &'a mut dyn Write,
    latin1: bool,
    buf: String,
    bytes: Vec<u8>,
}

const FLUSH_AT: usize = 64 * 1024;

impl<'a> Lines<'a> {
    fn new(out: &'a mut dyn Write, latin1: bool) -> Self {
        Self {
            out,
            latin1,
            buf: String::with_capacity(FLUSH_AT + 256),
            bytes: Vec::new(),
        }
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.latin1 {
            self.bytes.clear();
            for c in self.buf.chars() {
                let byte = u8::try_from(u32::from(c)).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{c:?} is not Latin-1"))
                })?;
                self.bytes.push(byte);
            }
            self.out.write_all(&self.bytes)?;
        } else {
            self.out.write_all(self.buf.as_bytes())?;
        }
        self.buf.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(feed: Feed, rows: Option<u64>) -> Content {
        Content {
            tenant: "acme".to_owned(),
            feed,
            date: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
            rows,
            bad_ppm: 0,
            latin1: false,
            timetable: None,
        }
    }

    fn csv(content: &Content) -> Vec<u8> {
        let mut out = Vec::new();
        write_csv(content, &mut out).unwrap();
        out
    }

    #[test]
    fn feeds_are_deterministic_and_vary_by_input() {
        let flights = content(Feed::Flights, None);
        let a = csv(&flights);
        assert_eq!(a, csv(&flights));
        let next_day = Content {
            date: flights.date.succ_opt().unwrap(),
            ..flights.clone()
        };
        assert_ne!(a, csv(&next_day));
        let globex = Content {
            tenant: "globex".to_owned(),
            ..flights
        };
        assert_ne!(a, csv(&globex));
        assert_eq!(Feed::parse("airports"), Some(Feed::Airports));
        assert_eq!(Feed::parse("nope"), None);
    }

    #[test]
    fn nightly_flight_rows_are_well_formed() {
        let text = String::from_utf8(csv(&content(Feed::Flights, None))).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(Feed::Flights.header().trim_end()));
        let mut numbers = std::collections::HashSet::new();
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 7, "{line}");
            assert!(numbers.insert(fields[0].to_owned()), "duplicate in {line}");
            assert!(fields[0].starts_with("AC"));
            assert_ne!(fields[1], fields[2]);
            assert!(fields[3].starts_with("2026-05-01T"));
            assert!(fields[5].parse::<u64>().unwrap() > 0);
        }
        assert!(numbers.len() >= 12);
    }

    #[test]
    fn bad_rows_are_an_exact_evenly_spread_share() {
        let bad = |n: u64, ppm| (0..n).filter(|&i| damage(i, ppm).is_some()).count();
        assert_eq!(bad(1000, 50_000), 50);
        assert_eq!(bad(1000, 5_000), 5);
        assert_eq!(bad(1000, 1_000_000), 1000);
        assert_eq!(bad(1000, 0), 0);
        assert_eq!(bad(7, 500_000), 3);
        let ordinals: Vec<u64> = (0..100).filter_map(|i| damage(i, 100_000)).collect();
        assert_eq!(ordinals, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn many_flights_have_unique_keys_and_slots_cross_midnight() {
        let text = String::from_utf8(csv(&content(Feed::Flights, Some(30_000)))).unwrap();
        let mut keys = std::collections::HashSet::new();
        for line in text.lines().skip(1) {
            let mut fields = line.split(',');
            let key = (fields.next().unwrap(), fields.nth(2).unwrap());
            assert!(keys.insert(key), "duplicate key {key:?}");
        }
        assert_eq!(keys.len(), 30_000);
        assert!(text.contains(",2026-05-01T02:") && !text.contains(",2026-05-01T03:"));
        let date = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        assert_eq!(slot_day(date, 23), "2026-05-01");
        assert_eq!(slot_day(date, 24), "2026-05-02");
        // Twenty million rows are 2,000 slots: 84 days.
        assert_eq!(slot_day(date, 1_999), "2026-07-23");
    }

    #[test]
    fn latin1_airports_are_iso_8859_1_with_local_names() {
        let latin1 = Content {
            latin1: true,
            ..content(Feed::Airports, None)
        };
        let bytes = csv(&latin1);
        assert!(std::str::from_utf8(&bytes).is_err());
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        for name in ["Zürich", "Málaga", "München", "København", "Genève"] {
            assert!(text.contains(name), "{name} in {text}");
        }
        assert_eq!(
            text.lines().count(),
            1 + AIRPORTS.len() + LATIN1_EXTRA.len()
        );
        let plain = csv(&content(Feed::Airports, None));
        assert!(plain.is_ascii());
    }
}
