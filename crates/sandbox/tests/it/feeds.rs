//! Partner feeds: base64 of a zip holding one generated CSV.

use std::io::Read as _;

use base64::Engine as _;
use reqwest::StatusCode;

use crate::common::Harness;

fn unzip_single(data: &str) -> (String, String) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    assert_eq!(archive.len(), 1, "exactly one file");
    let mut file = archive.by_index(0).unwrap();
    let mut csv = String::new();
    file.read_to_string(&mut csv).unwrap();
    (file.name().to_owned(), csv)
}

#[tokio::test]
async fn flights_feed_is_a_zipped_csv_with_a_header_and_is_deterministic() {
    let h = Harness::start().await;
    let token = h.token().await;
    let (status, body) = h.get(&token, "/feeds/acme/flights?date=2026-05-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["filename"], "flights-2026-05-01.csv");
    let (name, csv) = unzip_single(body["data"].as_str().unwrap());
    assert_eq!(name, "flights-2026-05-01.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("number,origin,destination,departs_at,capacity,fare_minor,currency")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|row| row.split(',').count() == 7));

    let (_, again) = h.get(&token, "/feeds/acme/flights?date=2026-05-01").await;
    assert_eq!(
        again["data"], body["data"],
        "same (tenant, feed, date), same bytes"
    );
    let (_, other_day) = h.get(&token, "/feeds/acme/flights?date=2026-05-02").await;
    assert_ne!(unzip_single(other_day["data"].as_str().unwrap()).1, csv);
}

#[tokio::test]
async fn feed_requests_are_validated() {
    let h = Harness::start().await;
    let token = h.token().await;
    let (status, body) = h.get(&token, "/feeds/acme/flights").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "parameter_missing");
    let (status, _) = h.get(&token, "/feeds/acme/flights?date=2026-13-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = h.get(&token, "/feeds/acme/nonsense?date=2026-05-01").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "resource_missing");
    let (status, body) = h.get(&token, "/feeds/acme/airports?date=2026-05-01").await;
    assert_eq!(status, StatusCode::OK);
    assert!(unzip_single(body["data"].as_str().unwrap())
        .1
        .starts_with("iata,name,city,country,timezone\n"));
}
