//! Feed faults, per request (`fault=`, `bad_rows=`, `delay_ms=`) and as defaults set through
//! `POST /sandbox/faults` (`feed_query`, `fail_next_feeds`): each produces what it says.

use std::io::Read as _;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{status_json, Harness};
use crate::feeds::{envelope_csv, fetch, unzip_bytes};

fn data_of(body: &[u8]) -> String {
    let envelope: Value = serde_json::from_slice(body).expect("the envelope is still JSON");
    envelope["data"].as_str().expect("data").to_owned()
}

#[tokio::test]
async fn bad_rows_damage_an_exact_share_of_rows_and_nothing_else() {
    let h = Harness::start().await;
    let base = "/feeds/acme/flights?date=2026-05-01&rows=1000&format=csv";
    let (_, _, clean) = fetch(&h, base).await;
    let (status, _, damaged) = fetch(&h, &format!("{base}&bad_rows=5")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, again) = fetch(&h, &format!("{base}&bad_rows=5")).await;
    assert_eq!(damaged, again, "the same rows every time");
    let (clean, damaged) = (
        String::from_utf8(clean).unwrap(),
        String::from_utf8(damaged).unwrap(),
    );
    let pairs: Vec<(&str, &str)> = clean.lines().zip(damaged.lines()).collect();
    assert_eq!(pairs.len(), 1001);
    let bad: Vec<&str> = pairs
        .iter()
        .filter(|(c, d)| c != d)
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(bad.len(), 50, "5% of 1000 rows");
    let capacity = bad.iter().filter(|l| l.split(',').nth(4) == Some("lots"));
    let currency = bad.iter().filter(|l| l.ends_with(",ZZZ"));
    let timestamp = bad
        .iter()
        .filter(|l| chrono::DateTime::parse_from_rfc3339(l.split(',').nth(3).unwrap()).is_err());
    assert_eq!(
        (capacity.count(), currency.count(), timestamp.count()),
        (17, 17, 16)
    );

    // The nightly file and the airports list have their share too (half, rounded down).
    let (_, _, airports) = fetch(
        &h,
        "/feeds/acme/airports?date=2026-05-01&bad_rows=50&format=csv",
    )
    .await;
    let airports = String::from_utf8(airports).unwrap();
    let broken = airports.lines().skip(1).filter(|l| {
        let f: Vec<&str> = l.split(',').collect();
        f[1].is_empty() || f[3].len() != 2 || f[0] != f[0].to_ascii_uppercase()
    });
    assert_eq!(broken.count(), 6);
    let (status, _, _) = fetch(&h, "/feeds/acme/flights?date=2026-05-01&bad_rows=100.5").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn corrupt_base64_and_corrupt_zip_break_their_layer_only() {
    let h = Harness::start().await;
    let (status, _, body) = fetch(
        &h,
        "/feeds/acme/flights?date=2026-05-01&fault=corrupt_base64",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(STANDARD.decode(data_of(&body)).is_err(), "not base64");

    let (status, _, body) =
        fetch(&h, "/feeds/acme/flights?date=2026-05-01&fault=corrupt_zip").await;
    assert_eq!(status, StatusCode::OK);
    let bytes = STANDARD.decode(data_of(&body)).expect("valid base64");
    assert!(bytes.starts_with(b"PK"), "looks like a zip to a sniffer");
    assert!(
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).is_err(),
        "but is none"
    );
    let (_, content_type, raw) = fetch(
        &h,
        "/feeds/acme/flights?date=2026-05-01&fault=corrupt_zip&format=zip",
    )
    .await;
    assert_eq!(content_type, "application/zip");
    assert!(zip::ZipArchive::new(std::io::Cursor::new(raw)).is_err());

    for path in [
        "/feeds/acme/flights?date=2026-05-01&fault=corrupt_base64&format=csv",
        "/feeds/acme/flights?date=2026-05-01&fault=corrupt_zip&format=csv",
        "/feeds/acme/flights?date=2026-05-01&fault=zip_bomb&format=csv",
        "/feeds/acme/flights?date=2026-05-01&fault=melt",
    ] {
        let (status, _, _) = fetch(&h, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
}

#[tokio::test]
async fn a_zip_bomb_is_small_and_inflates_over_a_thousand_fold() {
    let h = Harness::start().await;
    let (status, _, body) = fetch(&h, "/feeds/acme/flights?date=2026-05-01&fault=zip_bomb").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.len() < 2_000_000, "{} bytes", body.len());
    let bytes = STANDARD.decode(data_of(&body)).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), 1);
    let (size, compressed) = {
        let raw = archive.by_index_raw(0).unwrap();
        assert_eq!(raw.name(), "flights-2026-05-01.csv");
        (raw.size(), raw.compressed_size())
    };
    assert!(size > 1_000_000_000, "{size}");
    assert!(size / compressed > 1000, "{size} / {compressed}");
    // What it inflates to: the header, then one byte repeated (only the start is read).
    let mut start = vec![0u8; 1 << 20];
    archive.by_index(0).unwrap().read_exact(&mut start).unwrap();
    let header = b"number,origin,destination,departs_at,capacity,fare_minor,currency\n";
    assert!(start.starts_with(header));
    assert!(start[header.len()..].iter().all(|&b| b == b'\n'));

    let (_, content_type, raw) = fetch(
        &h,
        "/feeds/acme/flights?date=2026-05-01&fault=zip_bomb&format=zip",
    )
    .await;
    assert_eq!(content_type, "application/zip");
    let mut raw_archive = zip::ZipArchive::new(std::io::Cursor::new(raw)).unwrap();
    assert_eq!(raw_archive.by_index_raw(0).unwrap().size(), size);
}

#[tokio::test]
async fn latin1_airports_are_iso_8859_1_with_local_names() {
    let h = Harness::start().await;
    let (status, content_type, csv) = fetch(
        &h,
        "/feeds/acme/airports?date=2026-05-01&fault=latin1&format=csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=iso-8859-1");
    assert!(std::str::from_utf8(&csv).is_err(), "not UTF-8");
    let text: String = csv.iter().map(|&b| char::from(b)).collect();
    assert!(text.starts_with("iata,name,city,country,timezone\n"));
    assert!(
        text.contains("\nZRH,Flughafen Zürich,Zürich,CH,Europe/Zurich\n"),
        "{text}"
    );
    assert!(
        text.contains("\nAGP,Málaga-Costa del Sol,Málaga,ES,Europe/Madrid\n"),
        "{text}"
    );
    assert!(
        csv.contains(&0xFC) && csv.contains(&0xE1),
        "ü and á as single bytes"
    );

    let (_, _, body) = fetch(&h, "/feeds/acme/airports?date=2026-05-01&fault=latin1").await;
    let (name, zipped) = unzip_bytes(&STANDARD.decode(data_of(&body)).unwrap());
    assert_eq!((name.as_str(), zipped), ("airports-2026-05-01.csv", csv));
    let (status, _, _) = fetch(&h, "/feeds/acme/flights?date=2026-05-01&fault=latin1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_slow_or_failing_endpoint_answers_late_or_with_its_status() {
    let h = Harness::start().await;
    let token = h.token().await;
    let (status, body) = h
        .get(
            &token,
            "/feeds/acme/flights?date=2026-05-01&fault=status_503",
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "feed_unavailable");
    let (status, body) = h
        .get(
            &token,
            "/feeds/acme/flights?date=2026-05-01&fault=status_404",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "resource_missing");

    let started = Instant::now();
    let (status, body) = h
        .get(&token, "/feeds/acme/flights?date=2026-05-01&delay_ms=300")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(body["data"].is_string());
    let (status, _) = h
        .get(&token, "/feeds/acme/flights?date=2026-05-01&delay_ms=60001")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sandbox_fault_settings_reach_feed_requests_that_name_no_fault() {
    let h = Harness::start().await;
    let token = h.token().await;
    let path = "/feeds/acme/flights?date=2026-05-01";

    let settings = h.faults(json!({ "fail_next_feeds": 2 })).await;
    assert_eq!(settings["fail_next_feeds"], 2);
    for _ in 0..2 {
        assert_eq!(h.get(&token, path).await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(h.get(&token, path).await.0, StatusCode::OK);

    h.faults(json!({ "feed_query": "fault=status_404&rows=50" }))
        .await;
    assert_eq!(h.get(&token, path).await.0, StatusCode::NOT_FOUND);
    // The request's own parameters win; the other defaults still apply.
    let (status, _, body) = fetch(&h, &format!("{path}&fault=none")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(envelope_csv(&body).lines().count(), 51);
    assert_eq!(
        h.stats().await["faults"]["feed_query"],
        "fault=status_404&rows=50"
    );

    for bad in ["date=2026-01-01", "rows=lots", "fault=melt", "colour=red"] {
        let response = h
            .http
            .post(h.url("/sandbox/faults"))
            .json(&json!({ "feed_query": bad }))
            .send()
            .await
            .unwrap();
        let (status, _) = status_json(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    h.faults(json!({})).await;
    let (status, body) = h.get(&token, path).await;
    assert_eq!(status, StatusCode::OK);
    let rows = crate::feeds::unzip_single(body["data"].as_str().unwrap()).1;
    assert!(rows.lines().count() < 30, "back to the nightly file");
}
