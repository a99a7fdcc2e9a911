//! The job queue for operators, as JSON: `GET /admin/api/jobs` (counts per queue and state, paused queues, and
//! one keyset page of jobs filtered by `state`, `queue`, `kind`, `tenant` slug and `q` — text in the payload or
//! the last error), `GET /admin/api/jobs/{id}` (a job with every failed attempt), `POST
//! /admin/api/jobs/{retry|cancel|delete}` on `{"ids": [...]}` or on every job matching `{"filter": {...}}`, and
//! `POST /admin/api/queues/{queue}/{pause|resume}`.
//!
//! Behind an operator's token: a tenant operator sees and acts on its tenant's jobs only (another tenant's job is
//! a `404`); queues are the platform admin's. Signed in with the session rather than a bearer token, a `POST` must carry the
//! session's CSRF token in `X-CSRF-Token`. Every bad parameter is named in a `422`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use skybook_domain::{FieldErrors, JobId, TenantId, TenantSlug};
use skybook_storage::{Job, JobFilter, JobPage, JobSelection};

use super::admin_params as params;
use super::operator::{audit, require_operator, require_operator_to_act, Operator};
use super::session::Visit;
use crate::openapi::AdminErrors;
use crate::render::ErrorJson;
use crate::throttle::Client;
use crate::{ApiError, AppState};

const DEFAULT_JOBS: i64 = 50;
const MAX_JOBS: i64 = 500;
/// Most ids one action may name.
pub(super) const MAX_IDS: usize = 1000;
const STATES: [&str; 4] = ["queued", "running", "done", "failed"];

#[utoipa::path(
    get,
    path = "/admin/api/jobs",
    operation_id = "admin_jobs",
    description = "Counts per queue and state, paused queues, and one keyset page of jobs.",
    params(("state" = Option<String>, Query, description = "queued, running, done or failed", pattern = "^(queued|running|done|failed)?$"), ("queue" = Option<String>, Query, description = "Queue name", max_length = 200, pattern = r"^[^\x00]*$"), ("kind" = Option<String>, Query, description = "Job kind", max_length = 200, pattern = r"^[^\x00]*$"), ("tenant" = Option<String>, Query, description = "Tenant slug", pattern = r"^([a-z0-9][a-z0-9-]{0,38}[a-z0-9])?$"), ("q" = Option<String>, Query, description = "Text in the payload or the last error", max_length = 200, pattern = r"^[^\x00]*$"), ("limit" = Option<u32>, Query, description = "1 to 500", minimum = 1, maximum = 500), ("after" = Option<String>, Query, description = "The cursor the previous page gave", pattern = r"^[^\x00]*$")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn jobs_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    params::Params(query): params::Params,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let mut errors = FieldErrors::new();
    let filter = filter(&state, &operator, &mut errors, |name| {
        query.get(name).cloned()
    })
    .await?;
    let limit = params::limit(query.get("limit"), &mut errors, DEFAULT_JOBS, MAX_JOBS);
    let after = after_param(query.get("after"), &mut errors);
    errors.into_result().map_err(ApiError::Invalid)?;
    let page = JobPage { after, limit };
    // The page and the counts at once: the counts read every job, the page a few.
    let (jobs, counts) = futures::try_join!(
        state.store.list_jobs(&filter, &page),
        state.store.job_state_counts(filter.tenant_id)
    )?;
    let next = next_cursor(&jobs, limit);
    let slugs = params::tenant_slugs(&state).await?;
    let counts: Vec<Value> = counts
        .into_iter()
        .map(|c| json!({ "queue": c.queue, "state": c.state, "count": c.count, "estimated": c.estimated }))
        .collect();
    let paused: Vec<Value> = state
        .store
        .paused_queues()
        .await?
        .into_iter()
        .map(|(queue, at)| json!({ "queue": queue, "paused_at": at }))
        .collect();
    Ok(Json(json!({
        "counts": counts,
        "paused": paused,
        "jobs": jobs.iter().map(|j| job_json(j, &slugs)).collect::<Vec<_>>(),
        "next": next,
    })))
}

#[utoipa::path(
    get,
    path = "/admin/api/jobs/{job}",
    operation_id = "admin_job",
    description = "A job with every failed attempt.",
    params(("job" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 404, description = "`not_found`: no such job, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn job_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let job = find_job(&state, &operator, &id).await?;
    let id = job.id;
    let errors: Vec<Value> = state
        .store
        .job_errors(id)
        .await?
        .into_iter()
        .map(|e| json!({ "attempt": e.attempt, "worker": e.worker, "error": e.error, "at": e.at }))
        .collect();
    let mut body = job_json(&job, &params::tenant_slugs(&state).await?);
    body["errors"] = Value::Array(errors);
    Ok(Json(json!({ "job": body })))
}

/// `POST /admin/api/jobs/{action}`: `retry` (run now), `cancel`, `delete`.
#[utoipa::path(
    post,
    path = "/admin/api/jobs/{job}",
    operation_id = "admin_jobs_act",
    description = "Retry, cancel or delete the jobs named by `ids`, or every job matching `filter`; the path names the action (retry, cancel, delete).",
    params(("job" = String, Path, description = "The action: retry, cancel or delete")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 403, description = "`forbidden`: the platform admin's alone, a read-only token, or a session without its CSRF token", body = ErrorJson),
        (status = 404, description = "`not_found`: no such action, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn job_action_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator_to_act(&state, &headers, client, &visit).await?;
    if !["retry", "cancel", "delete"].contains(&action.as_str()) {
        return Err(ApiError::NotFound("job action"));
    }
    let mut errors = FieldErrors::new();
    let body: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            errors.add("body", "must be a JSON object with ids or filter");
            return Err(ApiError::Invalid(errors));
        }
    };
    let selection = match (body.get("ids"), body.get("filter")) {
        (Some(ids), None) => match ids.as_array() {
            Some(ids) if ids.len() <= MAX_IDS => {
                let parsed: Option<Vec<JobId>> = ids
                    .iter()
                    .map(|id| id.as_str().and_then(|s| s.parse().ok()))
                    .collect();
                match parsed {
                    Some(ids) => Some(JobSelection::Ids {
                        ids,
                        tenant_id: operator.tenant(),
                    }),
                    None => {
                        errors.add("ids", "must be job ids");
                        None
                    }
                }
            }
            _ => {
                errors.add(
                    "ids",
                    format!("must be a list of at most {MAX_IDS} job ids"),
                );
                None
            }
        },
        (None, Some(Value::Object(filter_body))) => {
            let get = |name: &str| {
                filter_body
                    .get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            for (name, value) in filter_body {
                if !["state", "queue", "kind", "tenant", "q"].contains(&name.as_str())
                    || !value.is_string()
                {
                    errors.add(format!("filter.{name}"), "unknown, or not a string");
                }
            }
            Some(JobSelection::Matching(
                filter(&state, &operator, &mut errors, get).await?,
            ))
        }
        _ => {
            errors.add("body", "give ids or filter (an object), not both");
            None
        }
    };
    errors.into_result().map_err(ApiError::Invalid)?;
    let Some(selection) = selection else {
        return Err(ApiError::Internal("checked above".into()));
    };
    let affected = apply(&state, &action, &selection).await?;
    audit(
        &state,
        &operator,
        selection_tenant(&selection),
        &format!("jobs.{action}"),
        describe(&selection),
        affected,
    )
    .await;
    Ok(Json(json!({ "action": action, "affected": affected })))
}

/// `POST /admin/api/queues/{queue}/{pause|resume}`.
#[utoipa::path(
    post,
    path = "/admin/api/queues/{queue}/{action}",
    operation_id = "admin_queue_act",
    description = "Pause or resume a queue on every node (the platform admin\'s).",
    params(("queue" = String, Path, description = "Queue name"), ("action" = String, Path, description = "pause or resume")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 403, description = "`forbidden`: the platform admin's alone, a read-only token, or a session without its CSRF token", body = ErrorJson),
        (status = 404, description = "`not_found`: no such queue or action, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn queue_action_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path((queue, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator_to_act(&state, &headers, client, &visit).await?;
    operator.require_platform()?;
    if !is_queue_name(&queue) {
        return Err(ApiError::NotFound("queue"));
    }
    let changed = match action.as_str() {
        "pause" => state.store.pause_queue(&queue, Utc::now()).await?,
        "resume" => state.store.resume_queue(&queue).await?,
        _ => return Err(ApiError::NotFound("queue action")),
    };
    tracing::info!(queue, action, changed, "operator acted on a queue");
    audit(
        &state,
        &operator,
        None,
        &format!("queue.{action}"),
        format!("queue {queue}"),
        u64::from(changed),
    )
    .await;
    Ok(Json(
        json!({ "queue": queue, "paused": action == "pause", "changed": changed }),
    ))
}

/// The filter named by `get` (a query string's, a form's or a JSON body's fields), every bad one added to `errors`.
pub(super) async fn filter(
    state: &AppState,
    operator: &Operator,
    errors: &mut FieldErrors,
    get: impl Fn(&str) -> Option<String>,
) -> Result<JobFilter, ApiError> {
    let text = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let job_state = text("state");
    if let Some(s) = &job_state {
        if !STATES.contains(&s.as_str()) {
            errors.add("state", format!("must be one of {}", STATES.join(", ")));
        }
    }
    let tenant_id = params::tenant(state, operator, text("tenant").as_deref(), errors).await?;
    for name in ["queue", "kind", "q"] {
        if text(name).is_some_and(|v| v.len() > 200) {
            errors.add(name, "is longer than 200 characters");
        }
        if text(name).is_some_and(|v| v.contains('\0')) {
            errors.add(name, "must not contain a NUL character");
        }
    }
    Ok(JobFilter {
        state: job_state,
        queue: text("queue"),
        kind: text("kind"),
        tenant_id,
        text: text("q"),
    })
}

/// Runs `action` (`retry`, `cancel` or anything else: `delete`) on `selection`; returns how many jobs it touched.
pub(super) async fn apply(
    state: &AppState,
    action: &str,
    selection: &JobSelection,
) -> Result<u64, ApiError> {
    let now = Utc::now();
    let affected = match action {
        "retry" => state.store.retry_jobs(selection, now).await?,
        "cancel" => state.store.cancel_jobs(selection, now).await?,
        _ => state.store.delete_jobs(selection).await?,
    };
    tracing::info!(action, affected, "operator acted on jobs");
    Ok(affected)
}

/// Whether `queue` can be a queue's name: 1 to 64 characters, no control character (a NUL reaches no table).
pub(super) fn is_queue_name(queue: &str) -> bool {
    (1..=64).contains(&queue.len()) && !queue.chars().any(char::is_control)
}

/// The tenant a selection is confined to, if one.
pub(super) fn selection_tenant(selection: &JobSelection) -> Option<TenantId> {
    match selection {
        JobSelection::Ids { tenant_id, .. } => *tenant_id,
        JobSelection::Matching(filter) => filter.tenant_id,
    }
}

/// The jobs an action named, for the audit log.
pub(super) fn describe(selection: &JobSelection) -> String {
    match selection {
        JobSelection::Ids { ids, .. } => {
            let shown: Vec<String> = ids.iter().take(20).map(ToString::to_string).collect();
            let more = ids.len().saturating_sub(shown.len());
            match more {
                0 => format!("jobs {}", shown.join(", ")),
                _ => format!("jobs {} and {more} more", shown.join(", ")),
            }
        }
        JobSelection::Matching(filter) => {
            let mut parts = Vec::new();
            for (name, value) in [
                ("state", &filter.state),
                ("queue", &filter.queue),
                ("kind", &filter.kind),
                ("text", &filter.text),
            ] {
                if let Some(value) = value {
                    parts.push(format!("{name}={value}"));
                }
            }
            if let Some(tenant) = filter.tenant_id {
                parts.push(format!("tenant={tenant}"));
            }
            match parts.is_empty() {
                true => "every job".to_owned(),
                false => format!("every job matching {}", parts.join(" ")),
            }
        }
    }
}

/// The job `id` names, if `operator` may see it (`404` for an id that is not one, no job's, or another
/// tenant's).
pub(super) async fn find_job(
    state: &AppState,
    operator: &Operator,
    id: &str,
) -> Result<Job, ApiError> {
    let id: JobId = id.parse().map_err(|_| ApiError::NotFound("job"))?;
    let job = state
        .store
        .job(id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    operator.check_sees(job.tenant_id, "job")?;
    Ok(job)
}

/// `after`: a cursor this listing gave (blank: the first page).
pub(super) fn after_param(
    raw: Option<&String>,
    errors: &mut FieldErrors,
) -> Option<(DateTime<Utc>, JobId)> {
    let raw = raw.filter(|a| !a.is_empty())?;
    let parsed = parse_cursor(raw);
    if parsed.is_none() {
        errors.add("after", "is not a cursor this listing gave");
    }
    parsed
}

/// The cursor of the page after `jobs`, if it was full.
pub(super) fn next_cursor(jobs: &[Job], limit: i64) -> Option<String> {
    (jobs.len() as i64 == limit)
        .then(|| jobs.last().map(|j| cursor(j.created_at, j.id)))
        .flatten()
}

/// A page's cursor: the last job's creation time (nanoseconds) and id.
fn cursor(at: DateTime<Utc>, id: JobId) -> String {
    format!("{}.{id}", at.timestamp_nanos_opt().unwrap_or_default())
}

fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, JobId)> {
    let (nanos, id) = cursor.split_once('.')?;
    let at = DateTime::from_timestamp_nanos(nanos.parse().ok()?);
    Some((at, id.parse().ok()?))
}

fn job_json(job: &Job, slugs: &HashMap<TenantId, TenantSlug>) -> Value {
    json!({
        "id": job.id,
        "queue": job.queue,
        "kind": job.kind,
        "state": job.state,
        "tenant": job.tenant_id.and_then(|t| slugs.get(&t)).map(TenantSlug::as_str),
        // The payload as the JSON it is (kept as text should it not parse).
        "payload": serde_json::from_str::<Value>(&job.payload).unwrap_or_else(|_| Value::String(job.payload.clone())),
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_at": job.run_at,
        "unique_key": job.unique_key,
        "locked_by": job.locked_by,
        "locked_until": job.locked_until,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    })
}
