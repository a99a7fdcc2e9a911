//! Turning the command line's text into typed configuration. Every error is one line that names the variable
//! (and flag) and says what was expected, because it is the first thing an operator reads in a failing pod.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use secrecy::SecretString;
use skybook_clients::ClientCredentials;
use skybook_domain::{SecretKey, TenantSlug};
use skybook_web::site::{SessionOptions, SiteOptions};
use url::Url;

use crate::cli::{PaymentsArgs, SiteArgs};

fn invalid(name: &str, value: &str, expected: &str) -> anyhow::Error {
    anyhow!("invalid {name} {value:?}: {expected}")
}

pub fn socket_addr(name: &str, raw: &str) -> Result<SocketAddr> {
    raw.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| invalid(name, raw, "expected host:port, e.g. 127.0.0.1:8080"))
}

pub fn required<'a>(name: &str, value: &'a Option<String>) -> Result<&'a str> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => bail!("missing {name}"),
    }
}

pub fn database_url(raw: &str) -> Result<String> {
    const NAME: &str = "SKYBOOK_DATABASE_URL (--database-url)";
    let ok = ["sqlite:", "postgres:", "postgresql:"]
        .iter()
        .any(|p| raw.starts_with(p));
    if !ok {
        return Err(invalid(
            NAME,
            &skybook_storage::redact(raw),
            "expected sqlite://PATH or postgres://USER@HOST/DB",
        ));
    }
    Ok(raw.to_owned())
}

pub fn secret_key(raw: Option<&str>) -> Result<SecretKey> {
    let raw = raw.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
        anyhow!("missing SKYBOOK_SECRET_KEY (--secret-key): every node of a deployment needs the same key of 32+ characters")
    })?;
    SecretKey::parse(raw).map_err(|e| anyhow!("invalid SKYBOOK_SECRET_KEY (--secret-key): {e}"))
}

pub fn http_url(name: &str, raw: &str) -> Result<Url> {
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(invalid(
            name,
            raw,
            "expected an http(s) URL, e.g. http://127.0.0.1:7000",
        )),
    }
}

/// Pool settings from `--database-max-connections` (1..=1000).
pub fn pool(raw: Option<&str>) -> Result<skybook_storage::PoolSettings> {
    let mut settings = skybook_storage::PoolSettings::default();
    if let Some(raw) = raw.filter(|r| !r.trim().is_empty()) {
        settings.max_connections = match raw.trim().parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "SKYBOOK_DATABASE_MAX_CONNECTIONS (--database-max-connections)",
                    raw,
                    "expected a whole number from 1 to 1000",
                ))
            }
        };
    }
    Ok(settings)
}

pub fn seconds(name: &str, raw: &str) -> Result<Duration> {
    match raw.trim().parse::<u64>() {
        Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => Err(invalid(
            name,
            raw,
            "expected a whole number of seconds greater than 0",
        )),
    }
}

/// Where and how skybook reaches its payment provider. (`Debug` is safe: `ClientCredentials` hides its secret.)
#[derive(Debug)]
pub struct PaymentsConfig {
    pub url: Url,
    /// `None`: send no credentials (an auth proxy in front injects them).
    pub credentials: Option<ClientCredentials>,
}

pub fn payments(args: &PaymentsArgs) -> Result<PaymentsConfig> {
    let url = http_url(
        "SKYBOOK_PAYMENTS_URL (--payments-url)",
        required("SKYBOOK_PAYMENTS_URL (--payments-url)", &args.payments_url)?,
    )?;
    let parts = [
        &args.payments_token_url,
        &args.payments_client_id,
        &args.payments_client_secret,
    ];
    let given = parts
        .iter()
        .filter(|p| p.as_deref().is_some_and(|v| !v.trim().is_empty()))
        .count();
    let credentials = match given {
        0 => None,
        3 => Some(ClientCredentials {
            token_url: http_url("SKYBOOK_PAYMENTS_TOKEN_URL (--payments-token-url)", args.payments_token_url.as_deref().unwrap_or_default())?,
            client_id: args.payments_client_id.clone().unwrap_or_default(),
            client_secret: SecretString::from(args.payments_client_secret.clone().unwrap_or_default()),
            scope: None,
            audience: None,
            extra_params: Vec::new(),
        }),
        _ => bail!(
            "incomplete payment credentials: set all of SKYBOOK_PAYMENTS_TOKEN_URL, SKYBOOK_PAYMENTS_CLIENT_ID and \
             SKYBOOK_PAYMENTS_CLIENT_SECRET, or none (then an auth proxy must inject credentials)"
        ),
    };
    Ok(PaymentsConfig { url, credentials })
}

/// `90s`, `15m`, `12h`, `30d` (a bare number is seconds).
pub fn duration(name: &str, raw: &str) -> Result<Duration> {
    let raw_trimmed = raw.trim();
    let (digits, unit) = raw_trimmed.split_at(
        raw_trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(raw_trimmed.len()),
    );
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && scale > 0 => Ok(Duration::from_secs(n.saturating_mul(scale))),
        _ => Err(invalid(
            name,
            raw,
            "expected a duration such as 90s, 15m, 12h or 30d",
        )),
    }
}

/// The website's settings.
pub fn site(args: &SiteArgs) -> Result<SiteOptions> {
    let tenant = TenantSlug::parse(&args.site_tenant).map_err(|e| {
        invalid(
            "SKYBOOK_SITE_TENANT (--site-tenant)",
            &args.site_tenant,
            e.message(),
        )
    })?;
    let idle_timeout = duration(
        "SKYBOOK_SESSION_IDLE_TIMEOUT (--session-idle-timeout)",
        &args.session_idle_timeout,
    )?;
    let absolute_timeout = duration(
        "SKYBOOK_SESSION_ABSOLUTE_TIMEOUT (--session-absolute-timeout)",
        &args.session_absolute_timeout,
    )?;
    let admin_token = match args.admin_token.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) if t.len() < 16 => {
            bail!("invalid SKYBOOK_ADMIN_TOKEN (--admin-token): expected at least 16 characters")
        }
        Some(t) => Some(SecretString::from(t.to_owned())),
    };
    Ok(SiteOptions {
        tenant,
        sessions: SessionOptions {
            secure_cookies: !args.insecure_cookies,
            idle_timeout,
            absolute_timeout,
        },
        admin_token,
    })
}

/// `1`/`true`/`yes` → on; unset, `0`/`false`/`no`/empty → off; anything else is an error.
pub fn flag(name: &str, raw: Option<&str>) -> Result<bool> {
    match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(invalid(name, other, "expected 1 or 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable() {
        let e = socket_addr("SKYBOOK_LISTEN (--listen)", "nope")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid SKYBOOK_LISTEN (--listen) \"nope\""),
            "{e}"
        );
        let e = database_url("mysql://x").unwrap_err().to_string();
        assert!(e.contains("SKYBOOK_DATABASE_URL"), "{e}");
        assert!(database_url("postgres://u:hunter2@h/db").is_ok());
        let e = database_url("mysql://u:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "passwords are redacted: {e}");
        let e = secret_key(Some("short")).unwrap_err().to_string();
        assert!(e.contains("SKYBOOK_SECRET_KEY"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn payment_credentials_are_all_or_nothing() {
        let mut args = PaymentsArgs {
            payments_url: Some("http://127.0.0.1:7000".into()),
            payments_token_url: None,
            payments_client_id: Some("skybook".into()),
            payments_client_secret: None,
        };
        assert!(payments(&args)
            .unwrap_err()
            .to_string()
            .contains("incomplete payment credentials"));
        args.payments_client_id = None;
        assert!(payments(&args).unwrap().credentials.is_none());
        args.payments_url = Some("ftp://x".into());
        assert!(payments(&args)
            .unwrap_err()
            .to_string()
            .contains("SKYBOOK_PAYMENTS_URL"));
    }
}
