//! The OAuth2 authorisation server: `POST /oauth/token`, client-credentials grant only (RFC 6749
//! §4.4), with the client authenticating by form fields or HTTP Basic (§2.3.1), or with a
//! `private_key_jwt` assertion (RFC 7523, see `jwt`). Issued tokens are opaque random strings; only
//! their SHA-256 is stored (database and memory), so a leaked `sandbox.db` holds no usable
//! credential.

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::error::OAuthError;
use crate::ids::{constant_time_eq, new_id, now_millis, token_hash};
use crate::jwt;
use crate::state::{AppState, Counters};

/// `POST /oauth/token`.
#[tracing::instrument(name = "oauth_token", skip_all)]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    match issue(&state, &headers, form).await {
        Ok(response) => response,
        Err(error) => {
            Counters::bump(&state.counters.token_requests_failed);
            tracing::info!(error = error.error, "token request refused");
            error.into_response()
        }
    }
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, OAuthError> {
    if state.faults.token_endpoint_down() {
        return Err(OAuthError::temporarily_unavailable());
    }
    let Form(form) = form.map_err(|_| {
        OAuthError::invalid_request("expected an application/x-www-form-urlencoded body")
    })?;
    let client_id = authenticate_client(state, headers, &form)?;
    match form.get("grant_type").map(String::as_str) {
        None | Some("") => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::unsupported_grant_type()),
    }
    let scope = form.get("scope").filter(|scope| !scope.is_empty());

    let access_token = new_id("sbx_at_");
    let hash = token_hash(&access_token);
    let ttl = state.config.token_ttl;
    let issued_at_ms = now_millis();
    let expires_at_ms =
        issued_at_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let rowid = state
        .store
        .insert_access_token(
            &hash,
            &client_id,
            scope.map(String::as_str),
            issued_at_ms,
            expires_at_ms,
        )
        .await
        .map_err(|error| {
            tracing::error!(%error, "storing an access token failed");
            OAuthError::server_error()
        })?;
    state.tokens.insert(hash, rowid, expires_at_ms);
    tracing::info!(client_id, "access token issued");

    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The authenticated client's id: by a `private_key_jwt` assertion when the form carries one,
/// else by id and secret (HTTP Basic or form fields). Mixing the two is `invalid_request` (RFC 6749
/// §2.3: one authentication method per request).
fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let assertion_type = form.get("client_assertion_type");
    let assertion = form.get("client_assertion");
    if assertion_type.is_none() && assertion.is_none() {
        let (client_id, client_secret) = client_credentials(headers, form)?;
        return if client_matches(state, &client_id, &client_secret) {
            Ok(client_id)
        } else {
            Err(OAuthError::invalid_client())
        };
    }
    if headers.contains_key(AUTHORIZATION) || form.contains_key("client_secret") {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not a secret and an assertion",
        ));
    }
    let (Some(jwt::ASSERTION_TYPE), Some(assertion)) =
        (assertion_type.map(String::as_str), assertion)
    else {
        tracing::info!(
            ?assertion_type,
            "client assertion refused: missing or unsupported"
        );
        return Err(OAuthError::invalid_client());
    };
    let claimed_id = form.get("client_id").map(String::as_str);
    jwt::verify_assertion(&state.config.jwt_clients, claimed_id, assertion).map_err(|refused| {
        tracing::info!(reason = %refused, "client assertion refused");
        OAuthError::invalid_client()
    })
}

/// The client's `(id, secret)`, from HTTP Basic if present, else from the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, String), OAuthError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| OAuthError::invalid_client())?;
        let (scheme, encoded) = value
            .split_once(' ')
            .ok_or_else(OAuthError::invalid_client)?;
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| OAuthError::invalid_client())?;
            let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(OAuthError::invalid_client)?;
            return Ok((id.to_owned(), secret.to_owned()));
        }
    }
    match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// Whether the credentials are the configured client's. RFC 6749 §2.3.1 has Basic credentials
/// form-urlencoded before base64, which most clients skip; both spellings are accepted.
fn client_matches(state: &AppState, id: &str, secret: &str) -> bool {
    let expected_id = state.config.client_id.as_bytes();
    let expected_secret = state.config.client_secret.expose_secret().as_bytes();
    let matches = |id: &str, secret: &str| {
        constant_time_eq(id.as_bytes(), expected_id)
            & constant_time_eq(secret.as_bytes(), expected_secret)
    };
    matches(id, secret) || matches(&form_urldecode(id), &form_urldecode(secret))
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte); a malformed
/// escape stays as written.
fn form_urldecode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::form_urldecode;

    #[test]
    fn form_urldecode_handles_plus_escapes_and_malformed_input() {
        assert_eq!(form_urldecode("a+b%3Ac%2f"), "a b:c/");
        assert_eq!(form_urldecode("100%"), "100%");
        assert_eq!(form_urldecode("%zz%+1"), "%zz% 1");
        assert_eq!(form_urldecode("sandbox-secret"), "sandbox-secret");
    }
}
