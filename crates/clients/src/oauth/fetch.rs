//! One token request over HTTP (RFC 6749 §4.4 client credentials, §5.1/§5.2 responses), with retries.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use super::{AccessToken, ClientCredentials, Inner, JwtClient, TokenError, TokenSource};
use crate::retry::{self, RetryClass};

/// Upper bound for one token request attempt (connect + response). The caller's `reqwest::Client` may set a
/// shorter one; this only guarantees that a silent endpoint cannot hold callers beyond the retry policy.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One failed attempt, before it becomes a [`TokenError`].
#[derive(Debug)]
enum AttemptError {
    Transient {
        cause: String,
        retry_after: Option<Duration>,
    },
    Rejected {
        status: u16,
        error: String,
        description: Option<String>,
    },
    Invalid(String),
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient { cause, .. } => f.write_str(cause),
            Self::Rejected { status, error, .. } => write!(f, "HTTP {status} {error}"),
            Self::Invalid(cause) => f.write_str(cause),
        }
    }
}

impl RetryClass for AttemptError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// RFC 6749 §5.1. `expires_in` is a number by the RFC; some servers send it as a string.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// RFC 6749 §5.2.
#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Requests a token, retrying transient failures with the manager's policy.
pub(super) async fn fetch_with_retries(inner: &Inner) -> Result<AccessToken, TokenError> {
    let name = inner.config.name.clone();
    let result = retry::with_retries(&inner.config.retry, &name, "token", || attempt(inner)).await;
    result.map_err(|e| match e {
        AttemptError::Transient { cause, .. } => TokenError::Unavailable { name, cause },
        AttemptError::Rejected {
            status,
            error,
            description,
        } => TokenError::Rejected {
            name,
            status,
            error,
            description,
        },
        AttemptError::Invalid(cause) => TokenError::InvalidResponse { name, cause },
    })
}

async fn attempt(inner: &Inner) -> Result<AccessToken, AttemptError> {
    match &inner.config.source {
        TokenSource::ClientCredentials(creds) => client_credentials(inner, creds).await,
        TokenSource::PrivateKeyJwt(jwt) => private_key_jwt(inner, jwt).await,
    }
}

async fn client_credentials(
    inner: &Inner,
    creds: &ClientCredentials,
) -> Result<AccessToken, AttemptError> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_id", &creds.client_id),
        ("client_secret", creds.client_secret.expose_secret()),
    ];
    if let Some(scope) = &creds.scope {
        form.push(("scope", scope));
    }
    if let Some(audience) = &creds.audience {
        form.push(("audience", audience));
    }
    form.extend(
        creds
            .extra_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );

    request_token(inner, &creds.token_url, &form, Some(&creds.client_secret)).await
}

/// RFC 7523 §2.2: the client authenticates with a JWT it signs with its private key (`private_key_jwt`).
async fn private_key_jwt(inner: &Inner, jwt: &JwtClient) -> Result<AccessToken, AttemptError> {
    let assertion = jwt
        .assertion()
        .map_err(|e| AttemptError::Invalid(format!("cannot sign the client assertion: {e}")))?;
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_id", &jwt.client_id),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &assertion),
    ];
    if let Some(scope) = &jwt.scope {
        form.push(("scope", scope));
    }
    if let Some(audience) = &jwt.audience {
        form.push(("audience", audience));
    }
    form.extend(
        jwt.extra_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    request_token(inner, &jwt.token_url, &form, None).await
}

/// Posts a token request form and reads the answer (RFC 6749 §5.1 / §5.2).
async fn request_token(
    inner: &Inner,
    token_url: &url::Url,
    form: &[(&str, &str)],
    secret: Option<&SecretString>,
) -> Result<AccessToken, AttemptError> {
    let obtained_at = Instant::now();
    let response = inner
        .http
        .post(token_url.clone())
        .header(ACCEPT, "application/json")
        .form(form)
        .timeout(ATTEMPT_TIMEOUT)
        .send()
        .await
        .map_err(|e| from_reqwest(&e))?;
    let status = response.status();
    let retry_after = retry::retry_after(response.headers());
    let body = response.bytes().await.map_err(|e| from_reqwest(&e))?;

    if status.is_success() {
        return parse_token(inner, &body, obtained_at);
    }
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return Err(AttemptError::Transient {
            cause: format!("token endpoint answered HTTP {status}"),
            retry_after,
        });
    }
    let (error, description) = match serde_json::from_slice::<OAuthErrorBody>(&body) {
        Ok(body) => (
            body.error,
            body.error_description.map(|d| match secret {
                Some(secret) => redact(&d, secret),
                None => d,
            }),
        ),
        Err(_) => (
            status.canonical_reason().unwrap_or("error").to_owned(),
            None,
        ),
    };
    Err(AttemptError::Rejected {
        status: status.as_u16(),
        error,
        description,
    })
}

fn parse_token(
    inner: &Inner,
    body: &[u8],
    obtained_at: Instant,
) -> Result<AccessToken, AttemptError> {
    // serde_json's error names a position and an expectation, never the input, so it is safe to show.
    let parsed: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| AttemptError::Invalid(format!("not a token response: {e}")))?;
    if let Some(kind) = parsed.token_type.as_deref() {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(AttemptError::Invalid(format!(
                "token_type {kind:?} is not Bearer"
            )));
        }
    }
    let ttl = match parsed.expires_in {
        None | Some(serde_json::Value::Null) => inner.config.default_ttl,
        Some(value) => parse_expires_in(&value).ok_or_else(|| {
            AttemptError::Invalid(format!("expires_in {value} is not a number of seconds"))
        })?,
    };
    if ttl.is_zero() {
        return Err(AttemptError::Invalid("expires_in is 0".into()));
    }
    let secret = parsed.access_token;
    if secret.expose_secret().is_empty() {
        return Err(AttemptError::Invalid("empty access_token".into()));
    }
    let mut header = HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
        .map_err(|_| AttemptError::Invalid("access_token is not a valid header value".into()))?;
    header.set_sensitive(true);
    Ok(inner.new_token(secret, header, obtained_at, ttl))
}

fn parse_expires_in(value: &serde_json::Value) -> Option<Duration> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(u32::MAX as f64)))
}

fn from_reqwest(err: &reqwest::Error) -> AttemptError {
    let cause = retry::describe(err);
    if err.is_builder() {
        AttemptError::Invalid(cause)
    } else {
        AttemptError::Transient {
            cause,
            retry_after: None,
        }
    }
}

/// A server's error text could in theory echo what it was sent; never let the secret through.
fn redact(text: &str, secret: &SecretString) -> String {
    let secret = secret.expose_secret();
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_forms() {
        assert_eq!(
            parse_expires_in(&serde_json::json!(3600)),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_expires_in(&serde_json::json!("60")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_expires_in(&serde_json::json!(1.5)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_expires_in(&serde_json::json!(-1)), None);
        assert_eq!(parse_expires_in(&serde_json::json!("soon")), None);
    }

    #[test]
    fn redaction() {
        let secret = SecretString::from("s3cr3t");
        assert_eq!(
            redact("bad secret s3cr3t given", &secret),
            "bad secret [REDACTED] given"
        );
    }
}
