//! The importer's runs and rejected rows for the admin, as JSON: `GET /admin/api/imports` (filter by `tenant`
//! slug, `feed`, `status`; newest first) and `GET /admin/api/imports/{run}/rejects`. Behind an operator's
//! token, like the rest of `/admin/api`: a tenant operator sees its tenant's runs only.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use skybook_domain::{FieldErrors, ImportRunId, TenantSlug};
use skybook_storage::{ImportRun, ImportRunFilter};

use super::admin_params as params;
use super::operator::{require_operator, Operator};
use super::session::Visit;
use crate::openapi::AdminErrors;
use crate::render::ErrorJson;
use crate::throttle::Client;
use crate::{ApiError, AppState};

/// Runs listed when no `limit` is given, and the most a `limit` may ask for.
const DEFAULT_RUNS: i64 = 50;
const MAX_RUNS: i64 = 500;

#[utoipa::path(
    get,
    path = "/admin/api/imports",
    operation_id = "admin_imports",
    description = "Import runs, newest first.",
    params(("tenant" = Option<String>, Query, description = "Tenant slug", pattern = r"^([a-z0-9][a-z0-9-]{0,38}[a-z0-9])?$"), ("feed" = Option<String>, Query, description = "Feed type", pattern = r"^[^\x00]*$"), ("status" = Option<String>, Query, description = "queued, running, succeeded, failed or skipped", pattern = "^(queued|running|succeeded|failed|skipped)?$"), ("limit" = Option<u32>, Query, description = "1 to 500", minimum = 1, maximum = 500)),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn imports_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    params::Params(query): params::Params,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let mut errors = FieldErrors::new();
    let tenant = params::tenant(
        &state,
        &operator,
        query.get("tenant").map(String::as_str),
        &mut errors,
    )
    .await?;
    let status = query.get("status").cloned().filter(|s| !s.is_empty());
    if let Some(status) = &status {
        if !["queued", "running", "succeeded", "failed", "skipped"].contains(&status.as_str()) {
            errors.add(
                "status",
                "must be one of queued, running, succeeded, failed, skipped",
            );
        }
    }
    let limit = params::limit(query.get("limit"), &mut errors, DEFAULT_RUNS, MAX_RUNS);
    errors.into_result().map_err(ApiError::Invalid)?;
    let filter = ImportRunFilter {
        tenant_id: tenant,
        feed: query.get("feed").cloned().filter(|f| !f.is_empty()),
        status,
        limit,
    };
    let slugs = params::tenant_slugs(&state).await?;
    let runs: Vec<Value> = state
        .store
        .import_runs(&filter)
        .await?
        .iter()
        .map(|run| run_json(run, slugs.get(&run.tenant_id).map(TenantSlug::as_str)))
        .collect();
    Ok(Json(json!({ "runs": runs })))
}

fn run_json(run: &ImportRun, tenant: Option<&str>) -> Value {
    json!({
        "id": run.id,
        "tenant": tenant,
        "feed": run.feed,
        "source": run.source,
        "feed_date": run.feed_date,
        "status": run.status,
        "dry_run": run.dry_run,
        "rows": {
            "read": run.rows_read,
            "inserted": run.rows_inserted,
            "updated": run.rows_updated,
            "deleted": run.rows_deleted,
            "rejected": run.rows_rejected,
        },
        "bytes": run.bytes,
        "bytes_total": run.bytes_total,
        "content_sha256": run.content_sha256,
        "error": run.error,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    })
}

/// `GET /admin/api/imports/{run}`: one run, as listed.
#[utoipa::path(
    get,
    path = "/admin/api/imports/{run}",
    operation_id = "admin_import",
    description = "One import run.",
    params(("run" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 404, description = "`not_found`: no such run, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn import_run_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let run = find_run(&state, &operator, &run).await?;
    let tenant = state.store.tenant(run.tenant_id).await?;
    Ok(Json(
        json!({ "run": run_json(&run, tenant.as_ref().map(|t| t.slug.as_str())) }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/api/imports/{run}/rejects",
    operation_id = "admin_import_rejects",
    description = "A run\'s rejected rows: line, column, value, reason, the line as it was.",
    params(("run" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 404, description = "`not_found`: no such run, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn import_rejects_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let run = find_run(&state, &operator, &run).await?;
    let rejects: Vec<Value> = state
        .store
        .import_rejects(run.id)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "line": r.line,
                "column": r.column_name,
                "value": r.value,
                "reason": r.reason,
                "raw": r.raw,
            })
        })
        .collect();
    Ok(Json(
        json!({ "run": run.id, "header": run.header, "rejects": rejects }),
    ))
}

/// The run `id` names, if `operator` may see it (`404` for an id that is not one, no run's, or another
/// tenant's).
pub(super) async fn find_run(
    state: &AppState,
    operator: &Operator,
    id: &str,
) -> Result<ImportRun, ApiError> {
    let id: ImportRunId = id.parse().map_err(|_| ApiError::NotFound("import run"))?;
    let run = state
        .store
        .import_run(id)
        .await?
        .ok_or(ApiError::NotFound("import run"))?;
    operator.check_sees(Some(run.tenant_id), "import run")?;
    Ok(run)
}
