//! Flight search dates, on the API and the website: a day outside the searchable window is a 422 naming
//! `date`, never a 500 (`?date=+262142-12-31` once overflowed the search's date arithmetic).

use axum::http::StatusCode;
use chrono::{Days, NaiveDate, Utc};
use serde_json::{json, Value};
use skybook_domain::SearchDate;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;

use crate::harness::TestApp;
use crate::visitor::Visitor;

/// Dates no search may ask for: past chrono's arithmetic (`+` in a query is a space, hence both spellings),
/// far ahead, far back, and not a day at all.
const OUT_OF_WINDOW: [&str; 5] = [
    "%2B262142-12-31",
    "+262142-12-31",
    "9999-12-31",
    "1900-01-01",
    "2026-02-30",
];

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The message naming the window, as of `today`.
fn window_message(today: NaiveDate) -> String {
    let (earliest, latest) = SearchDate::window(today);
    format!("must be a date from {earliest} to {latest}, as YYYY-MM-DD")
}

/// GETs `path`; also returns the window messages valid around the request (two, should it cross midnight).
async fn get_around(app: &TestApp, path: &str) -> (StatusCode, Value, [String; 2]) {
    let before = window_message(today());
    let (status, body) = app.get(path).await;
    (status, body, [before, window_message(today())])
}

async fn the_api_refuses_dates_outside_the_window_by_name(engine: Engine) {
    let app = TestApp::start(engine, "search_api_dates", 5).await;
    for date in OUT_OF_WINDOW {
        let path = format!("/api/v1/tenants/air/flights?origin=DUB&date={date}");
        let (status, body, messages) = get_around(&app, &path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{date}: {body}");
        assert!(
            messages
                .iter()
                .any(|m| body == json!({"error": "invalid", "fields": {"date": [m]}})),
            "{date}: only the date is named, with the window: {body}"
        );
    }
    // Named together with the other bad fields, as every 422 does.
    let (status, body) = app
        .get("/api/v1/tenants/air/flights?origin=D1&date=9999-12-31")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["fields"]["origin"].is_array() && body["fields"]["date"].is_array(),
        "{body}"
    );
}

async fn the_api_searches_any_day_in_the_window(engine: Engine) {
    let app = TestApp::start(engine, "search_api_window", 5).await;
    let departure = app.flight.departs_at.date_naive().to_string();
    let (status, body) = app
        .get(&format!(
            "/api/v1/tenants/air/flights?origin=DUB&destination=LHR&date={departure}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["flights"][0]["id"].as_str(),
        Some(app.flight.id.to_string().as_str())
    );
    let (earliest, latest) = SearchDate::window(today());
    for edge in [earliest, today(), latest] {
        let (status, body) = app
            .get(&format!("/api/v1/tenants/air/flights?date={edge}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{edge}: {body}");
        assert!(body["flights"].is_array(), "{edge}: {body}");
    }

    let (_, spec) = app.get("/api/openapi.json").await;
    let parameters = &spec["paths"]["/api/v1/tenants/{tenant}/flights"]["get"]["parameters"];
    let date = parameters
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "date")
        .unwrap();
    assert_eq!(date["schema"]["format"], "date", "{date}");
    assert!(
        date["description"].as_str().unwrap().contains("two years"),
        "{date}"
    );
}

async fn the_site_lists_a_bad_date_on_the_search_form(engine: Engine) {
    let app = TestApp::start(engine, "search_site_dates", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    for date in OUT_OF_WINDOW {
        let before = window_message(today());
        let page = visitor
            .get(&format!(
                "/?origin=DUB&destination=LHR&date={date}&passengers=1"
            ))
            .await;
        let messages = [before, window_message(today())];
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{date}: {}",
            page.html
        );
        assert!(
            page.html.contains("href=\"#f-date\""),
            "{date}: linked from the summary"
        );
        assert!(
            messages.iter().any(|m| page.html.contains(m.as_str())),
            "{date}: the window is named"
        );
        assert!(
            page.html.contains("Where are you flying?"),
            "{date}: the form again"
        );
    }
    // The bad search was not remembered: the next visit still offers tomorrow.
    let home = visitor.get("/").await;
    let tomorrow = today().checked_add_days(Days::new(1)).unwrap().to_string();
    assert_eq!(home.input("date"), Some(tomorrow));
}

/// The API's document declares each filter's format, so an empty one is invalid there, named like any other;
/// on the website's search form a blank field is a missing one ("is required"), not a malformed one.
async fn empty_filters_are_invalid_on_the_api_and_blank_on_the_site(engine: Engine) {
    let app = TestApp::start(engine, "search_empty", 5).await;
    let (status, body) = app
        .get("/api/v1/tenants/air/flights?origin=&destination=&date=")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for field in ["origin", "destination", "date"] {
        assert!(body["fields"][field].is_array(), "{field}: {body}");
    }
    let (status, body) = app.get("/api/v1/tenants/air/flights").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "no filter at all is a search: {body}"
    );
    let mut visitor = Visitor::new(app.router.clone());
    let page = visitor
        .get("/?origin=&destination=&date=&passengers=1")
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("From: is required"), "{}", page.html);
    assert!(
        !page.html.contains("3-letter"),
        "a blank field is missing, not malformed: {}",
        page.html
    );
}

backend_tests!(
    empty_filters_are_invalid_on_the_api_and_blank_on_the_site,
    the_api_refuses_dates_outside_the_window_by_name,
    the_api_searches_any_day_in_the_window,
    the_site_lists_a_bad_date_on_the_search_form,
);
