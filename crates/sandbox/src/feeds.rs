//! Partner data feeds for skybook's importer: `GET /feeds/{tenant}/{feed}?date=YYYY-MM-DD` answers
//! `{"data": <base64 zip>, "filename": "<feed>-<date>.csv"}`, the way partners hand over nightly
//! files.
//!
//! The CSV is generated, not stored: a small PRNG seeded from SHA-256(tenant, feed, date) makes the
//! same request always produce byte-identical content (the zip entry's timestamp is the feed date,
//! not "now"), so importer tests can assert on exact rows and re-imports are real no-ops.

use std::collections::HashMap;
use std::io::Write as _;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use chrono::{Datelike as _, NaiveDate};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;

/// Feeds the sandbox can generate.
pub const FEEDS: &[&str] = &["flights", "airports"];

/// `(iata, name, city, country, timezone)` of the airports the feeds draw on.
const AIRPORTS: &[(&str, &str, &str, &str, &str)] = &[
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

const CAPACITIES: &[u32] = &[120, 150, 180, 189, 220];

/// SplitMix64: tiny, fast and — unlike library RNGs — guaranteed never to change its output.
struct SplitMix64(u64);

impl SplitMix64 {
    fn seeded(parts: &[&str]) -> Self {
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

    fn next(&mut self) -> u64 {
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

/// The CSV text of `feed` for `tenant` on `date`, or `None` for an unknown feed.
pub fn generate_csv(tenant: &str, feed: &str, date: NaiveDate) -> Option<String> {
    let date_text = date.format("%Y-%m-%d").to_string();
    let mut rng = SplitMix64::seeded(&[tenant, feed, &date_text]);
    match feed {
        "flights" => Some(flights_csv(tenant, &date_text, &mut rng)),
        "airports" => Some(airports_csv()),
        _ => None,
    }
}

fn flights_csv(tenant: &str, date: &str, rng: &mut SplitMix64) -> String {
    let mut carrier: String = tenant
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(2)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if carrier.len() < 2 {
        carrier = "SB".to_owned();
    }
    let rows = 12 + rng.below(9);
    let mut csv =
        String::from("number,origin,destination,departs_at,capacity,fare_minor,currency\n");
    for i in 0..rows {
        let number = format!("{carrier}{}", 100 + i * 10 + rng.below(10));
        let origin = rng.below(AIRPORTS.len() as u64) as usize;
        let hop = 1 + rng.below(AIRPORTS.len() as u64 - 1) as usize;
        let destination = (origin + hop) % AIRPORTS.len();
        let hour = 5 + rng.below(18);
        let minute = rng.below(12) * 5;
        let capacity = CAPACITIES[rng.below(CAPACITIES.len() as u64) as usize];
        let fare_minor = (29 + rng.below(400)) * 100 + 99;
        csv.push_str(&format!(
            "{number},{},{},{date}T{hour:02}:{minute:02}:00Z,{capacity},{fare_minor},EUR\n",
            AIRPORTS[origin].0, AIRPORTS[destination].0,
        ));
    }
    csv
}

fn airports_csv() -> String {
    let mut csv = String::from("iata,name,city,country,timezone\n");
    for (iata, name, city, country, timezone) in AIRPORTS {
        csv.push_str(&format!("{iata},{name},{city},{country},{timezone}\n"));
    }
    csv
}

/// A zip holding `csv` as `filename`, stamped with `date` so identical input gives identical bytes.
pub fn zip_csv(filename: &str, csv: &str, date: NaiveDate) -> zip::result::ZipResult<Vec<u8>> {
    let stamp = u16::try_from(date.year())
        .ok()
        .and_then(|year| {
            zip::DateTime::from_date_and_time(year, date.month() as u8, date.day() as u8, 0, 0, 0)
                .ok()
        })
        .unwrap_or_default();
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(stamp)
        .unix_permissions(0o644);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file(filename, options)?;
    writer.write_all(csv.as_bytes())?;
    Ok(writer.finish()?.into_inner())
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /feeds/{tenant}/{feed}?date=YYYY-MM-DD`.
#[tracing::instrument(name = "feed", skip(query))]
pub async fn get_feed(
    Path((tenant, feed)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query
        .map_err(|_| ApiError::invalid_request("parameter_invalid", "malformed query string"))?;
    if !valid_name(&tenant) || !valid_name(&feed) {
        return Err(ApiError::invalid_request(
            "parameter_invalid",
            "tenant and feed must be [A-Za-z0-9_-]{1,64}",
        ));
    }
    let date = query.get("date").ok_or_else(|| {
        ApiError::invalid_request("parameter_missing", "date=YYYY-MM-DD is required")
    })?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid_request("parameter_invalid", "date must be YYYY-MM-DD"))?;
    let csv = generate_csv(&tenant, &feed, date).ok_or_else(|| {
        ApiError::resource_missing(format!(
            "no such feed {feed:?}; available: {}",
            FEEDS.join(", ")
        ))
    })?;
    let filename = format!("{feed}-{}.csv", date.format("%Y-%m-%d"));
    let zipped = zip_csv(&filename, &csv, date).map_err(|error| {
        tracing::error!(%error, "zipping a feed failed");
        ApiError::internal("feed_error", "the feed could not be packaged")
    })?;
    let data = base64::engine::general_purpose::STANDARD.encode(zipped);
    Ok(Json(json!({ "data": data, "filename": filename })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_are_deterministic_and_vary_by_input() {
        let date = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let a = generate_csv("acme", "flights", date).unwrap();
        assert_eq!(a, generate_csv("acme", "flights", date).unwrap());
        assert_ne!(
            a,
            generate_csv("acme", "flights", date.succ_opt().unwrap()).unwrap()
        );
        assert_ne!(a, generate_csv("globex", "flights", date).unwrap());
        assert!(generate_csv("acme", "nope", date).is_none());
        let zip = zip_csv("flights-2026-05-01.csv", &a, date).unwrap();
        assert_eq!(zip, zip_csv("flights-2026-05-01.csv", &a, date).unwrap());
    }

    #[test]
    fn flight_rows_are_well_formed() {
        let date = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let csv = generate_csv("acme", "flights", date).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("number,origin,destination,departs_at,capacity,fare_minor,currency")
        );
        let mut numbers = std::collections::HashSet::new();
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 7, "{line}");
            assert!(
                numbers.insert(fields[0].to_owned()),
                "duplicate flight number in {line}"
            );
            assert!(fields[0].starts_with("AC"));
            assert_ne!(fields[1], fields[2]);
            assert!(fields[3].starts_with("2026-05-01T"));
            assert!(fields[5].parse::<u64>().unwrap() > 0);
        }
        assert!(numbers.len() >= 12);
    }
}
