//! Cron for operators: every schedule the nodes declared, with its pattern, last and next tick, and the outcome
//! of the job its last tick enqueued; pause, resume, and run now (once across nodes, like a tick). As JSON —
//! `GET /admin/api/cron`, `POST /admin/api/cron/{name}/{pause|resume|run}` (a session needs `X-CSRF-Token`) —
//! and as the page `/admin/cron`, whose form posts to `/admin/cron`. The schedules are the platform's: the
//! platform admin's alone.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};
use skybook_domain::FieldErrors;
use skybook_storage::{CronSchedule, Enqueued};

use super::admin_params as params;
use super::forms::CsrfForm;
use super::operator::{
    audit, operator, require_operator, require_operator_for_form, require_operator_to_act, Operator,
};
use super::session::Visit;
use super::{see_other, PageError};
use crate::openapi::AdminErrors;
use crate::render::ErrorJson;
use crate::throttle::Client;
use crate::{ApiError, AppState};

/// What an action did, in the words of its JSON (`changed`: the schedule changed state; `enqueued`,
/// `unfinished`: a run now enqueued its job, or found the last run unfinished; `taken`: this second's tick was
/// fired already).
async fn act(
    state: &AppState,
    operator: &Operator,
    name: &str,
    action: &str,
) -> Result<&'static str, ApiError> {
    let now = Utc::now();
    let outcome = match action {
        "pause" | "resume" => {
            match state
                .store
                .set_cron_paused(name, action == "pause", now)
                .await?
            {
                true => "changed",
                false => "unchanged",
            }
        }
        "run" => match state.store.run_cron_now(name, now).await? {
            Some(Enqueued::New(_)) => "enqueued",
            Some(Enqueued::Duplicate) => "unfinished",
            None => "taken",
        },
        _ => return Err(ApiError::NotFound("cron action")),
    };
    tracing::info!(
        schedule = name,
        action,
        outcome,
        "operator acted on a schedule"
    );
    let affected = u64::from(matches!(outcome, "changed" | "enqueued"));
    audit(
        state,
        operator,
        None,
        &format!("cron.{action}"),
        format!("schedule {name} ({outcome})"),
        affected,
    )
    .await;
    Ok(outcome)
}

async fn schedule(state: &AppState, name: &str) -> Result<CronSchedule, ApiError> {
    state
        .store
        .cron_schedules()
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or(ApiError::NotFound("schedule"))
}

fn schedule_json(s: &CronSchedule) -> Value {
    json!({
        "name": s.name,
        "pattern": s.pattern,
        "kind": s.kind,
        "exclusive": s.exclusive,
        "paused": s.paused_at.is_some(),
        "paused_at": s.paused_at,
        "last_tick": s.last_tick,
        "next_tick": s.next_at,
        "last_job": s.last_job_id.map(|id| json!({
            "id": id,
            "state": s.last_job_state,
            "error": s.last_job_error,
        })),
    })
}

#[utoipa::path(
    get,
    path = "/admin/api/cron",
    operation_id = "admin_cron",
    description = "Every schedule with its last and next tick and its last run (the platform admin\'s).",
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 403, description = "`forbidden`: the platform admin's alone, a read-only token, or a session without its CSRF token", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn cron_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Json<Value>, ApiError> {
    require_operator(&state, &headers, client, &visit)
        .await?
        .require_platform()?;
    let schedules: Vec<Value> = state
        .store
        .cron_schedules()
        .await?
        .iter()
        .map(schedule_json)
        .collect();
    Ok(Json(json!({ "schedules": schedules })))
}

#[utoipa::path(
    post,
    path = "/admin/api/cron/{name}/{action}",
    operation_id = "admin_cron_act",
    description = "Pause, resume or run a schedule now, once across nodes (the platform admin\'s).",
    params(("name" = String, Path, description = "Schedule name"), ("action" = String, Path, description = "pause, resume or run")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 403, description = "`forbidden`: the platform admin's alone, a read-only token, or a session without its CSRF token", body = ErrorJson),
        (status = 404, description = "`not_found`: no such schedule or action, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn cron_action_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator_to_act(&state, &headers, client, &visit).await?;
    operator.require_platform()?;
    schedule(&state, &name).await?;
    let outcome = act(&state, &operator, &name, &action).await?;
    let now = schedule(&state, &name).await?;
    Ok(Json(
        json!({ "action": action, "outcome": outcome, "schedule": schedule_json(&now) }),
    ))
}

pub struct ScheduleRow {
    pub name: String,
    pub kind: String,
    pub pattern: String,
    pub paused: bool,
    pub last_tick: String,
    pub next_tick: String,
    pub last_job: Option<String>,
    pub last_outcome: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_cron.html")]
pub struct CronPage {
    pub csrf: String,
    pub nav: super::views::AdminNav,
    pub message: Option<String>,
    pub schedules: Vec<ScheduleRow>,
}

pub async fn cron_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    params::Params(query): params::Params,
) -> Result<Response, PageError> {
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    operator.require_platform()?;
    let schedules = state
        .store
        .cron_schedules()
        .await?
        .into_iter()
        .map(|s| ScheduleRow {
            last_outcome: match (&s.last_job_state, &s.last_job_error) {
                (Some(state), Some(error)) if state != "done" => format!("{state}: {error}"),
                (Some(state), _) => state.clone(),
                (None, _) if s.last_job_id.is_some() => "done (pruned)".into(),
                (None, _) => "—".into(),
            },
            name: s.name,
            kind: s.kind,
            pattern: s.pattern,
            paused: s.paused_at.is_some(),
            last_tick: s.last_tick.map(params::time).unwrap_or_else(|| "—".into()),
            next_tick: s.next_at.map(params::time).unwrap_or_else(|| "—".into()),
            last_job: s.last_job_id.map(|id| id.to_string()),
        })
        .collect();
    let message = match (query.get("done").map(String::as_str), query.get("name")) {
        (Some("enqueued"), Some(name)) => Some(format!("{name}: its job is queued.")),
        (Some("unfinished"), Some(name)) => Some(format!(
            "{name}: its last run has not finished; nothing queued."
        )),
        (Some("taken"), Some(name)) => {
            Some(format!("{name}: this second's tick was fired already."))
        }
        (Some("changed"), Some(name)) => Some(format!("{name}: done.")),
        (Some("unchanged"), Some(name)) => Some(format!("{name}: it was so already.")),
        _ => None,
    };
    Ok(CronPage {
        csrf: visit.csrf_token().await?,
        nav: super::views::AdminNav::of(&operator),
        message,
        schedules,
    }
    .into_response())
}

/// `POST /admin/cron`: `name` and `action` (pause, resume, run).
pub async fn cron_form(
    State(state): State<AppState>,
    client: Client,
    CsrfForm(visit, pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let operator = require_operator_for_form(&state, client, &visit).await?;
    operator.require_platform()?;
    let get = |name: &str| params::form_value(&pairs, name).unwrap_or_default();
    let (name, action) = (get("name"), get("action"));
    let mut errors = FieldErrors::new();
    if !["pause", "resume", "run"].contains(&action.as_str()) {
        errors.add("action", "must be pause, resume or run");
    }
    errors.into_result().map_err(ApiError::Invalid)?;
    schedule(&state, &name).await?;
    let outcome = act(&state, &operator, &name, &action).await?;
    let back = serde_urlencoded::to_string([("done", outcome), ("name", name.as_str())])
        .unwrap_or_default();
    Ok(see_other(&format!("/admin/cron?{back}")))
}
