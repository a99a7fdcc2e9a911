//! Operations endpoints and cross-cutting behaviour.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::CARD_OK;

use crate::harness::{key, TestApp};

async fn health_ready_metrics_openapi(engine: Engine) {
    let app = TestApp::start(engine, "ops", 5).await;
    let (status, _, body) = app
        .request(Request::get("/health_check").body(Body::empty()).unwrap())
        .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let (status, _, _) = app
        .request(Request::get("/ready").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);

    app.book(&key("m", 0), &app.body("Ann", "Lee", CARD_OK))
        .await;
    let (status, _, metrics) = app
        .request(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("skybook_bookings_total"), "{metrics}");
    assert!(
        metrics.contains("route=\"/api/v1/tenants/{tenant}/bookings\""),
        "metrics label routes by template"
    );

    let (status, spec) = app.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/tenants/{tenant}/flights",
        "/api/v1/tenants/{tenant}/bookings",
        "/api/v1/tenants/{tenant}/bookings/{reference}",
    ] {
        assert!(spec["paths"][path].is_object(), "OpenAPI documents {path}");
    }
    assert!(spec["components"]["schemas"]["BookingJson"].is_object());

    app.store.close().await;
    let (status, _, _) = app
        .request(Request::get("/ready").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready without a database"
    );
}

async fn responses_carry_request_ids_and_500s_hide_their_cause(engine: Engine) {
    let app = TestApp::start(engine, "request_ids", 5).await;
    let (status, headers, _) = app
        .request(
            Request::get("/api/v1/tenants/air/flights")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("x-request-id").is_some());

    let (status, headers, body) = app
        .request(Request::post("/debug/panic").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "internal");
    assert_eq!(
        body["request_id"].as_str(),
        headers.get("x-request-id").and_then(|v| v.to_str().ok())
    );
    assert!(
        !body.to_string().contains("fault injection"),
        "the cause stays in the log"
    );
    let (status, _, _) = app
        .request(Request::get("/ready").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "still serving after a panic");
}

async fn flight_search_filters_and_validates(engine: Engine) {
    let app = TestApp::start(engine, "search", 5).await;
    let day = app.flight.departs_at.date_naive();
    let (status, body) = app
        .get(&format!(
            "/api/v1/tenants/air/flights?origin=dub&destination=LHR&date={day}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let flights = body["flights"].as_array().unwrap();
    assert_eq!(flights.len(), 1);
    assert_eq!(flights[0]["seats_left"], 5);
    assert_eq!(
        flights[0]["fare"],
        serde_json::json!({"amount_minor": 9599, "currency": "EUR"})
    );
    let (status, body) = app
        .get("/api/v1/tenants/air/flights?origin=D1&date=tomorrow")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["fields"]["origin"].is_array() && body["fields"]["date"].is_array(),
        "{body}"
    );
}

/// A node on a database whose migrations have not run is not ready, and becomes ready once they have.
async fn a_schema_behind_the_build_is_not_ready(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "ready_schema").await;
    let store = skybook_storage::Store::connect(&url, &Default::default())
        .await
        .unwrap();
    let sandbox = skybook_testkit::sandbox("ready_schema").await;
    let state = skybook_web::AppState::new(
        store.clone(),
        skybook_testkit::payments::payments_for(&sandbox),
        std::sync::Arc::new(skybook_testkit::secret_key()),
        Default::default(),
        Default::default(),
    );
    let router = skybook_web::router(state).unwrap();
    let ready = || async {
        let response = tower::ServiceExt::oneshot(
            router.clone(),
            Request::get("/ready").body(Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    assert_eq!(
        ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database schema out of date".to_owned()
        )
    );
    store.migrate().await.unwrap();
    assert_eq!(ready().await.0, StatusCode::OK);
}

backend_tests!(
    a_schema_behind_the_build_is_not_ready,
    health_ready_metrics_openapi,
    responses_carry_request_ids_and_500s_hide_their_cause,
    flight_search_filters_and_validates
);
