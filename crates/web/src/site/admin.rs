//! Admin sign-in with the deployment's admin token, and the (placeholder) dashboard behind it.

use axum::extract::State;
use axum::http::StatusCode;
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
    let accepted = state
        .options
        .site
        .admin_token
        .as_ref()
        .is_some_and(|t| constant_time_eq(t.expose_secret().as_bytes(), form.token.as_bytes()));
    if accepted {
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

pub async fn logout(
    CsrfForm(visit, _): CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PageError> {
    visit.log_out_admin().await?;
    Ok(see_other("/"))
}

pub async fn dashboard(visit: Visit) -> Result<Response, PageError> {
    if !visit.is_admin().await? {
        return Ok(see_other("/admin/login"));
    }
    Ok(AdminPage {
        csrf: visit.csrf_token().await?,
    }
    .into_response())
}
