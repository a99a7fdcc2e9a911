//! Admin sign-in with the deployment's admin token, and what it opens: the operations page (alerts and crash
//! groups) and its JSON API under `/admin/api/`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use skybook_domain::FieldErrors;
use skybook_storage::NewAlert;

use super::forms::CsrfForm;
use super::session::{constant_time_eq, Visit};
use super::views::{summary, AdminLoginPage, AdminPage, AlertRow, CrashRow};
use super::{see_other, PageError};
use crate::throttle::Client;
use crate::{ApiError, AppState};

pub async fn login_form(visit: Visit) -> Result<Response, PageError> {
    if visit.is_admin().await? {
        return Ok(see_other("/admin"));
    }
    Ok(AdminLoginPage {
        csrf: visit.csrf_token().await?,
        errors: Vec::new(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

pub async fn login(
    State(state): State<AppState>,
    client: Client,
    CsrfForm(visit, form): CsrfForm<LoginForm>,
) -> Result<Response, PageError> {
    state.throttles.admin_sign_in.attempt(client)?;
    if is_admin_token(&state, &form.token) {
        visit.log_in_admin().await?;
        tracing::info!(client = %client.0, "admin signed in");
        return Ok(see_other("/admin"));
    }
    refused(&state, client).await;
    let mut errors = FieldErrors::new();
    errors.add("token", "is not the admin token");
    let page = AdminLoginPage {
        csrf: visit.csrf_token().await?,
        errors: summary(&errors),
    };
    Ok((StatusCode::UNAUTHORIZED, page).into_response())
}

/// Compared in constant time; no token configured means nobody is admin.
fn is_admin_token(state: &AppState, presented: &str) -> bool {
    state
        .options
        .site
        .admin_token
        .as_ref()
        .is_some_and(|t| constant_time_eq(t.expose_secret().as_bytes(), presented.as_bytes()))
}

pub async fn logout(
    CsrfForm(visit, _): CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PageError> {
    visit.log_out_admin().await?;
    Ok(see_other("/"))
}

/// A refused admin token: logged, and past the failure rate an alert for the operators (once per client).
async fn refused(state: &AppState, client: Client) {
    tracing::warn!(client = %client.0, "admin sign-in refused");
    if state.throttles.admin_failures.attempt(client).is_err() {
        let alert = NewAlert {
            tenant_id: None,
            kind: "admin_sign_in_failures",
            subject: client.0.to_string(),
            message: format!("repeated wrong admin tokens from {}", client.0),
            details: json!({ "client": client.0.to_string() }),
        };
        if let Err(e) = state.store.raise_alert(&alert, chrono::Utc::now()).await {
            tracing::error!(error = %skybook_domain::ErrorChain(&e), "could not raise the sign-in alert");
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, as RFC 7235 has it).
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The admin token is accepted as a signed-in session or, for scripts, as `Authorization: Bearer <token>`
/// (each bearer presentation counts against the client's sign-in throttle).
pub(super) async fn is_admin(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    visit: &Visit,
) -> Result<bool, ApiError> {
    if let Some(token) = bearer_token(headers) {
        state.throttles.admin_sign_in.attempt(client)?;
        if is_admin_token(state, token) {
            return Ok(true);
        }
        refused(state, client).await;
    }
    visit.is_admin().await
}

/// The admin API's gate: a 401 (JSON) rather than the pages' redirect to the sign-in form.
pub(super) async fn require_admin(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    visit: &Visit,
) -> Result<(), ApiError> {
    match is_admin(state, headers, client, visit).await? {
        true => Ok(()),
        false => Err(ApiError::Unauthorized),
    }
}

/// The gate of an admin API that changes something: the admin token as a bearer header, or the signed-in
/// session with its CSRF token in `X-CSRF-Token` (a form elsewhere must not be able to act in the admin's name).
pub(super) async fn require_admin_to_act(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    visit: &Visit,
) -> Result<(), ApiError> {
    require_admin(state, headers, client, visit).await?;
    if bearer_token(headers).is_some() {
        return Ok(());
    }
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match !presented.is_empty() && visit.csrf_matches(presented).await? {
        true => Ok(()),
        false => Err(ApiError::Forbidden("csrf_token")),
    }
}

/// Who is acting, for the audit log: how the admin signed in, and from where.
pub(super) fn actor(headers: &HeaderMap, client: Client) -> String {
    let how = match bearer_token(headers) {
        Some(_) => "token",
        None => "session",
    };
    format!("admin ({how}) from {}", client.0)
}

/// Writes an operator's action to the audit log, after it happened. Should the write fail, the action stands
/// and the failure is logged as an error (an alert's worth: the log is missing an entry).
pub(super) async fn audit(
    state: &AppState,
    actor: String,
    action: &str,
    target: String,
    affected: u64,
) {
    let entry = skybook_storage::AuditEntry {
        at: chrono::Utc::now(),
        actor,
        action: action.to_owned(),
        target,
        affected: i64::try_from(affected).unwrap_or(i64::MAX),
    };
    if let Err(e) = state.store.record_audit(&entry).await {
        tracing::error!(error = %skybook_domain::ErrorChain(&e), action, "audit log entry not written");
    }
}

/// How many audit log entries the admin shows.
const AUDITED: i64 = 200;

/// How many alerts and crash groups the admin shows.
const LISTED: i64 = 50;

/// The operations page: the alerts (the sentinel's findings, new crashes) and the crash groups.
pub async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Response, PageError> {
    if !is_admin(&state, &headers, client, &visit).await? {
        return Ok(see_other("/admin/login"));
    }
    let alerts = state
        .store
        .recent_alerts(LISTED)
        .await
        .map_err(ApiError::from)?;
    let crashes = state
        .store
        .crash_groups(LISTED)
        .await
        .map_err(ApiError::from)?;
    let audit = state
        .store
        .audit_log(LISTED)
        .await
        .map_err(ApiError::from)?;
    Ok(AdminPage {
        audit: audit
            .into_iter()
            .map(|e| super::views::AuditRow {
                at: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                actor: e.actor,
                action: e.action,
                target: e.target,
                affected: e.affected,
            })
            .collect(),
        csrf: visit.csrf_token().await?,
        alerts: alerts.iter().map(AlertRow::from).collect(),
        crashes: crashes.iter().map(CrashRow::from).collect(),
    }
    .into_response())
}

/// `GET /admin/api/crashes`: crash groups, most recently seen first, each with its latest report.
pub async fn crashes_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers, client, &visit).await?;
    let mut crashes = Vec::new();
    for group in state.store.crash_groups(LISTED).await? {
        let latest = state
            .store
            .crash_reports(&group.fingerprint, 1)
            .await?
            .into_iter()
            .next();
        crashes.push(json!({
            "fingerprint": group.fingerprint,
            "message": group.message,
            "location": group.location,
            "count": group.count,
            "first_seen": group.first_seen,
            "last_seen": group.last_seen,
            "last_request_id": group.last_request_id,
            "latest": latest.map(|r| json!({
                "request_id": r.request_id,
                "method": r.method,
                "route": r.route,
                "tenant": r.tenant,
                "task": r.task,
                "release": r.release,
                "occurred_at": r.occurred_at,
                "backtrace": r.backtrace,
            })),
        }));
    }
    Ok(Json(json!({ "crashes": crashes })))
}

/// `GET /admin/api/alerts`: the newest alerts first.
pub async fn alerts_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers, client, &visit).await?;
    let alerts: Vec<Value> = state
        .store
        .recent_alerts(LISTED)
        .await?
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "kind": a.kind,
                "subject": a.subject,
                "tenant_id": a.tenant_id,
                "message": a.message,
                "details": serde_json::from_str::<Value>(&a.details).unwrap_or(Value::Null),
                "created_at": a.created_at,
                "delivered_at": a.delivered_at,
                "delivery_attempts": a.delivery_attempts,
                "last_error": a.last_error,
            })
        })
        .collect();
    Ok(Json(json!({ "alerts": alerts })))
}

/// `GET /admin/api/audit`: the latest operator actions, newest first.
pub async fn audit_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers, client, &visit).await?;
    let entries: Vec<Value> = state
        .store
        .audit_log(AUDITED)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "affected": e.affected,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}
