//! skybook's HTTP layer — the only crate that knows HTTP and JSON shapes.
//!
//! [`router`] builds the whole site: the website ([`site`]), the JSON API (`/api/v1`), its OpenAPI document, and
//! the operations endpoints. Handlers parse input into domain types, call the booking service or the store, and render.

pub mod api;
pub mod error;
pub mod hardening;
pub mod middleware;
pub mod openapi;
pub mod parse;
pub mod probes;
pub mod render;
mod routes;
pub mod site;
pub mod throttle;

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
    pub throttles: throttle::Throttles,
    /// Set once `/ready` has seen the schema current (it then stops asking).
    pub schema_current: Arc<std::sync::atomic::AtomicBool>,
    /// Set when the process starts shutting down: `/ready` answers 503 so the load balancer stops sending new
    /// requests, while those already here finish.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
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
            throttles: throttle::Throttles::new(&options.throttle),
            schema_current: Arc::default(),
            draining: Arc::default(),
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
    /// Per-client limits on admin sign-in and booking lookups.
    pub throttle: throttle::ThrottleOptions,
    /// Who may read `/metrics` here.
    pub metrics: probes::MetricsAccess,
    /// The feed types files can be uploaded for (`POST /admin/api/imports`); none unless the importer is set up.
    pub feeds: Arc<Vec<skybook_import::FeedType>>,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            fault_injection: false,
            request_timeout: Duration::from_secs(30),
            site: site::SiteOptions::default(),
            throttle: throttle::ThrottleOptions::default(),
            metrics: probes::MetricsAccess::Open,
            feeds: Arc::default(),
        }
    }
}

/// The whole HTTP surface. Fails only if the session store cannot be set up on this database.
pub fn router(state: AppState) -> Result<Router, skybook_storage::StorageError> {
    Ok(router_with_paths(state)?.0)
}

/// [`router`], and the path template of every route on it (for tests that check each one).
pub fn router_with_paths(
    state: AppState,
) -> Result<(Router, Vec<&'static str>), skybook_storage::StorageError> {
    skybook_crash::install_panic_hook();
    state.throttles.spawn_housekeeping();
    let request_id = HeaderName::from_static(middleware::REQUEST_ID_HEADER);
    let mut routes = routes::Routes::default()
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
        .merge(site::routes(&state)?);
    if state.options.fault_injection {
        routes = routes.route("/debug/panic", post(middleware::debug_panic));
    }
    let mut probes = routes::Routes::default()
        .route("/health_check", get(probes::health_check))
        .route("/ready", get(probes::ready))
        .route("/metrics", get(probes::metrics));
    probes.router = probes
        .router
        .method_not_allowed_fallback(hardening::method_not_allowed);
    let paths: Vec<&'static str> = probes.paths.iter().chain(&routes.paths).copied().collect();
    let app = routes
        .router
        .fallback(site::not_found)
        .method_not_allowed_fallback(hardening::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::crash_context,
        ))
        .route_layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(axum::middleware::from_fn(hardening::bounded_body))
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
        );
    // Probes answer outside the request log (a probe every few seconds would be most of it), the timeout
    // and the request metrics; they still get a request id and the security headers.
    let hsts = state.options.site.sessions.secure_cookies;
    let router = probes
        .router
        .merge(app)
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(hardening::trusted_request_id))
        .layer(axum::middleware::from_fn_with_state(
            hsts,
            hardening::security_headers,
        ));
    Ok((router, paths))
}
