//! What the admin's listings and forms share: a page size within bounds, a tenant named by its slug, the
//! tenants' slugs to show beside their ids, how a time reads, a form's field. Each bad parameter is added to the request's field errors (a `422` naming it).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use skybook_domain::{FieldErrors, TenantId, TenantSlug};

use super::operator::Operator;
use crate::{ApiError, AppState};

/// `limit`: a whole number from 1 to `max`; `default` when absent.
pub(super) fn limit(raw: Option<&String>, errors: &mut FieldErrors, default: i64, max: i64) -> i64 {
    match raw {
        None => default,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.add("limit", format!("must be a whole number from 1 to {max}"));
                default
            }
        },
    }
}

/// A query string's parameters, each given at most once (a repeated one is a `422` naming it: which one was
/// meant is anybody's guess) and without a NUL character; one that does not parse is a `422` too.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).map_err(|_| {
                let mut errors = FieldErrors::new();
                errors.add("query", "is not a well-formed query string");
                ApiError::Invalid(errors)
            })?;
        let mut params = HashMap::with_capacity(pairs.len());
        let mut errors = FieldErrors::new();
        for (name, value) in pairs {
            if params.contains_key(&name) {
                errors.add(&name, "is given more than once");
            }
            // No text in the database may hold one (PostgreSQL refuses it outright).
            if value.contains('\0') {
                errors.add(&name, "must not contain a NUL character");
            }
            params.insert(name, value);
        }
        errors.into_result().map_err(ApiError::Invalid)?;
        Ok(Self(params))
    }
}

/// `tenant`: the slug of an existing tenant `operator` may see (blank: none), and what a listing is then
/// confined to: for a tenant operator, always its own tenant (another tenant's slug is "no tenant", as if it did
/// not exist).
pub(super) async fn tenant(
    state: &AppState,
    operator: &Operator,
    raw: Option<&str>,
    errors: &mut FieldErrors,
) -> Result<Option<TenantId>, ApiError> {
    let Some(slug) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(operator.tenant());
    };
    let Some(slug) = errors.check("tenant", TenantSlug::parse(slug)) else {
        return Ok(operator.tenant());
    };
    match state.store.tenant_by_slug(&slug).await? {
        Some(tenant) if operator.sees(Some(tenant.id)) => Ok(Some(tenant.id)),
        _ => {
            errors.add("tenant", format!("no tenant {slug}"));
            Ok(operator.tenant())
        }
    }
}

/// Every tenant's slug, by id.
pub(super) async fn tenant_slugs(
    state: &AppState,
) -> Result<HashMap<TenantId, TenantSlug>, ApiError> {
    Ok(state
        .store
        .tenants()
        .await?
        .into_iter()
        .map(|t| (t.id, t.slug))
        .collect())
}

/// A time as the admin pages show it.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The first value of the form field `name`, trimmed.
pub(super) fn form_value(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
}
