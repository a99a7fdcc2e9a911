//! A partner file uploaded from the admin: `POST /admin/api/imports` (`multipart/form-data`: `tenant` slug,
//! `feed` type, `file` — a .csv, a .zip holding one, or the partner's JSON envelope — and `dry_run` optional). The
//! third source of the importer, through the same pipeline as a fetched feed or a file on the command line.
//!
//! The file is streamed to a temporary file (never held in memory) and its container checked (not a zip, a zip
//! bomb, several CSVs…: a `422` naming `file`) before anything is recorded. Then the run is recorded and the
//! import goes on in its own task, so a slow client or the request timeout cannot cut a load half-way: the
//! answer is `202` with the run's id and where to watch it (`GET /admin/api/imports/{run}`). A dry run is read
//! while the request waits, and answers `200` with every reject (up to 10,000); it records nothing.
//!
//! Behind an operator's token (not a read-only one); a tenant operator uploads for its own tenant only, which
//! is the default `tenant`. Signed in with the session rather than a bearer token, the upload must carry the
//! session's CSRF token: an `X-CSRF-Token` header, or a `csrf` field before the file.

use std::sync::Arc;

use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use skybook_domain::{ErrorChain, FieldErrors, ImportRunId, TenantSlug};
use skybook_import::{FeedType, ImportRequest, Limits, Source, Summary};
use tokio::io::AsyncWriteExt as _;

use super::operator::{audit, may_act, require_operator};
use super::session::Visit;
use crate::render::ErrorJson;
use crate::throttle::Client;
use crate::{ApiError, AppState};

/// What the form carried.
#[derive(Default)]
struct Upload {
    tenant: Option<String>,
    feed: Option<String>,
    dry_run: bool,
    csrf: Option<String>,
    /// The file, spooled, and its name as the browser gave it.
    file: Option<(tempfile::TempPath, String)>,
}

/// The upload form, as the OpenAPI document describes it.
#[derive(utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct UploadForm {
    /// The tenant's slug (a tenant operator's own tenant when absent).
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$", nullable = false)]
    tenant: Option<String>,
    /// The feed type.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,39}$")]
    feed: String,
    /// A .csv, a .zip holding one, or the partner's JSON envelope.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Read and report every reject without recording anything.
    #[schema(nullable = false)]
    dry_run: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/admin/api/imports",
    operation_id = "admin_import_upload",
    description = "Imports an uploaded partner file through the importer; 202 with the run to watch (a dry run: 200 with its report).",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "A dry run's report", body = serde_json::Value),
        (status = 202, description = "Recorded and importing", body = serde_json::Value),
        (status = 401, description = "`unauthorized`: no admin or operator token", body = ErrorJson),
        (status = 403, description = "`forbidden`: a read-only token, or a session without its CSRF token", body = ErrorJson),
        (status = 422, description = "`invalid`: every bad field named (the file's container or contents included)", body = ErrorJson),
        (status = 429, description = "`too_many_requests`", body = ErrorJson),
        (status = 503, description = "`service_unavailable`: the database is unavailable; retry", body = ErrorJson),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    may_act(&operator)?;
    let signed_in_by_session = !operator.by_bearer();
    let mut multipart = multipart.map_err(|_| {
        invalid(
            "body",
            "must be multipart/form-data with the fields tenant, feed and file",
        )
    })?;
    let limits = Limits::default();
    let mut errors = FieldErrors::new();
    let mut upload = Upload::default();
    let header_csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut fields = 0;
    while let Some(field) = multipart.next_field().await.map_err(body_error)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(invalid(
                "body",
                format!("has more than {MAX_FIELDS} fields"),
            ));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                // Checked before the file is read: a forged form gets no further than its first field.
                if signed_in_by_session {
                    check_csrf(&visit, header_csrf.as_deref().or(upload.csrf.as_deref())).await?;
                }
                let filename = field.file_name().unwrap_or("upload").to_owned();
                upload.file = Some((spool(field, limits.max_input_bytes).await?, filename));
            }
            "tenant" | "feed" | "dry_run" | "csrf" => {
                let Some(value) = short_text(field).await? else {
                    errors.add(&name, format!("is longer than {MAX_TEXT} bytes"));
                    continue;
                };
                match name.as_str() {
                    "tenant" => upload.tenant = Some(value),
                    "feed" => upload.feed = Some(value),
                    "csrf" => upload.csrf = Some(value),
                    _ => match value.as_str() {
                        "" | "false" | "0" | "off" => upload.dry_run = false,
                        "true" | "1" | "on" => upload.dry_run = true,
                        _ => errors.add("dry_run", "must be true or false"),
                    },
                }
            }
            other => errors.add(other, "unknown field; expected tenant, feed, file, dry_run"),
        }
    }
    if signed_in_by_session && upload.file.is_none() {
        check_csrf(&visit, header_csrf.as_deref().or(upload.csrf.as_deref())).await?;
    }

    let tenant = match upload.tenant.as_deref().filter(|t| !t.is_empty()) {
        // A tenant operator's uploads are its tenant's.
        None => match operator.tenant() {
            Some(own) => state.store.tenant(own).await?,
            None => {
                errors.add("tenant", "is required: the platform admin names the tenant");
                None
            }
        },
        Some(slug) => match errors.check("tenant", TenantSlug::parse(slug)) {
            Some(slug) => {
                // Another tenant is, to a tenant operator, no tenant at all.
                let found = state
                    .store
                    .tenant_by_slug(&slug)
                    .await?
                    .filter(|t| operator.sees(Some(t.id)));
                if found.is_none() {
                    errors.add("tenant", format!("no tenant {slug}"));
                }
                found
            }
            None => None,
        },
    };
    let feed = match upload.feed.as_deref().filter(|f| !f.is_empty()) {
        None => {
            errors.add("feed", "is required");
            None
        }
        Some(name) => {
            let found = state.options.feeds.iter().find(|f| f.name() == name);
            if found.is_none() {
                let names: Vec<&str> = state.options.feeds.iter().map(FeedType::name).collect();
                errors.add(
                    "feed",
                    format!("no feed type {name:?}; declared: {}", names.join(", ")),
                );
            }
            found.cloned()
        }
    };
    if upload.file.is_none() {
        errors.add("file", "is required");
    }
    errors.into_result().map_err(ApiError::Invalid)?;
    let (Some(tenant), Some(feed), Some((file, filename))) = (tenant, feed, upload.file) else {
        return Err(ApiError::Internal("checked above".into()));
    };

    let entry = feed.entry.clone();
    let source =
        tokio::task::spawn_blocking(move || Source::from_download(file, entry.as_deref(), limits))
            .await
            .map_err(|e| ApiError::Internal(format!("checking the upload: {e}")))?
            .map_err(|e| invalid("file", e.to_string()))?;
    let label = format!("upload: {filename}");
    let label_for_audit = format!("{} {} {label}", tenant.slug, feed.name());
    let tenant_id = tenant.id;
    let (run, dry_run) = (ImportRunId::new(), upload.dry_run);
    // The run goes on in its own task; it tells this request once it is recorded (or could not be).
    let (recorded, is_recorded) = tokio::sync::oneshot::channel();
    let store = state.store.clone();
    let task = tokio::spawn(async move {
        let request = ImportRequest {
            run,
            tenant: &tenant,
            feed: &feed,
            source: Arc::new(source),
            label,
            feed_date: None,
            dry_run,
            limits,
        };
        let started = match skybook_import::begin_import(&store, request).await {
            Ok(started) => {
                let _ = recorded.send(Ok(()));
                started
            }
            Err(e) => {
                let _ = recorded.send(Err(e));
                return None;
            }
        };
        // Open dashboards follow it as they follow an import job: a progress event at most every second.
        let last = std::sync::Mutex::new(std::time::Instant::now());
        let progress = |rows: u64, bytes: u64| {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= std::time::Duration::from_secs(1) {
                *last = std::time::Instant::now();
                store.publish_event(&json!({
                    "type": "progress", "id": run, "tenant": tenant.id, "kind": "import.upload",
                    "progress": { "rows": rows, "bytes": bytes, "done": false },
                }));
            }
        };
        match started.finish(&progress).await {
            Ok(summary) => {
                tracing::info!(run.id = %run, tenant = %tenant.slug, feed = feed.name(), dry_run, status = summary.status, read = summary.counts.read, rejected = summary.counts.rejected, "uploaded import finished");
                // Its end, so an open imports page shows the outcome at once.
                store.publish_event(&json!({
                    "type": "progress", "id": run, "tenant": tenant.id, "kind": "import.upload",
                    "progress": { "rows": summary.counts.read, "done": true, "status": summary.status },
                }));
                Some(summary)
            }
            Err(e) => {
                tracing::error!(run.id = %run, error = %ErrorChain(&e), "uploaded import could not record its end");
                None
            }
        }
    });
    is_recorded
        .await
        .map_err(|_| ApiError::Internal("the import task ended before recording its run".into()))?
        .map_err(|e| ApiError::from(e.0))?;
    if dry_run {
        // Nothing recorded: the report is the answer, so this request waits for it.
        let summary = task
            .await
            .map_err(|e| ApiError::Internal(format!("the dry run's task: {e}")))?
            .ok_or_else(|| ApiError::Internal("the dry run did not finish".into()))?;
        return Ok((StatusCode::OK, Json(summary_json(&summary))).into_response());
    }
    audit(
        &state,
        &operator,
        Some(tenant_id),
        "import.upload",
        format!("run {run}: {label_for_audit}"),
        1,
    )
    .await;
    let link = format!("/admin/api/imports/{run}");
    Ok((
        StatusCode::ACCEPTED,
        [(LOCATION, link.clone())],
        Json(json!({
            "run": run,
            "status": "running",
            "links": { "run": link, "rejects": format!("{link}/rejects") },
        })),
    )
        .into_response())
}

/// A dry run's report: what a run would have done, and every reject (up to 10,000).
fn summary_json(summary: &Summary) -> Value {
    json!({
        "dry_run": true,
        "status": summary.status,
        "error": summary.error,
        "rows": {
            "read": summary.counts.read,
            "rejected": summary.counts.rejected,
        },
        "bytes": summary.counts.bytes,
        "rejects": summary.rejects.iter().map(|r| json!({
            "line": r.line,
            "column": r.column_name,
            "value": r.value,
            "reason": r.reason,
            "raw": r.raw,
        })).collect::<Vec<_>>(),
    })
}

async fn check_csrf(visit: &Visit, presented: Option<&str>) -> Result<(), ApiError> {
    match presented {
        Some(token) if !token.is_empty() && visit.csrf_matches(token).await? => Ok(()),
        _ => Err(ApiError::Forbidden("csrf_token")),
    }
}

/// Most fields one upload may carry (it needs four or five): a body of endless fields is refused, not read.
const MAX_FIELDS: usize = 16;

/// Longest value of a text field (a slug, a feed name, a token).
const MAX_TEXT: usize = 1024;

/// A text field's value, trimmed; `None` past [`MAX_TEXT`] bytes (read no further).
async fn short_text(mut field: Field<'_>) -> Result<Option<String>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(body_error)? {
        if bytes.len() + chunk.len() > MAX_TEXT {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(String::from_utf8_lossy(&bytes).trim().to_owned()))
}

/// Streams the file part to a temporary file, refusing it past `limit` bytes.
async fn spool(mut field: Field<'_>, limit: u64) -> Result<tempfile::TempPath, ApiError> {
    let internal = |e: std::io::Error| ApiError::Internal(format!("spooling the upload: {e}"));
    let path = tempfile::NamedTempFile::new()
        .map_err(internal)?
        .into_temp_path();
    let mut file = tokio::fs::File::create(&path).await.map_err(internal)?;
    let mut written = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(body_error)? {
        written += chunk.len() as u64;
        if written > limit {
            return Err(invalid(
                "file",
                format!("is larger than the limit of {limit} bytes"),
            ));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    Ok(path)
}

/// A body that is not well-formed multipart, or was cut off.
fn body_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    invalid("body", format!("is not readable multipart/form-data: {e}"))
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    let mut errors = FieldErrors::new();
    errors.add(field, message);
    ApiError::Invalid(errors)
}
