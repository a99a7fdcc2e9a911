//! `GET /api/v1/tenants/{tenant}/flights`

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use skybook_domain::{AirportCode, FieldErrors, SearchDate};
use skybook_storage::FlightSearch;

use crate::error::ApiError;
use crate::render::{ErrorJson, FlightJson, FlightsJson};
use crate::AppState;

/// Search a tenant's flights. Every filter is optional; each one given must be valid.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/flights",
    params(
        ("tenant" = String, Path, description = "Tenant slug", pattern = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$", example = "demo"),
        ("origin" = Option<String>, Query, description = "IATA code, e.g. DUB (any case)", pattern = "^[A-Za-z]{3}$", example = "DUB"),
        ("destination" = Option<String>, Query, description = "IATA code, e.g. LHR (any case)", pattern = "^[A-Za-z]{3}$", example = "LHR"),
        // Typed as a date so the document says `format: date`; the handler still reads it as text, so that a bad
        // date is named in the 422 with the others rather than refused alone by the extractor.
        ("date" = Option<chrono::NaiveDate>, Query,
            description = "Departure day (UTC), YYYY-MM-DD, from yesterday to two years from today"),
    ),
    responses(
        (status = 200, description = "Matching flights, earliest first", body = FlightsJson),
        (status = 404, description = "`not_found`: unknown tenant", body = ErrorJson),
        (status = 422, description = "`invalid`: filters that are not valid (an empty one among them), each named", body = ErrorJson),
        (status = 500, description = "`internal`, with the request id", body = ErrorJson),
        (status = 503, description = "`service_unavailable`: the database is unavailable; retry", body = ErrorJson),
    ),
    tag = "flights"
)]
pub async fn search(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<FlightsJson>, ApiError> {
    let tenant = super::tenant(&state, &tenant).await?;
    let search = parse_search(&query, EmptyFilters::Invalid).map_err(ApiError::Invalid)?;
    let flights = state.store.search_flights(tenant.id, &search).await?;
    Ok(Json(FlightsJson {
        flights: flights.iter().map(FlightJson::from).collect(),
    }))
}

/// The search filters; shared with the website's search form.
/// What an empty filter (`?date=`) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyFilters {
    /// Not given: a form's field left blank (the website).
    Ignored,
    /// Invalid, like any other value that is not one (the API, whose document declares each filter's format).
    Invalid,
}

pub fn parse_search(
    query: &HashMap<String, String>,
    empty: EmptyFilters,
) -> Result<FlightSearch, FieldErrors> {
    let now = chrono::Utc::now();
    let mut errors = FieldErrors::new();
    let given = |name: &str| {
        query
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() || empty == EmptyFilters::Invalid)
    };
    let origin = given("origin").and_then(|v| errors.check("origin", AirportCode::parse(v)));
    let destination =
        given("destination").and_then(|v| errors.check("destination", AirportCode::parse(v)));
    let date = given("date")
        .and_then(|v| errors.check("date", SearchDate::parse(v, now.date_naive())))
        .map(SearchDate::day);
    errors.into_result()?;
    Ok(FlightSearch {
        origin,
        destination,
        date,
        after: Some(now),
        limit: 100,
    })
}
