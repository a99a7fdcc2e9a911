//! skybook's HTTP layer — the only crate that knows HTTP and JSON shapes.
//!
//! [`router`] builds the whole site: the website ([`site`]), the JSON API (`/api/v1`), its OpenAPI document, and
//! the operations endpoints. Handlers parse input into domain types, call the booking service or the store, and render.

pub mod api;
pub mod error;
pub mod middleware;
pub mod openapi;
pub mod parse;
pub mod probes;
pub mod render;
pub mod site;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use skybook_booking::{BookingService, PipelineConfig};
use skybook_clients::PaymentProvider;
use skybook_domain::SecretKey;
use skybook_storage::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;
pub use render::{BookingAnswer, JsonRenderer};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bookings: BookingService,
    /// Keys the session cookie (the same secret keys the card HMAC; each use derives its own key).
    pub secret: Arc<SecretKey>,
    pub metrics: PrometheusHandle,
    pub options: WebOptions,
}

impl AppState {
    /// The one way to assemble the application: the booking pipeline renders with [`JsonRenderer`].
    pub fn new(
        store: Store,
        payments: Arc<dyn PaymentProvider>,
        secret: Arc<SecretKey>,
        pipeline: PipelineConfig,
        options: WebOptions,
    ) -> Self {
        let bookings = BookingService::new(
            store.clone(),
            payments,
            secret.clone(),
            Arc::new(JsonRenderer),
            pipeline,
        );
        Self {
            store,
            bookings,
            secret,
            metrics: probes::metrics_handle(),
            options,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Mounts `POST /debug/panic` (`SKYBOOK_ENABLE_FAULT_INJECTION=1`); otherwise that route is a 404.
    pub fault_injection: bool,
    /// Upper bound on one request. A booking cut off here is resumed like any interrupted one.
    pub request_timeout: Duration,
    /// The website: which tenant it sells for, sessions, admin sign-in.
    pub site: site::SiteOptions,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            fault_injection: false,
            request_timeout: Duration::from_secs(30),
            site: site::SiteOptions::default(),
        }
    }
}

/// The whole HTTP surface. Fails only if the session store cannot be set up on this database.
pub fn router(state: AppState) -> Result<Router, skybook_storage::StorageError> {
    skybook_crash::install_panic_hook();
    let request_id = HeaderName::from_static(middleware::REQUEST_ID_HEADER);
    let mut app = Router::new()
        .route(
            "/api/v1/tenants/{tenant}/flights",
            get(api::flights::search),
        )
        .route(
            "/api/v1/tenants/{tenant}/bookings",
            post(api::bookings::create),
        )
        .route(
            "/api/v1/tenants/{tenant}/bookings/{reference}",
            get(api::bookings::show),
        )
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/ready", get(probes::ready))
        .route("/metrics", get(probes::metrics))
        .merge(site::routes(&state)?)
        .fallback(site::not_found);
    if state.options.fault_injection {
        app = app.route("/debug/panic", post(middleware::debug_panic));
    }
    let app = app
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::crash_context,
        ))
        .route_layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::report_server_errors))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, state.options.request_timeout))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(middleware::REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state);
    // Outside the layers above: probes are not request-logged, timed out or counted.
    Ok(Router::new()
        .route("/health_check", get(probes::health_check))
        .merge(app))
}
