//! `GET /`: the search form, prefilled with the session's last search, and the results when a search is given.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use skybook_domain::MAX_PASSENGERS;

use super::session::{LastSearch, Visit};
use super::views::{summary, FlightView, SearchForm, SearchPage};
use super::{site_tenant, PageError};
use crate::api::flights::{parse_search, EmptyFilters};
use crate::AppState;

#[tracing::instrument(name = "site.search", skip_all, fields(tenant = %state.options.site.tenant))]
pub async fn home(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let tenant = site_tenant(&state).await?;
    let given = |k: &str| {
        query
            .get(k)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let searched = ["origin", "destination", "date"]
        .iter()
        .any(|k| query.contains_key(*k));

    if !searched {
        let last = visit.last_search().await?.unwrap_or_default();
        let page = SearchPage {
            search: SearchForm {
                origin: last.origin,
                destination: last.destination,
                date: if last.date.is_empty() {
                    (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string()
                } else {
                    last.date
                },
                passengers: last.passengers.max(1),
            },
            searched: false,
            flights: Vec::new(),
            errors: Vec::new(),
        };
        return Ok(page.into_response());
    }

    let mut form = SearchForm {
        origin: given("origin").to_uppercase(),
        destination: given("destination").to_uppercase(),
        date: given("date"),
        passengers: 1,
    };
    // Parsed once: a date read twice could fall either side of midnight, and out of the window the second time.
    let parsed = parse_search(&query, EmptyFilters::Ignored);
    let mut errors = parsed.as_ref().err().cloned().unwrap_or_default();
    for (field, value) in [
        ("origin", &form.origin),
        ("destination", &form.destination),
        ("date", &form.date),
    ] {
        if value.is_empty() {
            errors.add(field, "is required");
        }
    }
    match given("passengers").parse::<u32>() {
        Ok(n) if (1..=MAX_PASSENGERS as u32).contains(&n) => form.passengers = n,
        _ if given("passengers").is_empty() => {}
        _ => errors.add("passengers", "must be between 1 and 9"),
    }
    if !errors.is_empty() {
        let page = SearchPage {
            search: form,
            searched: false,
            flights: Vec::new(),
            errors: summary(&errors),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    visit
        .remember_search(&LastSearch {
            origin: form.origin.clone(),
            destination: form.destination.clone(),
            date: form.date.clone(),
            passengers: form.passengers,
        })
        .await?;
    let search = parsed.map_err(crate::error::ApiError::Invalid)?;
    let flights = state.store.search_flights(tenant.id, &search).await?;
    let flights = flights
        .iter()
        .map(|f| FlightView::new(f, form.passengers))
        .collect();
    Ok(SearchPage {
        search: form,
        searched: true,
        flights,
        errors: Vec::new(),
    }
    .into_response())
}
