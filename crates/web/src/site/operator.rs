//! Who is at the admin, and what they may see and do.
//!
//! Two kinds of operator sign in with a token, either through the sign-in form (a session) or as
//! `Authorization: Bearer <token>` (scripts):
//! - the **platform admin**, with the deployment's admin token (`SKYBOOK_ADMIN_TOKEN`): everything, every tenant;
//! - a **tenant operator**, with a token from `skybook admin token create --tenant T [--read-only]` (stored as
//!   its hash): that tenant's jobs, imports, data, bookings, alerts and audit entries only. What is the platform's
//!   (queues, cron schedules, crash reports) is the platform admin's alone. A read-only operator sees what its
//!   tenant's operator sees and can change nothing.
//!
//! Policy, so no route has to invent its own:
//! - not signed in: the pages redirect to the sign-in form, the JSON answers `401`;
//! - another tenant's job, run, row or booking: `404`, exactly as if it did not exist (a tenant operator learns
//!   nothing of other tenants, not even that an id is taken);
//! - a platform-only page or route for a tenant operator, an action for a read-only one: `403`;
//! - every action is written to the audit log with who acted, on what, how many rows, when, and the tenant.
//!
//! A session of a tenant operator holds the token's id, and each request checks that the token still stands: a
//! revoked token ends its sessions at once. A wrong bearer token counts against the client's sign-in throttle,
//! as a sign-in does; a client over it is refused before its token is judged.

use axum::http::{header, HeaderMap};
use secrecy::ExposeSecret;
use serde_json::json;
use skybook_domain::{OperatorTokenHash, OperatorTokenId, TenantId};
use skybook_storage::NewAlert;

use super::session::{constant_time_eq, Visit};
use crate::throttle::Client;
use crate::{ApiError, AppState};

/// Whose data an operator sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Platform,
    Tenant(TenantId),
}

/// A signed-in operator.
#[derive(Debug, Clone)]
pub(super) struct Operator {
    pub scope: Scope,
    pub read_only: bool,
    token: Option<OperatorTokenId>,
    bearer: bool,
    client: Client,
}

impl Operator {
    /// The tenant a tenant operator is confined to; `None` for the platform admin.
    pub fn tenant(&self) -> Option<TenantId> {
        match self.scope {
            Scope::Platform => None,
            Scope::Tenant(t) => Some(t),
        }
    }

    /// The token a tenant operator signed in with.
    pub fn token_id(&self) -> Option<OperatorTokenId> {
        self.token
    }

    pub fn is_platform(&self) -> bool {
        self.scope == Scope::Platform
    }

    /// Whether something of `tenant` (`None`: the platform's own) is this operator's to see.
    pub fn sees(&self, tenant: Option<TenantId>) -> bool {
        match self.scope {
            Scope::Platform => true,
            Scope::Tenant(own) => tenant == Some(own),
        }
    }

    /// `Ok` when `tenant`'s thing is this operator's; else `404 what`, as if it did not exist.
    pub fn check_sees(&self, tenant: Option<TenantId>, what: &'static str) -> Result<(), ApiError> {
        match self.sees(tenant) {
            true => Ok(()),
            false => Err(ApiError::NotFound(what)),
        }
    }

    /// `Ok` for the platform admin; `403` for a tenant operator.
    pub fn require_platform(&self) -> Result<(), ApiError> {
        match self.is_platform() {
            true => Ok(()),
            false => Err(ApiError::Forbidden("platform_admin_only")),
        }
    }

    /// Whether the token came as a bearer header (a script) rather than with a signed-in session.
    pub fn by_bearer(&self) -> bool {
        self.bearer
    }

    /// Who acted, for the audit log.
    pub fn actor(&self) -> String {
        let how = if self.bearer { "token" } else { "session" };
        match self.token {
            None => format!("admin ({how}) from {}", self.client.0),
            Some(id) => format!("operator {id} ({how}) from {}", self.client.0),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, as RFC 7235 has it).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The operator `presented` (a token typed into the form or sent as a bearer header) signs in as, if any.
pub(super) async fn by_token(
    state: &AppState,
    presented: &str,
    client: Client,
    bearer: bool,
) -> Result<Option<Operator>, ApiError> {
    let platform = state
        .options
        .site
        .admin_token
        .as_ref()
        .is_some_and(|t| constant_time_eq(t.expose_secret().as_bytes(), presented.as_bytes()));
    if platform {
        return Ok(Some(Operator {
            scope: Scope::Platform,
            read_only: false,
            token: None,
            bearer,
            client,
        }));
    }
    let Some(hash) = OperatorTokenHash::of_presented(presented) else {
        return Ok(None);
    };
    Ok(state
        .store
        .live_operator_token(&hash)
        .await?
        .map(|t| Operator {
            scope: Scope::Tenant(t.tenant_id),
            read_only: t.read_only,
            token: Some(t.id),
            bearer,
            client,
        }))
}

/// The operator making this request: by its bearer token (throttled like a sign-in), else by its session.
pub(super) async fn operator(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    visit: &Visit,
) -> Result<Option<Operator>, ApiError> {
    if let Some(token) = bearer_token(headers) {
        state.throttles.admin_sign_in.refuse_while_blocked(client)?;
        if let Some(operator) = by_token(state, token, client, true).await? {
            return Ok(Some(operator));
        }
        refused(state, client).await;
        state.throttles.admin_sign_in.attempt(client)?;
    }
    if visit.is_admin().await? {
        return Ok(Some(Operator {
            scope: Scope::Platform,
            read_only: false,
            token: None,
            bearer: false,
            client,
        }));
    }
    let Some(id) = visit.operator_token().await? else {
        return Ok(None);
    };
    Ok(state
        .store
        .live_operator_token_by_id(id)
        .await?
        .map(|t| Operator {
            scope: Scope::Tenant(t.tenant_id),
            read_only: t.read_only,
            token: Some(t.id),
            bearer: false,
            client,
        }))
}

/// The JSON API's gate: the operator, or `401`.
pub(super) async fn require_operator(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    visit: &Visit,
) -> Result<Operator, ApiError> {
    operator(state, headers, client, visit)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// The gate of an admin API that changes something: an operator who may act (not read-only), by bearer token
/// or by session with the session's CSRF token in `X-CSRF-Token` (a form elsewhere must not act in its name).
pub(super) async fn require_operator_to_act(
    state: &AppState,
    headers: &HeaderMap,
    client: Client,
    visit: &Visit,
) -> Result<Operator, ApiError> {
    let operator = require_operator(state, headers, client, visit).await?;
    if !operator.bearer {
        let presented = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if presented.is_empty() || !visit.csrf_matches(presented).await? {
            return Err(ApiError::Forbidden("csrf_token"));
        }
    }
    may_act(&operator)?;
    Ok(operator)
}

/// `403` for a read-only operator.
pub(super) fn may_act(operator: &Operator) -> Result<(), ApiError> {
    match operator.read_only {
        true => Err(ApiError::Forbidden("read_only")),
        false => Ok(()),
    }
}

/// A refused token: logged, and past the failure rate an alert for the operators (once per client).
pub(super) async fn refused(state: &AppState, client: Client) {
    tracing::warn!(client = %client.0, "admin sign-in refused");
    if state.throttles.admin_failures.attempt(client).is_err() {
        let alert = NewAlert {
            tenant_id: None,
            kind: "admin_sign_in_failures",
            subject: client.0.to_string(),
            message: format!("repeated wrong admin tokens from {}", client.0),
            details: json!({ "client": client.0.to_string() }),
        };
        if let Err(e) = state.store.raise_alert(&alert, chrono::Utc::now()).await {
            tracing::error!(error = %skybook_domain::ErrorChain(&e), "could not raise the sign-in alert");
        }
    }
}

/// Writes an operator's action (on `about`'s things, when they are one tenant's) to the audit log, after it
/// happened. Should the write fail, the action stands
/// and the failure is logged as an error (the log is missing an entry).
pub(super) async fn audit(
    state: &AppState,
    operator: &Operator,
    about: Option<TenantId>,
    action: &str,
    target: String,
    affected: u64,
) {
    let entry = skybook_storage::AuditEntry {
        at: chrono::Utc::now(),
        actor: operator.actor(),
        action: action.to_owned(),
        target,
        affected: i64::try_from(affected).unwrap_or(i64::MAX),
        // A tenant operator's own tenant, or the tenant the platform admin acted on: either way the tenant's
        // operators read it.
        tenant_id: operator.tenant().or(about),
    };
    if let Err(e) = state.store.record_audit(&entry).await {
        tracing::error!(error = %skybook_domain::ErrorChain(&e), action, "audit log entry not written");
    }
}

/// The gate of an admin form (a session's `POST`, whose CSRF token `CsrfForm` has checked): an operator who may
/// act.
pub(super) async fn require_operator_for_form(
    state: &AppState,
    client: Client,
    visit: &Visit,
) -> Result<Operator, ApiError> {
    let operator = operator(state, &HeaderMap::new(), client, visit)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    may_act(&operator)?;
    Ok(operator)
}
