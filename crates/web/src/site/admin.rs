//! Admin sign-in with the deployment's admin token, and the (placeholder) dashboard behind it.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use skybook_domain::FieldErrors;

use super::forms::CsrfForm;
use super::session::{constant_time_eq, Visit};
use super::views::{summary, AdminLoginPage, AdminPage};
use super::{see_other, PageError};
use crate::AppState;

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
    CsrfForm(visit, form): CsrfForm<LoginForm>,
) -> Result<Response, PageError> {
    if is_admin_token(&state, &form.token) {
        visit.log_in_admin().await?;
        tracing::info!("admin signed in");
        return Ok(see_other("/admin"));
    }
    tracing::warn!("admin sign-in refused");
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

/// The admin token is accepted as a signed-in session or, for scripts, as `Authorization: Bearer <token>`.
pub async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
) -> Result<Response, PageError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| is_admin_token(&state, token));
    if !bearer && !visit.is_admin().await? {
        return Ok(see_other("/admin/login"));
    }
    Ok(AdminPage {
        csrf: visit.csrf_token().await?,
    }
    .into_response())
}
