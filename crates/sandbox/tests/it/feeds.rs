//! Partner feeds: base64 of a zip holding one generated CSV; large files (`rows=N`), streamed, and
//! the raw zip or CSV (`format=`).

use std::collections::HashSet;
use std::io::Read as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::Harness;

pub fn unzip_bytes(bytes: &[u8]) -> (String, Vec<u8>) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    assert_eq!(archive.len(), 1, "exactly one file");
    let mut file = archive.by_index(0).unwrap();
    let mut csv = Vec::new();
    file.read_to_end(&mut csv).unwrap();
    (file.name().to_owned(), csv)
}

pub fn unzip_single(data: &str) -> (String, String) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    let (name, csv) = unzip_bytes(&bytes);
    (name, String::from_utf8(csv).expect("UTF-8"))
}

/// `GET path` with a fresh token: status, content type and the whole body.
pub async fn fetch(h: &Harness, path: &str) -> (StatusCode, String, Vec<u8>) {
    let token = h.token().await;
    let response = h
        .http
        .get(h.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// The CSV inside an envelope body.
pub fn envelope_csv(body: &[u8]) -> String {
    let envelope: Value = serde_json::from_slice(body).expect("JSON");
    unzip_single(envelope["data"].as_str().expect("data")).1
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

#[tokio::test]
async fn a_large_feed_has_exactly_n_rows_with_unique_keys_and_is_the_same_bytes_again() {
    let h = Harness::start().await;
    let path = "/feeds/acme/flights?date=2026-05-01&rows=100000";
    let (status, content_type, body) = fetch(&h, path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    assert!(body.starts_with(b"{\"filename\":\"flights-2026-05-01.csv\",\"data\":\""));
    let (_, _, again) = fetch(&h, path).await;
    assert!(
        body == again,
        "same tenant, feed, date and rows: same bytes"
    );

    let csv = envelope_csv(&body);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("number,origin,destination,departs_at,capacity,fare_minor,currency")
    );
    let mut keys = HashSet::new();
    let mut rows = 0;
    for line in lines {
        rows += 1;
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 7, "{line}");
        assert!(
            fields[0].starts_with("AC") && fields[0].len() <= 6,
            "{line}"
        );
        assert_ne!(fields[1], fields[2]);
        chrono::DateTime::parse_from_rfc3339(fields[3]).expect(line);
        assert!((1..=1000).contains(&fields[4].parse::<u32>().unwrap()));
        fields[5].parse::<u64>().unwrap();
        assert_eq!(fields[6], "EUR");
        assert!(
            keys.insert((fields[0].to_owned(), fields[3].to_owned())),
            "key of {line} repeats"
        );
    }
    assert_eq!(rows, 100_000);
}

#[tokio::test]
async fn the_raw_zip_and_csv_hold_the_envelopes_csv_and_smaller_files_are_prefixes() {
    let h = Harness::start().await;
    let base = "/feeds/acme/flights?date=2026-05-01&rows=1000";
    let (_, _, envelope) = fetch(&h, base).await;
    let (status, content_type, zipped) = fetch(&h, &format!("{base}&format=zip")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "application/zip")
    );
    let (status, content_type, csv) = fetch(&h, &format!("{base}&format=csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(
        unzip_bytes(&zipped),
        ("flights-2026-05-01.csv".to_owned(), csv.clone())
    );
    assert_eq!(envelope_csv(&envelope).into_bytes(), csv);
    assert_eq!(csv.iter().filter(|&&b| b == b'\n').count(), 1001);

    let (_, _, first_ten) =
        fetch(&h, "/feeds/acme/flights?date=2026-05-01&rows=10&format=csv").await;
    assert!(csv.starts_with(&first_ten));
    let (_, _, none) = fetch(&h, "/feeds/acme/flights?date=2026-05-01&rows=0&format=csv").await;
    assert_eq!(
        none,
        b"number,origin,destination,departs_at,capacity,fare_minor,currency\n"
    );
    let (_, _, other) = fetch(
        &h,
        "/feeds/globex/flights?date=2026-05-01&rows=10&format=csv",
    )
    .await;
    assert_ne!(other, first_ten);
}

/// Peak resident memory of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn large_feeds_stream_as_they_are_generated_in_flat_memory() {
    let h = Harness::start().await;
    let token = h.token().await;
    // Twenty million rows: the first bytes come at once, long before such a file could be built.
    let started = Instant::now();
    let response = h
        .http
        .get(h.url("/feeds/acme/flights?date=2026-05-01&rows=20000000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut head = Vec::new();
    while head.len() < 200_000 {
        head.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(head.starts_with(b"{\"filename\":\"flights-2026-05-01.csv\",\"data\":\"UEsDB"));
    drop(stream); // The generator stops at its next send.

    // A million rows (about 50 MB of CSV) read chunk by chunk: the process's peak memory grows by
    // far less than the file (about 1 MB when the test has its process to itself, as under
    // nextest; the bound leaves room for tests sharing the process under `cargo test`).
    let before = peak_rss_kib();
    let response = h
        .http
        .get(h.url("/feeds/acme/flights?date=2026-05-01&rows=1000000&format=csv"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    assert_eq!(lines, 1_000_001);
    assert!(bytes > 45_000_000, "{bytes}");
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown = after.saturating_sub(before);
        assert!(
            grown < 40 * 1024,
            "peak memory grew by {grown} KiB for {bytes} bytes"
        );
    }
}

#[tokio::test]
async fn large_and_raw_requests_are_validated() {
    let h = Harness::start().await;
    let token = h.token().await;
    for (path, code) in [
        (
            "/feeds/acme/flights?date=2026-05-01&rows=20000001",
            "parameter_invalid",
        ),
        (
            "/feeds/acme/flights?date=2026-05-01&rows=many",
            "parameter_invalid",
        ),
        (
            "/feeds/acme/airports?date=2026-05-01&rows=10",
            "parameter_invalid",
        ),
        (
            "/feeds/acme/flights?date=2026-05-01&format=xml",
            "parameter_invalid",
        ),
        (
            "/feeds/acme/flights?date=2026-05-01&fualt=zip_bomb",
            "parameter_unknown",
        ),
    ] {
        let (status, body) = h.get(&token, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
}
