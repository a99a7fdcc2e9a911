//! Admin sign-in with the deployment's admin token or a tenant operator's token (see [`super::operator`] for
//! who sees what), and what it opens: the operations page (alerts, crash groups, the audit log) and its JSON
//! API under `/admin/api/`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use skybook_domain::FieldErrors;

use super::forms::CsrfForm;
use super::operator::{by_token, operator, refused, require_operator};
use super::session::Visit;
use super::views::{summary, AdminLoginPage, AdminPage, AlertRow, CrashRow};
use super::{see_other, PageError};
use crate::openapi::AdminErrors;
use crate::render::ErrorJson;
use crate::throttle::Client;
use crate::{ApiError, AppState};

pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Response, PageError> {
    if operator(&state, &headers, client, &visit).await?.is_some() {
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
    if let Some(operator) = by_token(&state, &form.token, client, false).await? {
        match operator.token_id() {
            None => visit.log_in_admin().await?,
            Some(token) => visit.log_in_operator(token).await?,
        }
        tracing::info!(client = %client.0, actor = %operator.actor(), "admin signed in");
        return Ok(see_other("/admin"));
    }
    refused(&state, client).await;
    let mut errors = FieldErrors::new();
    errors.add("token", "is not an admin or operator token");
    let page = AdminLoginPage {
        csrf: visit.csrf_token().await?,
        errors: summary(&errors),
    };
    Ok((StatusCode::UNAUTHORIZED, page).into_response())
}

pub async fn logout(
    CsrfForm(visit, _): CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PageError> {
    visit.log_out_admin().await?;
    Ok(see_other("/"))
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
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    let alerts = state
        .store
        .recent_alerts(operator.tenant(), LISTED)
        .await
        .map_err(ApiError::from)?;
    // Crash reports are the platform's: a request of any tenant may have crashed.
    let crashes = match operator.is_platform() {
        true => state
            .store
            .crash_groups(LISTED)
            .await
            .map_err(ApiError::from)?,
        false => Vec::new(),
    };
    let audit = state
        .store
        .audit_log(operator.tenant(), LISTED)
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
        nav: super::views::AdminNav::of(&operator),
        alerts: alerts.iter().map(AlertRow::from).collect(),
        crashes: crashes.iter().map(CrashRow::from).collect(),
    }
    .into_response())
}

/// `GET /admin/api/crashes`: crash groups, most recently seen first, each with its latest report.
#[utoipa::path(
    get,
    path = "/admin/api/crashes",
    operation_id = "admin_crashes",
    description = "Crash groups with their latest report (the platform admin\'s).",
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 403, description = "`forbidden`: the platform admin's alone, a read-only token, or a session without its CSRF token", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn crashes_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Json<Value>, ApiError> {
    require_operator(&state, &headers, client, &visit)
        .await?
        .require_platform()?;
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
#[utoipa::path(
    get,
    path = "/admin/api/alerts",
    operation_id = "admin_alerts",
    description = "The newest alerts (a tenant operator: its tenant\'s).",
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn alerts_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let alerts: Vec<Value> = state
        .store
        .recent_alerts(operator.tenant(), LISTED)
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
#[utoipa::path(
    get,
    path = "/admin/api/audit",
    operation_id = "admin_audit",
    description = "The latest operator actions (a tenant operator: its tenant\'s).",
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn audit_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let entries: Vec<Value> = state
        .store
        .audit_log(operator.tenant(), AUDITED)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "affected": e.affected,
                "tenant_id": e.tenant_id,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}
