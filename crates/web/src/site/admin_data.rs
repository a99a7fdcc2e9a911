//! The data browser: every declared feed's table and the bookings, as an operator reads them.
//!
//! - `GET /admin/data`: the tables.
//! - `GET /admin/data/{table}`: one page, with a filter per column by its type, sort links on every column
//!   header, and the next page's link (keyset: a deep page costs what the first does).
//! - `GET /admin/data/{table}/export.csv`: every row the filter matches, streamed page by page (memory stays
//!   flat however many rows), in the page's order.
//! - `GET /admin/api/data/{table}`: the page as JSON.
//!
//! The query string, shared by all three: `sort` (a column) and `dir` (`asc`, `desc`); `after` (the cursor the
//! previous page gave); `limit`; `tenant` (a slug); and per column `c` by its type — text: `c` (contains) or
//! `c.eq`; an enum or a boolean: `c` (equals); a number, a date or a time: `c.min` and `c.max` (a time also
//! takes a date). Anything else, or a value that does not parse as its column's type, is a `422` naming it.
//!
//! A tenant operator sees its tenant's rows only (see `operator`).

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use skybook_domain::feed::{ColumnType, FeedValue};
use skybook_domain::{FieldErrors, TenantId, TenantSlug};
use skybook_import::validate::parse_typed;
use skybook_storage::{Browsable, BrowseCursor, BrowseQuery, BrowseRow, ColumnFilter, Condition};

use super::admin_params as params;
use super::operator::{operator, require_operator, Operator};
use super::session::Visit;
use super::views::AdminNav;
use super::{see_other, PageError};
use crate::openapi::AdminErrors;
use crate::render::ErrorJson;
use crate::throttle::Client;
use crate::{ApiError, AppState};

const PAGE: i64 = 50;
const MAX_PAGE: i64 = 1000;
/// Rows per read while exporting.
const EXPORT_PAGE: i64 = 2000;
const BOOKINGS: &str = "bookings";

/// The table `name` names — a declared feed's, or the bookings — and whether it has rows to read yet (a feed's
/// table is built by its first import).
async fn browsable(state: &AppState, name: &str) -> Result<(Browsable, bool), ApiError> {
    if name == BOOKINGS {
        return Ok((Browsable::bookings(), true));
    }
    let feed = state
        .options
        .feeds
        .iter()
        .find(|f| f.name() == name)
        .ok_or(ApiError::NotFound("table"))?;
    Ok(match state.store.browsable_feed(&feed.table).await? {
        Some(table) => (table, true),
        None => (Browsable::feed(&feed.table), false),
    })
}

/// The browser's query, parsed from the query string, every bad parameter in `errors`.
async fn parse(
    state: &AppState,
    operator: &Operator,
    table: &Browsable,
    query: &HashMap<String, String>,
    errors: &mut FieldErrors,
) -> Result<BrowseQuery, ApiError> {
    let column_at = |name: &str| table.columns.iter().position(|c| c.name == name);
    let mut filters = Vec::new();
    let mut names: Vec<&String> = query.keys().collect();
    names.sort();
    for name in names {
        let raw = query[name].trim();
        if ["sort", "dir", "after", "limit", "tenant"].contains(&name.as_str()) {
            continue;
        }
        let (column, op) = name.split_once('.').unwrap_or((name, ""));
        let Some(at) = column_at(column) else {
            errors.add(name, "is not a column of this table");
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let ty = &table.columns[at].ty;
        let condition = match (ty, op) {
            (ColumnType::Text, "") => Some(Condition::Contains(raw.to_owned())),
            (ColumnType::Text, "eq") => Some(Condition::Equals(FeedValue::Text(raw.to_owned()))),
            (ColumnType::Enum(_) | ColumnType::Boolean, "") => {
                value(raw, ty, name, errors).map(Condition::Equals)
            }
            (
                ColumnType::Integer | ColumnType::Money | ColumnType::Decimal | ColumnType::Date,
                "min" | "max",
            ) => value(raw, ty, name, errors).map(|v| bound(op, v)),
            (ColumnType::Timestamp, "min" | "max") => {
                time_bound(raw, op == "max", name, errors).map(|v| bound(op, v))
            }
            _ => {
                errors.add(
                    name,
                    format!("is not a filter a {} column takes", ty.name()),
                );
                None
            }
        };
        if let Some(condition) = condition {
            filters.push(ColumnFilter {
                column: at,
                condition,
            });
        }
    }
    let sort = match query
        .get("sort")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(name) => {
            let at = column_at(name);
            if at.is_none() {
                errors.add("sort", "is not a column of this table");
            }
            at
        }
    };
    let descending = match query.get("dir").map(String::as_str) {
        None | Some("" | "asc") => false,
        Some("desc") => true,
        Some(_) => {
            errors.add("dir", "must be asc or desc");
            false
        }
    };
    let tenant = params::tenant(
        state,
        operator,
        query.get("tenant").map(String::as_str),
        errors,
    )
    .await?;
    let limit = params::limit(query.get("limit"), errors, PAGE, MAX_PAGE);
    let after = match query.get("after").filter(|a| !a.is_empty()) {
        None => None,
        Some(raw) => {
            let cursor = parse_cursor(table, sort, raw);
            if cursor.is_none() {
                errors.add("after", "is not a cursor this listing gave");
            }
            cursor
        }
    };
    Ok(BrowseQuery {
        tenant,
        filters,
        sort,
        descending,
        after,
        limit,
    })
}

fn value(raw: &str, ty: &ColumnType, name: &str, errors: &mut FieldErrors) -> Option<FeedValue> {
    parse_typed(raw, ty).map_err(|e| errors.add(name, e)).ok()
}

fn bound(op: &str, value: FeedValue) -> Condition {
    match op {
        "min" => Condition::AtLeast(value),
        _ => Condition::AtMost(value),
    }
}

/// A time bound: a time with its zone, or a date (its first moment; as a maximum, its last).
fn time_bound(raw: &str, max: bool, name: &str, errors: &mut FieldErrors) -> Option<FeedValue> {
    if let Ok(FeedValue::Date(date)) = parse_typed(raw, &ColumnType::Date) {
        let at = match max {
            // The day's last moment (the parser's years end at 9999: the next day is still a date).
            true => {
                date.succ_opt()
                    .unwrap_or(date)
                    .and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    - chrono::Duration::nanoseconds(1)
            }
            false => date.and_time(chrono::NaiveTime::MIN).and_utc(),
        };
        return Some(FeedValue::Timestamp(at));
    }
    value(raw, &ColumnType::Timestamp, name, errors)
}

/// A cursor as the listing hands it out: JSON `[sort value?, tenant, key values...]`, each value as text.
fn cursor_text(cursor: &BrowseCursor) -> String {
    let text = |v: &FeedValue| match v {
        FeedValue::Null => Value::Null,
        v => Value::String(v.to_string()),
    };
    let mut parts = Vec::new();
    if let Some(sort) = &cursor.sort {
        parts.push(text(sort));
    }
    parts.push(Value::String(cursor.tenant.to_string()));
    parts.extend(cursor.key.iter().map(text));
    Value::Array(parts).to_string()
}

fn parse_cursor(table: &Browsable, sort: Option<usize>, raw: &str) -> Option<BrowseCursor> {
    let parts: Vec<Value> = serde_json::from_str(raw).ok()?;
    let mut parts = parts.into_iter();
    // Only what the listing hands out: text (no NUL, which no column holds) of the column's type, and no value
    // only where a column may have none (never a key's).
    let typed = |v: Value, ty: &ColumnType, may_be_empty: bool| match v {
        Value::Null if may_be_empty => Some(FeedValue::Null),
        Value::String(s) if !s.contains('\0') => parse_typed(&s, ty).ok(),
        _ => None,
    };
    let sort = match sort {
        None => None,
        Some(c) => {
            let column = &table.columns[c];
            Some(typed(parts.next()?, &column.ty, !column.in_key)?)
        }
    };
    let tenant: TenantId = parts.next()?.as_str()?.parse().ok()?;
    let mut key = Vec::new();
    for &k in &table.key {
        key.push(typed(parts.next()?, &table.columns[k].ty, false)?);
    }
    parts
        .next()
        .is_none()
        .then_some(BrowseCursor { sort, tenant, key })
}

/// The query string of everything but the page (`after`), and of everything but the page and the order.
fn carried(query: &HashMap<String, String>, without: &[&str]) -> String {
    let mut pairs: Vec<(&String, &String)> = query
        .iter()
        .filter(|(k, v)| !without.contains(&k.as_str()) && !v.is_empty())
        .collect();
    pairs.sort();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// One page, and the cursor of the next if the page was full.
async fn page(
    state: &AppState,
    (table, built): &(Browsable, bool),
    query: &BrowseQuery,
) -> Result<(Vec<BrowseRow>, Option<String>), ApiError> {
    if !built {
        return Ok((Vec::new(), None));
    }
    let rows = state.store.browse(table, query).await?;
    let next = (rows.len() as i64 == query.limit)
        .then(|| rows.last().map(|r| cursor_text(&r.cursor(table, query))))
        .flatten();
    Ok((rows, next))
}

pub struct ColumnView {
    pub name: String,
    pub ty: &'static str,
    /// `text`, `choice` (with `choices`), `range`.
    pub filter: &'static str,
    pub choices: Vec<String>,
    pub value: String,
    pub min: String,
    pub max: String,
    /// The header's sort link, and the order now (`▲`, `▼` or nothing).
    pub sort_link: String,
    pub sorted: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_data.html")]
pub struct DataPage {
    pub nav: AdminNav,
    pub table: String,
    pub tables: Vec<String>,
    pub columns: Vec<ColumnView>,
    pub tenant: String,
    pub rows: Vec<(String, Vec<String>)>,
    pub first: String,
    pub json: String,
    pub next: Option<String>,
    pub export: String,
    pub bookings: bool,
}

fn tables(state: &AppState) -> Vec<String> {
    state
        .options
        .feeds
        .iter()
        .map(|f| f.name().to_owned())
        .chain([BOOKINGS.to_owned()])
        .collect()
}

/// `GET /admin/data`: the first table.
pub async fn data_index(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
) -> Result<Response, PageError> {
    if operator(&state, &headers, client, &visit).await?.is_none() {
        return Ok(see_other("/admin/login"));
    }
    let first = tables(&state).into_iter().next().unwrap_or_default();
    Ok(see_other(&format!("/admin/data/{first}")))
}

/// `GET /admin/data/{table}`.
pub async fn data_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(name): Path<String>,
    params::Params(query): params::Params,
) -> Result<Response, PageError> {
    let Some(operator) = operator(&state, &headers, client, &visit).await? else {
        return Ok(see_other("/admin/login"));
    };
    let target = browsable(&state, &name).await?;
    let table = &target.0;
    let mut errors = FieldErrors::new();
    let browse = parse(&state, &operator, table, &query, &mut errors).await?;
    errors.into_result().map_err(ApiError::Invalid)?;
    let (rows, next) = page(&state, &target, &browse).await?;
    let slugs = params::tenant_slugs(&state).await?;
    let filters = carried(&query, &["after", "sort", "dir"]);
    let base = format!("/admin/data/{name}");
    let columns = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let get = |suffix: &str| {
                let key = match suffix {
                    "" => c.name.clone(),
                    s => format!("{}.{s}", c.name),
                };
                query.get(&key).cloned().unwrap_or_default()
            };
            let here = browse.sort == Some(i);
            let dir = if here && !browse.descending {
                "desc"
            } else {
                "asc"
            };
            let sep = if filters.is_empty() { "" } else { "&" };
            ColumnView {
                name: c.name.clone(),
                ty: c.ty.name(),
                filter: match &c.ty {
                    ColumnType::Text => "text",
                    ColumnType::Enum(_) | ColumnType::Boolean => "choice",
                    _ => "range",
                },
                choices: match &c.ty {
                    ColumnType::Enum(values) => values.clone(),
                    ColumnType::Boolean => vec!["true".into(), "false".into()],
                    _ => Vec::new(),
                },
                value: get(""),
                min: get("min"),
                max: get("max"),
                sort_link: format!("{base}?{filters}{sep}sort={}&dir={dir}", c.name),
                sorted: match (here, browse.descending) {
                    (false, _) => "",
                    (true, false) => "▲",
                    (true, true) => "▼",
                },
            }
        })
        .collect();
    let shown = carried(&query, &["after"]);
    let sep = if shown.is_empty() { "" } else { "&" };
    let next = next.map(|cursor| {
        let after = serde_urlencoded::to_string([("after", cursor)]).unwrap_or_default();
        format!("{base}?{shown}{sep}{after}")
    });
    Ok(DataPage {
        nav: AdminNav::of(&operator),
        bookings: name == BOOKINGS,
        tables: tables(&state),
        tenant: query.get("tenant").cloned().unwrap_or_default(),
        rows: rows
            .iter()
            .map(|r| {
                (
                    slugs
                        .get(&r.tenant_id)
                        .map(TenantSlug::to_string)
                        .unwrap_or_default(),
                    r.values.iter().map(ToString::to_string).collect(),
                )
            })
            .collect(),
        first: format!("{base}?{shown}"),
        json: format!("/admin/api/data/{name}?{shown}"),
        export: format!("{base}/export.csv?{}", carried(&query, &["after", "limit"])),
        next,
        table: name,
        columns,
    }
    .into_response())
}

/// `GET /admin/api/data/{table}`.
#[utoipa::path(
    get,
    path = "/admin/api/data/{table}",
    operation_id = "admin_data",
    description = "One keyset page of a feed\'s table or the bookings; per-column filters by type (`c`, `c.eq`, `c.min`, `c.max`), `sort`, `dir`, `after`, `limit`, `tenant`.",
    params(
        ("table" = String, Path, description = "A declared feed, or bookings"),
        ("sort" = Option<String>, Query, description = "A column of the table", pattern = r"^[^\x00]*$"),
        ("dir" = Option<String>, Query, description = "asc or desc", pattern = "^(asc|desc)?$"),
        ("after" = Option<String>, Query, description = "The cursor the previous page gave", pattern = r"^[^\x00]*$"),
        ("limit" = Option<u32>, Query, description = "1 to 1000", minimum = 1, maximum = 1000),
        ("tenant" = Option<String>, Query, description = "Tenant slug", pattern = r"^([a-z0-9][a-z0-9-]{0,38}[a-z0-9])?$"),
    ),
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        (status = 404, description = "`not_found`: no such table, or another tenant's", body = ErrorJson),
        AdminErrors,
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn data_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(name): Path<String>,
    params::Params(query): params::Params,
) -> Result<Json<Value>, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let target = browsable(&state, &name).await?;
    let table = &target.0;
    let mut errors = FieldErrors::new();
    let browse = parse(&state, &operator, table, &query, &mut errors).await?;
    errors.into_result().map_err(ApiError::Invalid)?;
    let (rows, next) = page(&state, &target, &browse).await?;
    let slugs = params::tenant_slugs(&state).await?;
    let columns: Vec<Value> = table
        .columns
        .iter()
        .map(|c| json!({ "name": c.name, "type": c.ty.name() }))
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut row = serde_json::Map::new();
            row.insert(
                "tenant".into(),
                json!(slugs.get(&r.tenant_id).map(TenantSlug::as_str)),
            );
            for (c, v) in table.columns.iter().zip(&r.values) {
                row.insert(c.name.clone(), json_value(v));
            }
            Value::Object(row)
        })
        .collect();
    Ok(Json(
        json!({ "table": name, "columns": columns, "rows": rows, "next": next }),
    ))
}

fn json_value(v: &FeedValue) -> Value {
    match v {
        FeedValue::Null => Value::Null,
        FeedValue::Integer(n) => json!(n),
        FeedValue::Boolean(b) => json!(b),
        other => Value::String(other.to_string()),
    }
}

/// `GET /admin/data/{table}/export.csv`: every matching row, streamed.
pub async fn export_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    visit: Visit,
    Path(name): Path<String>,
    params::Params(query): params::Params,
) -> Result<Response, ApiError> {
    let operator = require_operator(&state, &headers, client, &visit).await?;
    let (table, built) = browsable(&state, &name).await?;
    let mut errors = FieldErrors::new();
    let mut browse = parse(&state, &operator, &table, &query, &mut errors).await?;
    errors.into_result().map_err(ApiError::Invalid)?;
    browse.limit = EXPORT_PAGE;
    let slugs = params::tenant_slugs(&state).await?;
    let mut header = vec!["tenant".to_owned()];
    header.extend(table.columns.iter().map(|c| c.name.clone()));
    let first = csv_lines(std::iter::once(header));
    // Each step reads one page after the last and sends it as one chunk; a failed read ends the body early
    // (the client sees a cut download, and the log says why).
    let pages = futures::stream::unfold(built.then_some(browse), move |next| {
        let (state, table, slugs) = (state.clone(), table.clone(), slugs.clone());
        async move {
            let query = next?;
            match state.store.browse(&table, &query).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let more = (rows.len() as i64 == query.limit).then(|| BrowseQuery {
                        after: rows.last().map(|r| r.cursor(&table, &query)),
                        ..query.clone()
                    });
                    let lines = csv_lines(rows.iter().map(|r| {
                        std::iter::once(
                            slugs
                                .get(&r.tenant_id)
                                .map(TenantSlug::to_string)
                                .unwrap_or_default(),
                        )
                        .chain(r.values.iter().map(ToString::to_string))
                        .collect()
                    }));
                    Some((Ok::<_, std::io::Error>(lines), more))
                }
                Err(e) => {
                    tracing::error!(error = %skybook_domain::ErrorChain(&e), "data export cut short");
                    Some((
                        Err(std::io::Error::other("the export could not read on")),
                        None,
                    ))
                }
            }
        }
    });
    let body = futures::StreamExt::chain(futures::stream::once(async { Ok(first) }), pages);
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Records as CSV lines (RFC 4180: quoted when they must be).
fn csv_lines(records: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    for record in records {
        let _ = out.write_record(&record);
    }
    out.into_inner().unwrap_or_default()
}
