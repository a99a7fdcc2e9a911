//! The feed endpoint's query parameters, checked as a whole: an unknown name or a combination that
//! cannot mean anything is a `400` naming it, so a typo in a test's fault never passes as a healthy
//! feed. Defaults set with `POST /sandbox/faults {"feed_query": ...}` are read here too, under the
//! request's own parameters.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Query;
use axum::http::Uri;
use chrono::NaiveDate;

use super::generate::{Content, Feed};
use crate::error::ApiError;

/// Most rows a `rows=` file may have.
pub const MAX_ROWS: u64 = 20_000_000;

/// Longest `delay_ms`: a minute, longer than any sensible client timeout.
pub const MAX_DELAY_MS: u64 = 60_000;

const KNOWN: &[&str] = &["date", "rows", "format", "fault", "bad_rows", "delay_ms"];

/// How the file is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"filename": ..., "data": "<base64 of the zip>"}`, what partners send.
    Envelope,
    /// The zip itself.
    Zip,
    /// The CSV itself.
    Csv,
}

/// What goes wrong with the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    CorruptBase64,
    CorruptZip,
    ZipBomb,
    Latin1,
    Status503,
    Status404,
}

impl Fault {
    const ALL: [(&'static str, Fault); 6] = [
        ("corrupt_base64", Fault::CorruptBase64),
        ("corrupt_zip", Fault::CorruptZip),
        ("zip_bomb", Fault::ZipBomb),
        ("latin1", Fault::Latin1),
        ("status_503", Fault::Status503),
        ("status_404", Fault::Status404),
    ];
}

/// One feed request, checked.
#[derive(Debug, Clone)]
pub struct FeedRequest {
    pub content: Content,
    pub format: Format,
    pub fault: Option<Fault>,
    pub delay: Duration,
}

impl FeedRequest {
    /// The CSV's name, `<feed>-<date>.csv`, in the envelope and inside the zip.
    pub fn filename(&self) -> String {
        format!(
            "{}-{}.csv",
            self.content.feed.name(),
            self.content.date_text()
        )
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_request("parameter_invalid", message)
}

/// Parses a default query string (`feed_query`) into its parameters; `date` is per request only.
pub fn parse_defaults(query: &str) -> Result<HashMap<String, String>, ApiError> {
    if query.is_empty() {
        return Ok(HashMap::new());
    }
    let uri: Uri = format!("/?{query}")
        .parse()
        .map_err(|_| invalid("feed_query is not a query string"))?;
    let Query(params) = Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map_err(|_| invalid("feed_query is not a query string"))?;
    if params.contains_key("date") {
        return Err(invalid("feed_query cannot set date: it is per request"));
    }
    Ok(params)
}

/// Checks a `feed_query` before it is stored: its parameters must be ones a request could send.
pub fn check_defaults(query: &str) -> Result<(), ApiError> {
    let mut params = parse_defaults(query)?;
    params.insert("date".to_owned(), "2000-01-01".to_owned());
    // Feed-specific rules (rows on airports, latin1 on flights) are checked per request.
    for feed in Feed::ALL {
        if parse("sandbox", feed, &params).is_ok() {
            return Ok(());
        }
    }
    parse("sandbox", Feed::Flights, &params).map(drop)
}

/// The request's parameters over the defaults.
pub fn merge(
    defaults: HashMap<String, String>,
    request: HashMap<String, String>,
) -> HashMap<String, String> {
    let mut merged = defaults;
    merged.extend(request);
    merged
}

fn number(params: &HashMap<String, String>, name: &str, max: u64) -> Result<u64, ApiError> {
    match params.get(name) {
        None => Ok(0),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| invalid(format!("{name} must be a whole number from 0 to {max}"))),
    }
}

/// Checks `params` for `feed` of `tenant`.
pub fn parse(
    tenant: &str,
    feed: Feed,
    params: &HashMap<String, String>,
) -> Result<FeedRequest, ApiError> {
    let mut unknown: Vec<&str> = params
        .keys()
        .map(String::as_str)
        .filter(|name| !KNOWN.contains(name))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(ApiError::invalid_request(
            "parameter_unknown",
            format!(
                "unknown parameter {}; known: {}",
                unknown.join(", "),
                KNOWN.join(", ")
            ),
        ));
    }
    let date = params.get("date").ok_or_else(|| {
        ApiError::invalid_request("parameter_missing", "date=YYYY-MM-DD is required")
    })?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| invalid("date must be YYYY-MM-DD"))?;
    let rows = params
        .contains_key("rows")
        .then(|| number(params, "rows", MAX_ROWS))
        .transpose()?;
    if rows.is_some() && feed != Feed::Flights {
        return Err(invalid(
            "rows applies to the flights feed only: airports is one fixed list",
        ));
    }
    let format = match params.get("format").map(String::as_str) {
        None | Some("envelope") => Format::Envelope,
        Some("zip") => Format::Zip,
        Some("csv") => Format::Csv,
        Some(_) => return Err(invalid("format must be envelope, zip or csv")),
    };
    let fault = match params.get("fault").map(String::as_str) {
        None | Some("none") => None,
        Some(name) => Some(
            Fault::ALL
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, fault)| *fault)
                .ok_or_else(|| {
                    let names: Vec<&str> = Fault::ALL.iter().map(|(n, _)| *n).collect();
                    invalid(format!("fault must be none or one of {}", names.join(", ")))
                })?,
        ),
    };
    match fault {
        Some(Fault::CorruptBase64) if format != Format::Envelope => {
            return Err(invalid("fault=corrupt_base64 needs format=envelope"));
        }
        Some(Fault::CorruptZip | Fault::ZipBomb) if format == Format::Csv => {
            return Err(invalid("zip faults need format=envelope or format=zip"));
        }
        Some(Fault::Latin1) if feed != Feed::Airports => {
            return Err(invalid(
                "fault=latin1 applies to the airports feed: flights hold no text beyond ASCII",
            ));
        }
        _ => {}
    }
    let bad_ppm = match params.get("bad_rows") {
        None => 0,
        Some(text) => text
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            // At most 10⁶, so the cast cannot truncate.
            .map(|p| (p * 10_000.0).round() as u32)
            .ok_or_else(|| invalid("bad_rows must be a percentage from 0 to 100"))?,
    };
    let delay = Duration::from_millis(number(params, "delay_ms", MAX_DELAY_MS)?);
    Ok(FeedRequest {
        content: Content {
            tenant: tenant.to_owned(),
            feed,
            date,
            rows,
            bad_ppm,
            latin1: fault == Some(Fault::Latin1),
            timetable: None,
        },
        format,
        fault,
        delay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> HashMap<String, String> {
        let mut params = parse_defaults(query).unwrap();
        params.insert("date".to_owned(), "2026-05-01".to_owned());
        params
    }

    #[test]
    fn parameters_parse_and_combinations_are_checked() {
        let request = parse(
            "acme",
            Feed::Flights,
            &params("rows=5&bad_rows=2.5&format=csv"),
        )
        .unwrap();
        assert_eq!(request.content.rows, Some(5));
        assert_eq!(request.content.bad_ppm, 25_000);
        assert_eq!(request.format, Format::Csv);
        assert_eq!(request.filename(), "flights-2026-05-01.csv");
        for (feed, query) in [
            (Feed::Flights, "rows=20000001"),
            (Feed::Flights, "rows=-1"),
            (Feed::Airports, "rows=5"),
            (Feed::Flights, "fault=latin1"),
            (Feed::Flights, "fault=corrupt_base64&format=zip"),
            (Feed::Flights, "fault=zip_bomb&format=csv"),
            (Feed::Flights, "fault=bogus"),
            (Feed::Flights, "bad_rows=101"),
            (Feed::Flights, "bad_rows=NaN"),
            (Feed::Flights, "delay_ms=60001"),
            (Feed::Flights, "format=xml"),
            (Feed::Flights, "fualt=zip_bomb"),
        ] {
            assert!(parse("acme", feed, &params(query)).is_err(), "{query}");
        }
        assert!(parse("acme", Feed::Airports, &params("fault=latin1&bad_rows=50")).is_ok());
        assert!(check_defaults("fault=latin1").is_ok());
        assert!(check_defaults("rows=10&fault=none").is_ok());
        assert!(check_defaults("date=2026-01-01").is_err());
        assert!(check_defaults("rows=x").is_err());
        let merged = merge(
            parse_defaults("fault=zip_bomb&rows=3").unwrap(),
            params("fault=none"),
        );
        let request = parse("acme", Feed::Flights, &merged).unwrap();
        assert_eq!((request.fault, request.content.rows), (None, Some(3)));
    }
}
