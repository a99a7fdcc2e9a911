//! Partner data feeds for skybook's importer: `GET /feeds/{tenant}/{feed}?date=YYYY-MM-DD` answers
//! `{"filename": "<feed>-<date>.csv", "data": <base64 zip>}`, the way partners hand over nightly
//! files.
//!
//! The CSV is generated, not stored (`generate`): a small PRNG seeded from SHA-256(tenant, feed,
//! date) makes the same request always produce byte-identical content (the zip entry is dated the
//! feed date, not "now"), so importer tests can assert on exact rows and re-imports are real no-ops.
//!
//! Query parameters (`params`) ask for what the importer's tests and benchmark need: a large file
//! (`rows=N`, up to twenty million), the raw zip or CSV (`format`), and faults — corrupt base64, a
//! corrupt zip, a zip bomb, bad rows, Latin-1 text, a slow or failing endpoint. Every answer is
//! streamed as it is generated (`encode`, `zipstream`): memory per request stays flat whatever
//! the size.

mod encode;
mod generate;
mod params;
mod timetable;
mod zipstream;

use std::collections::HashMap;
use std::io::{self, Write};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use self::encode::{streamed_body, Base64Writer};
use self::generate::Feed;
use self::params::{Fault, FeedRequest, Format};
use crate::error::ApiError;
use crate::state::{AppState, Counters};

pub use self::params::check_defaults;
pub use self::timetable::{Departure, Timetable};

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The answer of a failing feed endpoint (`fault=status_503`, `fail_next_feeds`).
fn unavailable(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        "feed_unavailable",
        format!("the feed endpoint is unavailable (sandbox fault: {why})"),
    )
}

/// `GET /feeds/{tenant}/{feed}?date=YYYY-MM-DD[&rows=&format=&fault=&bad_rows=&delay_ms=]`.
#[tracing::instrument(name = "feed", skip(state, query))]
pub async fn get_feed(
    State(state): State<AppState>,
    Path((tenant, feed)): Path<(String, String)>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    Counters::bump(&state.counters.feed_requests);
    if state.faults.take_feed_failure() {
        return Err(unavailable("fail_next_feeds"));
    }
    let Query(query) = query
        .map_err(|_| ApiError::invalid_request("parameter_invalid", "malformed query string"))?;
    if !valid_name(&tenant) || !valid_name(&feed) {
        return Err(ApiError::invalid_request(
            "parameter_invalid",
            "tenant and feed must be [A-Za-z0-9_-]{1,64}",
        ));
    }
    let defaults = params::parse_defaults(&state.faults.feed_query())?;
    let query = params::merge(defaults, query);
    if !query.contains_key("date") {
        return Err(ApiError::invalid_request(
            "parameter_missing",
            "date=YYYY-MM-DD is required",
        ));
    }
    let feed = Feed::parse(&feed).ok_or_else(|| {
        let names: Vec<&str> = Feed::ALL.iter().map(|feed| feed.name()).collect();
        ApiError::resource_missing(format!(
            "no such feed {feed:?}; available: {}",
            names.join(", ")
        ))
    })?;
    let mut request = params::parse(&tenant, feed, &query)?;
    if feed == Feed::Flights {
        request.content.timetable = state.config.timetables.get(&tenant).cloned();
    }
    if !request.delay.is_zero() {
        tokio::time::sleep(request.delay).await;
    }
    match request.fault {
        Some(Fault::Status503) => Err(unavailable("fault=status_503")),
        Some(Fault::Status404) => Err(ApiError::resource_missing(format!(
            "no {} feed for {} (sandbox fault: fault=status_404)",
            feed.name(),
            request.content.date_text()
        ))),
        _ => Ok(respond(request)),
    }
}

/// The streamed answer, with its content type.
fn respond(request: FeedRequest) -> Response {
    let filename = request.filename();
    let (content_type, attachment) = match request.format {
        Format::Envelope => ("application/json", None),
        Format::Zip => ("application/zip", Some(filename.replace(".csv", ".zip"))),
        Format::Csv if request.content.latin1 => ("text/csv; charset=iso-8859-1", Some(filename)),
        Format::Csv => ("text/csv; charset=utf-8", Some(filename)),
    };
    let body = streamed_body(move |out| produce(&request, out));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Validated names and a date: always a valid header value.
    if let Some(value) = attachment
        .and_then(|name| HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).ok())
    {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    response
}

/// Writes the whole answer body.
fn produce(request: &FeedRequest, out: &mut dyn Write) -> io::Result<()> {
    match request.format {
        Format::Csv => generate::write_csv(&request.content, out),
        Format::Zip => archive(request, out),
        Format::Envelope => {
            // The filename goes first, so a reader streaming the data knows what it is.
            let filename = serde_json::to_string(&request.filename()).map_err(io::Error::other)?;
            write!(out, "{{\"filename\":{filename},\"data\":\"")?;
            let corrupt = request.fault == Some(Fault::CorruptBase64);
            let mut base64 = Base64Writer::new(&mut *out, corrupt);
            archive(request, &mut base64)?;
            base64.finish()?;
            out.write_all(b"\"}")
        }
    }
}

/// The zip (or what a fault puts in its place).
fn archive(request: &FeedRequest, out: &mut dyn Write) -> io::Result<()> {
    let content = &request.content;
    let filename = request.filename();
    match request.fault {
        Some(Fault::CorruptZip) => {
            let date = content.date_text();
            let seed = [
                content.tenant.as_str(),
                content.feed.name(),
                &date,
                "corrupt",
            ];
            zipstream::write_not_a_zip(out, &seed)
        }
        Some(Fault::ZipBomb) => zipstream::write_bomb(
            out,
            &filename,
            content.date,
            content.feed.header(),
            zipstream::BOMB_MATCHES,
        )
        .map(drop),
        _ => zipstream::write_deflated(out, &filename, content.date, |csv| {
            generate::write_csv(content, csv)
        })
        .map(drop),
    }
}
