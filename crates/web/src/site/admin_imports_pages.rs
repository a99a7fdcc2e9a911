//! The importer's pages for operators, server-rendered: `/admin/imports` (runs filtered by tenant, feed and
//! status, a running one with its rows so far and rows per second) and `/admin/imports/{run}` (its counts and
//! rejected rows: line, column, value, reason and the line as it was), with the rejects as a CSV to fix and
//! re-send (`/admin/imports/{run}/rejects.csv`) and, for a fetched day, a re-run (`POST
//! /admin/imports/{run}/rerun`: the same import job a schedule enqueues, so at most one runs at a time).
//! The live script refreshes them as import jobs publish progress.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use skybook_domain::FieldErrors;
use skybook_import::FeedJob;
use skybook_storage::{Enqueued, ImportRun, ImportRunFilter};

use super::admin_imports::find_run;
use super::admin_params as params;
use super::forms::CsrfForm;
use super::operator::{audit, operator, require_operator_for_form};
use super::session::Visit;
use super::{see_other, PageError};
use crate::throttle::Client;
use crate::{ApiError, AppState};

const STATUSES: [&str; 5] = ["queued", "running", "succeeded", "failed", "skipped"];
/// Rejects shown on a run's page (the CSV has them all).
const SHOWN_REJECTS: usize = 500;

pub struct RunRow {
    pub id: String,
    pub tenant: String,
    pub feed: String,
    pub status: String,
    pub source: String,
    pub feed_date: String,
    pub started: String,
    pub finished: String,
    /// Rows read; while running, with the rate so far.
    pub rows: String,
    pub changed: String,
    pub rejected: i64,
    pub error: String,
    /// Fetched from the partner for a day: can be fetched again.
    pub refetchable: bool,
}

pub struct RejectRow {
    pub line: i64,
    pub column: String,
    pub value: String,
    pub reason: String,
    pub raw: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_imports.html")]
pub struct ImportsPage {
    pub nav: super::views::AdminNav,
    pub message: Option<String>,
    pub tenant: String,
    pub feed: String,
    pub status: String,
    pub statuses: [&'static str; 5],
    pub runs: Vec<RunRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_import.html")]
pub struct ImportPage {
    pub nav: super::views::AdminNav,
    pub csrf: String,
    pub run: RunRow,
    pub rejects: Vec<RejectRow>,
    pub more: bool,
}

/// How far a running import is through its CSV, and when it should end at the rate so far: `, 40%, about 12 s
/// left` (nothing until it has read something).
fn eta(read: i64, total: Option<i64>, seconds: f64) -> String {
    let Some(total) = total.filter(|&t| t > 0 && read > 0) else {
        return String::new();
    };
    let done = (read as f64 / total as f64).min(1.0);
    let left = ((total - read).max(0) as f64 / (read as f64 / seconds)).ceil() as u64;
    let left = match left {
        0..=59 => format!("{left} s"),
        60..=3599 => format!("{} min {} s", left / 60, left % 60),
        _ => format!("{} h {} min", left / 3600, left % 3600 / 60),
    };
    format!(", {:.0}%, about {left} left", done * 100.0)
}

fn row(run: &ImportRun, tenant: &str, now: DateTime<Utc>) -> RunRow {
    let rows = match (run.status.as_str(), run.started_at) {
        ("running", Some(started)) => {
            let seconds = (now - started).num_milliseconds().max(1) as f64 / 1000.0;
            format!(
                "{} so far ({:.0} rows/s){}",
                run.rows_read,
                run.rows_read as f64 / seconds,
                eta(run.bytes, run.bytes_total, seconds)
            )
        }
        _ => run.rows_read.to_string(),
    };
    RunRow {
        id: run.id.to_string(),
        tenant: tenant.to_owned(),
        feed: run.feed.clone(),
        status: run.status.clone(),
        source: run.source.clone(),
        feed_date: run.feed_date.map(|d| d.to_string()).unwrap_or_default(),
        started: run.started_at.map(params::time).unwrap_or_default(),
        finished: run.finished_at.map(params::time).unwrap_or_default(),
        rows,
        changed: format!(
            "{} · {} · {}",
            run.rows_inserted, run.rows_updated, run.rows_deleted
        ),
        rejected: run.rows_rejected,
        error: run.error.clone().unwrap_or_default(),
        refetchable: run.feed_date.is_some() && run.source.starts_with("http"),
    }
}

/// `GET /admin/imports`.
pub async fn imports_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    params::Params(query): params::Params,
) -> Result<Response, PageError> {
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    let field = |name: &str| {
        query
            .get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (tenant, feed, status) = (field("tenant"), field("feed"), field("status"));
    let mut errors = FieldErrors::new();
    let tenant_id = params::tenant(&state, &operator, Some(&tenant), &mut errors).await?;
    if !status.is_empty() && !STATUSES.contains(&status.as_str()) {
        errors.add("status", format!("must be one of {}", STATUSES.join(", ")));
    }
    errors.into_result().map_err(ApiError::Invalid)?;
    let filter = ImportRunFilter {
        tenant_id,
        feed: (!feed.is_empty()).then(|| feed.clone()),
        status: (!status.is_empty()).then(|| status.clone()),
        limit: 100,
    };
    let slugs = params::tenant_slugs(&state).await?;
    let now = Utc::now();
    let runs = state
        .store
        .import_runs(&filter)
        .await?
        .iter()
        .map(|run| {
            let slug = slugs
                .get(&run.tenant_id)
                .map(|s| s.to_string())
                .unwrap_or_default();
            row(run, &slug, now)
        })
        .collect();
    let message = match query.get("done").map(String::as_str) {
        Some("rerun") => Some("The import is queued: it runs on the next free worker.".to_owned()),
        Some("queued-already") => {
            Some("That day's import is queued or running already.".to_owned())
        }
        _ => None,
    };
    Ok(ImportsPage {
        nav: super::views::AdminNav::of(&operator),
        message,
        tenant,
        feed,
        status,
        statuses: STATUSES,
        runs,
    }
    .into_response())
}

/// `GET /admin/imports/{run}`.
pub async fn import_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    let run = find_run(&state, &operator, &id).await?;
    let tenant = state.store.tenant(run.tenant_id).await?;
    let mut rejects = state.store.import_rejects(run.id).await?;
    let more = rejects.len() > SHOWN_REJECTS;
    rejects.truncate(SHOWN_REJECTS);
    Ok(ImportPage {
        csrf: visit.csrf_token().await?,
        nav: super::views::AdminNav::of(&operator),
        run: row(
            &run,
            tenant.as_ref().map(|t| t.slug.as_str()).unwrap_or_default(),
            Utc::now(),
        ),
        rejects: rejects
            .into_iter()
            .map(|r| RejectRow {
                line: r.line,
                column: r.column_name.unwrap_or_default(),
                value: r.value.unwrap_or_default(),
                reason: r.reason,
                raw: r.raw,
            })
            .collect(),
        more,
    }
    .into_response())
}

/// `GET /admin/imports/{run}/rejects.csv`.
pub async fn rejects_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let operator = operator(&state, &headers, client, &visit)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let run = find_run(&state, &operator, &id).await?;
    let rejects = state.store.import_rejects(run.id).await?;
    let csv = skybook_import::rejects_csv(run.header.as_deref(), &rejects);
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"rejects-{}.csv\"", run.id),
            ),
        ],
        csv,
    )
        .into_response())
}

/// `POST /admin/imports/{run}/rerun`: the run's day fetched and imported again, as its schedule would.
pub async fn rerun(
    State(state): State<AppState>,
    client: Client,
    Path(id): Path<String>,
    CsrfForm(visit, _): CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PageError> {
    let operator = require_operator_for_form(&state, client, &visit).await?;
    let run = find_run(&state, &operator, &id).await?;
    let Some(date) = run.feed_date.filter(|_| run.source.starts_with("http")) else {
        let mut errors = FieldErrors::new();
        errors.add(
            "run",
            "was not fetched for a day (a file or an upload): import the file again instead",
        );
        return Err(ApiError::Invalid(errors).into());
    };
    let job = FeedJob {
        tenant: run.tenant_id,
        feed: run.feed.clone(),
        date,
    };
    let done = match state
        .store
        .enqueue_job(&job.to_new_job(Utc::now()), Utc::now())
        .await?
    {
        Enqueued::New(id) => {
            tracing::info!(job.id = %id, run.id = %run.id, "operator queued an import again");
            "rerun"
        }
        Enqueued::Duplicate => "queued-already",
    };
    audit(
        &state,
        &operator,
        Some(run.tenant_id),
        "import.rerun",
        format!(
            "run {} ({} {} of {date}): {done}",
            run.id, run.feed, run.tenant_id
        ),
        u64::from(done == "rerun"),
    )
    .await;
    Ok(see_other(&format!("/admin/imports?done={done}")))
}

#[cfg(test)]
mod tests {
    use super::eta;

    #[test]
    fn the_eta_is_what_is_left_at_the_rate_so_far() {
        assert_eq!(eta(0, Some(100), 1.0), "", "nothing read yet");
        assert_eq!(eta(10, None, 1.0), "", "size unknown");
        assert_eq!(eta(250, Some(1000), 5.0), ", 25%, about 15 s left");
        assert_eq!(eta(100, Some(10_000), 1.0), ", 1%, about 1 min 39 s left");
        assert_eq!(
            eta(1, Some(1_000_000), 1.0),
            ", 0%, about 277 h 46 min left"
        );
    }
}
