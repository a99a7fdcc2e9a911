//! The booking website: server-rendered pages over the same pipeline and store as the JSON API.
//!
//! Every page works without JavaScript; the one script (`draft.js`) only saves the booking form's non-card
//! fields into the session as the traveller types. State lives in the database-backed session
//! ([`session::Visit`]), never in process memory, so any node can serve the next request.
//!
//! Double billing is impossible from the browser because the booking form carries an idempotency key minted by
//! the server for this session: a double click, a refreshed POST or back-and-resubmit send the same key, and
//! the pipeline answers all of them with the one booking. A fresh browser with the same traveller, flight and
//! card meets the pipeline's duplicate guard and is told the booking exists and nothing was charged.

/// Where the admin uploads partner files: its body streams to disk (see `hardening::bounded_body`).
pub const UPLOAD_PATH: &str = "/admin/api/imports";

pub(crate) mod admin;
pub(crate) mod admin_bookings;
mod admin_chart;
pub(crate) mod admin_cron;
pub(crate) mod admin_data;
mod admin_events;
pub(crate) mod admin_imports;
mod admin_imports_pages;
pub(crate) mod admin_jobs;
mod admin_jobs_pages;
mod admin_params;
pub(crate) mod admin_upload;
mod book;
mod bookings;
mod forms;
mod operator;
mod search;
pub mod session;
pub mod views;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use skybook_booking::BookingError;
use skybook_domain::TenantSlug;
use skybook_storage::{StorageError, Tenant};

pub use forms::CsrfForm;
pub(crate) use session::constant_time_eq;
pub use session::SessionOptions;

use crate::error::ApiError;
use crate::routes::Routes;
use crate::AppState;
use views::MessagePage;

/// What the website serves and how it keeps sessions.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// The tenant whose flights the site sells (`SKYBOOK_SITE_TENANT`, default `demo`).
    pub tenant: TenantSlug,
    pub sessions: SessionOptions,
    /// `SKYBOOK_ADMIN_TOKEN`; without it the admin sign-in refuses everyone.
    pub admin_token: Option<SecretString>,
}

impl Default for SiteOptions {
    fn default() -> Self {
        Self {
            tenant: TenantSlug::parse("demo").expect("a valid slug"),
            sessions: SessionOptions::default(),
            admin_token: None,
        }
    }
}

/// The site's routes, with the session layer they need (the JSON API has no sessions).
pub(crate) fn routes(state: &AppState) -> Result<Routes, StorageError> {
    let options = &state.options.site;
    let sessions = session::layer(
        state.store.session_store()?,
        &state.secret,
        &options.sessions,
    );
    Ok(Routes::default()
        .route("/", get(search::home))
        .route("/book/{flight}", get(book::form).post(book::submit))
        .route("/book/{flight}/draft", post(book::save_draft))
        .route("/book/status/{key}", get(book::status))
        .route("/bookings/{reference}", get(bookings::show))
        .route("/find", get(bookings::find_form).post(bookings::find))
        .route("/admin/login", get(admin::login_form).post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin", get(admin::dashboard))
        .route("/admin/events", get(admin_events::events))
        .route(
            "/admin/cron",
            get(admin_cron::cron_page).post(admin_cron::cron_form),
        )
        .route("/admin/api/cron", get(admin_cron::cron_api))
        .route(
            "/admin/api/cron/{name}/{action}",
            post(admin_cron::cron_action_api),
        )
        .route("/admin/imports", get(admin_imports_pages::imports_page))
        .route(
            "/admin/imports/{run}",
            get(admin_imports_pages::import_page),
        )
        .route(
            "/admin/imports/{run}/rejects.csv",
            get(admin_imports_pages::rejects_csv),
        )
        .route(
            "/admin/imports/{run}/rerun",
            post(admin_imports_pages::rerun),
        )
        .route("/admin/data", get(admin_data::data_index))
        .route("/admin/data/{table}", get(admin_data::data_page))
        .route(
            "/admin/data/{table}/export.csv",
            get(admin_data::export_csv),
        )
        .route("/admin/api/data/{table}", get(admin_data::data_api))
        .route(
            "/admin/bookings/{tenant}/{reference}",
            get(admin_bookings::booking_page),
        )
        .route(
            "/admin/api/bookings/{tenant}/{reference}",
            get(admin_bookings::booking_api),
        )
        .route("/admin/jobs", get(admin_jobs_pages::jobs_page))
        .route("/admin/jobs/act", post(admin_jobs_pages::act))
        .route("/admin/jobs/{job}", get(admin_jobs_pages::job_page))
        .route("/admin/queues", post(admin_jobs_pages::queue_act))
        .route("/admin/api/crashes", get(admin::crashes_api))
        .route("/admin/api/alerts", get(admin::alerts_api))
        .route("/admin/api/audit", get(admin::audit_api))
        .route(
            UPLOAD_PATH,
            get(admin_imports::imports_api)
                .post(admin_upload::upload)
                // The upload's own limit (`Limits::max_input_bytes`) applies as the file streams in.
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/admin/api/imports/{run}",
            get(admin_imports::import_run_api),
        )
        .route(
            "/admin/api/imports/{run}/rejects",
            get(admin_imports::import_rejects_api),
        )
        .route("/admin/api/jobs", get(admin_jobs::jobs_api))
        // `GET` a job by id; `POST` an action (`retry`, `cancel`, `delete`) — one path, so one parameter name.
        .route(
            "/admin/api/jobs/{job}",
            get(admin_jobs::job_api).post(admin_jobs::job_action_api),
        )
        .route(
            "/admin/api/queues/{queue}/{action}",
            post(admin_jobs::queue_action_api),
        )
        .layer(axum::middleware::from_fn_with_state(
            (
                options.sessions.clone(),
                session::CsrfSigner::new(state.secret.clone(), options.sessions.secure_cookies),
            ),
            session::lifetimes,
        ))
        .layer(sessions)
        .route("/static/site.css", get(stylesheet))
        .route("/static/draft.js", get(script))
        .route("/static/admin-live.js", get(admin_live_script)))
}

async fn stylesheet() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/site.css"),
    )
}

async fn script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/draft.js"),
    )
}

async fn admin_live_script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/admin-live.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

/// The tenant the site sells for.
pub(crate) async fn site_tenant(state: &AppState) -> Result<Tenant, PageError> {
    state
        .store
        .tenant_by_slug(&state.options.site.tenant)
        .await?
        .ok_or(PageError(ApiError::NotFound("site")))
}

/// See-other: after a POST, the browser GETs the result, so a refresh never re-submits.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The one HTTP error type ([`ApiError`]) rendered as a page in the site's look instead of as JSON.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl PageError {
    pub fn booking(e: BookingError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        let page = match &error {
            ApiError::NotFound(_) => MessagePage::new(
                "Page not found",
                "We could not find what you were looking for. It may have moved, or the link may be mistyped.",
                "info",
            ),
            ApiError::Forbidden(_) => MessagePage::new(
                "This form has expired",
                "For your security we could not accept that form: it was not issued to this browser session, or the session has ended. Nothing was booked or charged. Please start again.",
                "warn",
            ),
            ApiError::Unauthorized => MessagePage::new(
                "Sign-in needed",
                "You need to sign in to see this page.",
                "warn",
            )
            .link("/admin/login", "Sign in"),
            // Only a payment provider that could not be reached guarantees nothing was charged (the pipeline
            // gave the booking up before anything reached it); a database blip may come after the charge.
            ApiError::Unavailable { what: "payment provider", .. } => MessagePage::new(
                "We could not reach the payment service",
                "We could not reach the payment service for a moment. Nothing was charged. Please try again shortly.",
                "warn",
            ),
            ApiError::Unavailable { .. } => MessagePage::new(
                "We are having a short break",
                "Part of our service is unavailable for a moment. If you were paying, your payment is being completed or undone, and you are never charged twice: send the same form again shortly, or find your booking later with its reference.",
                "warn",
            ),
            ApiError::TooManyRequests { .. } => MessagePage::new(
                "Too many attempts",
                "There have been too many attempts from your connection. Please wait a minute and try again.",
                "warn",
            ),
            ApiError::Invalid(_)
            | ApiError::IdempotencyKeyRequired
            | ApiError::IdempotencyKeyTwice
            | ApiError::UnsupportedMediaType
            | ApiError::IdempotencyKeyReused
            | ApiError::RequestInProgress => MessagePage::new(
                "We could not accept that request",
                "Something in the request was not right. Nothing was booked or charged.",
                "warn",
            ),
            // The reporting middleware renders the 500 page with the request id.
            ApiError::Internal(_) => return error.into_response(),
        };
        let mut response = (error.status(), page).into_response();
        error.mark_server_error(&mut response);
        response
    }
}

/// Whether a request wants a page rather than JSON (a browser navigation).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The 500 page: no cause, only the request id to quote.
pub(crate) fn server_error_page(request_id: &str) -> Response {
    let mut page = MessagePage::new(
        "Something went wrong on our side",
        "We have logged the problem. If you were paying, you were not charged twice: reload this page or find your booking to see where it stands.",
        "bad",
    )
    .link("/find", "Find my booking");
    page.request_id = Some(request_id.to_owned());
    (StatusCode::INTERNAL_SERVER_ERROR, page).into_response()
}

/// Unknown paths: a page for browsers, JSON for everyone else.
pub async fn not_found(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        PageError(ApiError::NotFound("page")).into_response()
    } else {
        ApiError::NotFound("route").into_response()
    }
}
