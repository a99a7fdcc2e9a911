//! The job queue's pages for operators, server-rendered and whole without JavaScript: `/admin/jobs` (each
//! queue's counts with pause and resume, the jobs filtered and keyset-paged, actions on the selected jobs or on
//! every job matching the filter) and `/admin/jobs/{id}` (a job, its payload, its failed attempts, what it
//! produced). The forms post to `/admin/jobs/act` and `/admin/queues` with the session's CSRF token and come
//! back to the listing, which says what was done. The same statements serve the JSON (`admin_jobs`).

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use skybook_domain::{FieldErrors, JobId, TenantId, TenantSlug};
use skybook_storage::{Job, JobError, JobPage, JobSelection};

use super::admin_jobs::{
    after_param, apply, describe, filter, find_job, next_cursor, selection_tenant,
};
use super::admin_params as params;
use super::forms::CsrfForm;
use super::operator::{audit, operator, require_operator_for_form};
use super::session::Visit;
use super::{see_other, PageError};
use crate::throttle::Client;
use crate::{ApiError, AppState};

/// The most jobs the page counts for "every job matching".
const MATCHING_CAP: i64 = 10_000;
const PAGE: i64 = 50;
const STATES: [&str; 4] = ["queued", "running", "done", "failed"];

/// The filter as the form shows it (the text typed, valid or not).
#[derive(Debug, Clone, Default)]
pub struct FilterForm {
    pub state: String,
    pub queue: String,
    pub kind: String,
    pub tenant: String,
    pub q: String,
}

impl FilterForm {
    fn from_pairs(get: impl Fn(&str) -> Option<String>) -> Self {
        let field = |name: &str| get(name).unwrap_or_default().trim().to_owned();
        Self {
            state: field("state"),
            queue: field("queue"),
            kind: field("kind"),
            tenant: field("tenant"),
            q: field("q"),
        }
    }

    /// The fields that are set, for hidden inputs.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("state", self.state.as_str()),
            ("queue", &self.queue),
            ("kind", &self.kind),
            ("tenant", &self.tenant),
            ("q", &self.q),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    /// The filter as a query string (for links).
    pub fn query(&self) -> String {
        serde_urlencoded::to_string(self.fields()).unwrap_or_default()
    }

    pub fn selected(&self, state: &str) -> bool {
        self.state == state
    }

    fn get(&self, name: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }
}

pub struct QueueRow {
    pub name: String,
    pub queued: i64,
    pub running: i64,
    /// "≈ 880000" when estimated (a large table: see `Store::job_state_counts`).
    pub done: String,
    pub failed: i64,
    pub paused: bool,
}

pub struct JobRow {
    pub id: String,
    pub created: String,
    pub kind: String,
    pub queue: String,
    pub state: String,
    pub tenant: String,
    pub attempts: String,
    pub max_attempts: i32,
    pub last_error: String,
    pub run_at: String,
    pub finished: String,
    pub worker: String,
    pub payload: String,
    /// `(href, text)` of what the job produced.
    pub produced: Option<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_jobs.html")]
pub struct JobsPage {
    pub nav: super::views::AdminNav,
    /// The last hour's chart: an SVG built of numbers and times only (so shown unescaped).
    pub chart: String,
    pub csrf: String,
    pub message: Option<String>,
    pub queues: Vec<QueueRow>,
    pub states: [&'static str; 4],
    pub filter: FilterForm,
    pub jobs: Vec<JobRow>,
    pub next: Option<String>,
    pub matching: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_job.html")]
pub struct JobDetailPage {
    pub nav: super::views::AdminNav,
    pub csrf: String,
    pub job: JobRow,
    pub errors: Vec<ErrorRow>,
}

pub struct ErrorRow {
    pub attempt: i32,
    pub at: String,
    pub worker: String,
    pub error: String,
}

fn row(job: &Job, slugs: &HashMap<TenantId, TenantSlug>) -> JobRow {
    let tenant = job.tenant_id.and_then(|t| slugs.get(&t));
    // An import job links to its runs.
    let produced = match (job.kind.as_str(), tenant) {
        ("import.feed", Some(slug)) => serde_json::from_str::<serde_json::Value>(&job.payload)
            .ok()
            .and_then(|p| p["feed"].as_str().map(str::to_owned))
            .map(|feed| {
                (
                    format!("/admin/api/imports?tenant={slug}&feed={feed}"),
                    format!("the import runs of {slug}'s {feed} feed"),
                )
            }),
        _ => None,
    };
    JobRow {
        id: job.id.to_string(),
        created: params::time(job.created_at),
        kind: job.kind.clone(),
        queue: job.queue.clone(),
        state: job.state.clone(),
        tenant: tenant.map(|s| s.to_string()).unwrap_or_default(),
        attempts: job.attempts.to_string(),
        max_attempts: job.max_attempts,
        last_error: job.last_error.clone().unwrap_or_default(),
        run_at: params::time(job.run_at),
        finished: job.finished_at.map(params::time).unwrap_or_default(),
        worker: match (&job.locked_by, job.locked_until) {
            (Some(worker), Some(until)) => {
                format!("{worker} (lease until {})", params::time(until))
            }
            _ => String::new(),
        },
        payload: serde_json::from_str::<serde_json::Value>(&job.payload)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| job.payload.clone()),
        produced,
    }
}

/// `GET /admin/jobs`.
pub async fn jobs_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    params::Params(query): params::Params,
) -> Result<Response, PageError> {
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    let form = FilterForm::from_pairs(|name| query.get(name).cloned());
    let mut errors = FieldErrors::new();
    let job_filter = filter(&state, &operator, &mut errors, |name| form.get(name)).await?;
    let after = after_param(query.get("after"), &mut errors);
    errors.into_result().map_err(ApiError::Invalid)?;
    let page = JobPage { after, limit: PAGE };
    // The page, the counts and the matching count at once: the counts read every job, the page a few.
    let now = Utc::now();
    let (jobs, counts, matching, per_minute) = futures::try_join!(
        state.store.list_jobs(&job_filter, &page),
        state.store.job_state_counts(operator.tenant()),
        state.store.count_jobs(&job_filter, MATCHING_CAP + 1),
        state
            .store
            .jobs_finished_per_minute(operator.tenant(), now - chrono::Duration::hours(1))
    )
    .map_err(ApiError::from)?;
    let next = next_cursor(&jobs, PAGE);
    let slugs = params::tenant_slugs(&state).await?;
    let paused: Vec<String> = state
        .store
        .paused_queues()
        .await?
        .into_iter()
        .map(|(q, _)| q)
        .collect();
    let mut queues: Vec<QueueRow> = Vec::new();
    for count in counts {
        if queues.last().is_none_or(|q| q.name != count.queue) {
            queues.push(QueueRow {
                paused: paused.contains(&count.queue),
                name: count.queue.clone(),
                queued: 0,
                running: 0,
                done: "0".into(),
                failed: 0,
            });
        }
        if let Some(row) = queues.last_mut() {
            match count.state.as_str() {
                "queued" => row.queued = count.count,
                "running" => row.running = count.count,
                "done" if count.estimated => row.done = format!("≈ {}", count.count),
                "done" => row.done = count.count.to_string(),
                _ => row.failed = count.count,
            }
        }
    }
    // A paused queue with no jobs still shows, so it can be resumed.
    for name in paused {
        if !queues.iter().any(|q| q.name == name) {
            queues.push(QueueRow {
                name,
                queued: 0,
                running: 0,
                done: "0".into(),
                failed: 0,
                paused: true,
            });
        }
    }
    let message = query.get("done").and_then(|done| {
        let (action, n) = done.split_once(':')?;
        let n: u64 = n.parse().ok()?;
        let verb = match action {
            "retry" => "Queued to run now",
            "cancel" => "Cancelled",
            "delete" => "Deleted",
            "pause" => return Some(format!("Paused queue {}.", query.get("queue")?)),
            "resume" => return Some(format!("Resumed queue {}.", query.get("queue")?)),
            _ => return None,
        };
        Some(format!("{verb}: {n} job(s)."))
    });
    Ok(JobsPage {
        chart: super::admin_chart::finished_per_minute(&per_minute, now),
        csrf: visit.csrf_token().await?,
        nav: super::views::AdminNav::of(&operator),
        message,
        queues,
        states: STATES,
        matching: match matching {
            n if n > MATCHING_CAP => format!("{MATCHING_CAP} or more"),
            n => n.to_string(),
        },
        filter: form,
        jobs: jobs.iter().map(|j| row(j, &slugs)).collect(),
        next,
    }
    .into_response())
}

/// `GET /admin/jobs/{id}`.
pub async fn job_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    let job = find_job(&state, &operator, &id).await?;
    let errors = state.store.job_errors(job.id).await?;
    Ok(JobDetailPage {
        csrf: visit.csrf_token().await?,
        nav: super::views::AdminNav::of(&operator),
        job: row(&job, &params::tenant_slugs(&state).await?),
        errors: errors.iter().map(error_row).collect(),
    }
    .into_response())
}

fn error_row(e: &JobError) -> ErrorRow {
    ErrorRow {
        attempt: e.attempt,
        at: params::time(e.at),
        worker: e.worker.clone(),
        error: e.error.clone(),
    }
}

/// `POST /admin/jobs/act`: `action` (retry, cancel, delete) on the `id`s given (`scope=selected`) or on every
/// job matching the filter fields (`scope=matching`); back to the listing with the filter, saying how many.
pub async fn act(
    State(state): State<AppState>,
    client: Client,
    CsrfForm(visit, pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let operator = require_operator_for_form(&state, client, &visit).await?;
    let get = |name: &str| params::form_value(&pairs, name);
    let form = FilterForm::from_pairs(get);
    let mut errors = FieldErrors::new();
    let selection = match get("scope").as_deref() {
        Some("matching") => Some(JobSelection::Matching(
            filter(&state, &operator, &mut errors, |name| form.get(name)).await?,
        )),
        Some("selected") => {
            let ids: Option<Vec<JobId>> = pairs
                .iter()
                .filter(|(k, _)| k == "id")
                .map(|(_, v)| v.parse().ok())
                .collect();
            match &ids {
                None => errors.add("id", "must be job ids"),
                Some(ids) if ids.len() > super::admin_jobs::MAX_IDS => {
                    errors.add(
                        "id",
                        format!("at most {} jobs at once", super::admin_jobs::MAX_IDS),
                    );
                }
                Some(_) => {}
            }
            ids.map(|ids| JobSelection::Ids {
                ids,
                tenant_id: operator.tenant(),
            })
        }
        _ => {
            errors.add("scope", "must be selected or matching");
            None
        }
    };
    let action = get("action").unwrap_or_default();
    if !["retry", "cancel", "delete"].contains(&action.as_str()) {
        errors.add("action", "must be retry, cancel or delete");
    }
    errors.into_result().map_err(ApiError::Invalid)?;
    let Some(selection) = selection else {
        return Err(ApiError::Internal("checked above".into()).into());
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
    let filter = form.query();
    let sep = if filter.is_empty() { "" } else { "&" };
    Ok(see_other(&format!(
        "/admin/jobs?{filter}{sep}done={action}:{affected}"
    )))
}

/// `POST /admin/queues`: `queue` and `action` (pause, resume).
pub async fn queue_act(
    State(state): State<AppState>,
    client: Client,
    CsrfForm(visit, pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let operator = require_operator_for_form(&state, client, &visit).await?;
    operator.require_platform()?;
    let get = |name: &str| params::form_value(&pairs, name);
    let mut errors = FieldErrors::new();
    let queue = get("queue").unwrap_or_default();
    if !super::admin_jobs::is_queue_name(&queue) {
        errors.add("queue", "must be a queue's name");
    }
    let action = get("action").unwrap_or_default();
    if action != "pause" && action != "resume" {
        errors.add("action", "must be pause or resume");
    }
    errors.into_result().map_err(ApiError::Invalid)?;
    let changed = if action == "pause" {
        state.store.pause_queue(&queue, Utc::now()).await?
    } else {
        state.store.resume_queue(&queue).await?
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
    let back = serde_urlencoded::to_string([("done", format!("{action}:1")), ("queue", queue)])
        .unwrap_or_default();
    Ok(see_other(&format!("/admin/jobs?{back}")))
}
