//! Turning the command line's text into typed configuration. Every error is one line that names the variable
//! (and flag) and says what was expected, because it is the first thing an operator reads in a failing pod.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use secrecy::SecretString;
use skybook_booking::SentinelConfig;
use skybook_clients::ClientCredentials;
use skybook_domain::{Email, RetryPolicy, SecretKey, TenantSlug};
use skybook_web::probes::MetricsAccess;
use skybook_web::site::{SessionOptions, SiteOptions};
use skybook_web::throttle::{Limit, ThrottleOptions};
use url::Url;

use crate::cli::{BackgroundArgs, FeedSourceArgs, PaymentsArgs, SiteArgs};

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
    let hosts = raw
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    if hosts
        .rsplit_once('@')
        .map_or(hosts, |(_, h)| h)
        .contains(',')
        || raw.contains("target_session_attrs")
    {
        return Err(invalid(
            NAME,
            &skybook_storage::redact(raw),
            "several hosts are not supported: give the cluster's read-write endpoint (docs/replication.md)",
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

/// The pipeline's retry of transient database errors, bounded by `--database-retry-budget`.
pub fn database_retry(raw: &str) -> Result<RetryPolicy> {
    let budget = duration(
        "SKYBOOK_DATABASE_RETRY_BUDGET (--database-retry-budget)",
        raw,
    )?;
    Ok(RetryPolicy::database_within(budget))
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
    let credentials = credentials(
        ("PAYMENTS", "payment"),
        [
            &args.payments_token_url,
            &args.payments_client_id,
            &args.payments_client_secret,
        ],
    )?;
    Ok(PaymentsConfig { url, credentials })
}

/// OAuth2 client credentials from `SKYBOOK_<WHAT>_TOKEN_URL`, `_CLIENT_ID` and `_CLIENT_SECRET` (`parts`, in
/// that order): all three, or none (then an auth proxy in front injects credentials).
fn credentials(
    (what, label): (&str, &str),
    parts: [&Option<String>; 3],
) -> Result<Option<ClientCredentials>> {
    let given = parts
        .iter()
        .filter(|p| p.as_deref().is_some_and(|v| !v.trim().is_empty()))
        .count();
    let flag = what.to_lowercase();
    Ok(match given {
        0 => None,
        3 => Some(ClientCredentials {
            token_url: http_url(
                &format!("SKYBOOK_{what}_TOKEN_URL (--{flag}-token-url)"),
                parts[0].as_deref().unwrap_or_default(),
            )?,
            client_id: parts[1].clone().unwrap_or_default(),
            client_secret: SecretString::from(parts[2].clone().unwrap_or_default()),
            scope: None,
            audience: None,
            extra_params: Vec::new(),
        }),
        _ => bail!(
            "incomplete {label} credentials: set all of SKYBOOK_{what}_TOKEN_URL, SKYBOOK_{what}_CLIENT_ID and \
             SKYBOOK_{what}_CLIENT_SECRET, or none (then an auth proxy must inject credentials)"
        ),
    })
}

/// Where the partners' feeds are (`SKYBOOK_FEEDS_URL`, the sandbox or the auth proxy in front of the partner)
/// and how to get in: `None` when no URL is set (imports then come from files only).
pub fn feeds(args: &FeedSourceArgs) -> Result<Option<(Url, Option<ClientCredentials>)>> {
    let Some(raw) = args.feeds_url.as_deref().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let url = http_url("SKYBOOK_FEEDS_URL (--feeds-url)", raw)?;
    let credentials = credentials(
        ("FEEDS", "feed"),
        [
            &args.feeds_token_url,
            &args.feeds_client_id,
            &args.feeds_client_secret,
        ],
    )?;
    Ok(Some((url, credentials)))
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

/// A duration as [`duration`] reads it, or `0` (none).
pub fn duration_or_zero(name: &str, raw: &str) -> Result<Duration> {
    match raw.trim() {
        "0" | "0s" => Ok(Duration::ZERO),
        _ => duration(name, raw),
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

/// `SKYBOOK_ENABLE_FAULT_INJECTION`: the crash-test hooks, read the same way by every command.
pub fn fault_injection(args: &crate::cli::FaultInjectionArgs) -> Result<bool> {
    flag(
        "SKYBOOK_ENABLE_FAULT_INJECTION",
        args.enable_fault_injection.as_deref(),
    )
}

/// Who may read `/metrics` on the main listener: nobody when it has its own listener; else the bearer of the
/// metrics token; closed without one. (Not the admin token: a scraper's config is no place for it, and
/// `/metrics` would become an unthrottled way to guess it.)
pub fn metrics_access(own_listener: bool, token: Option<&str>) -> Result<MetricsAccess> {
    if own_listener {
        return Ok(MetricsAccess::Elsewhere);
    }
    match token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() < 16 => Err(invalid(
            "SKYBOOK_METRICS_TOKEN (--metrics-token)",
            "(hidden)",
            "must be at least 16 characters",
        )),
        Some(t) => Ok(MetricsAccess::Bearer(SecretString::from(t.to_owned()))),
        None => Ok(MetricsAccess::Elsewhere),
    }
}

/// The per-client throttles: `lookups` and `admin` attempts per minute (each also the burst), 1 to 100000.
pub fn throttle(lookups: &str, admin: &str) -> Result<ThrottleOptions> {
    let per_minute = |name: &str, raw: &str| match raw.trim().parse::<u32>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(Limit {
            per_minute: n,
            burst: n,
        }),
        _ => Err(invalid(
            name,
            raw,
            "expected a whole number from 1 to 100000",
        )),
    };
    Ok(ThrottleOptions {
        booking_lookup: per_minute("SKYBOOK_LOOKUPS_PER_MINUTE (--lookups-per-minute)", lookups)?,
        admin_sign_in: per_minute(
            "SKYBOOK_ADMIN_ATTEMPTS_PER_MINUTE (--admin-attempts-per-minute)",
            admin,
        )?,
        ..ThrottleOptions::default()
    })
}

/// How emails leave.
pub enum MailTransport {
    Smtp(SecretString),
    /// `.eml` files in this directory (the demo without an SMTP server).
    Files(std::path::PathBuf),
    /// Nowhere: emails wait in the outbox (and the sentinel alerts on them).
    Off,
}

/// The background workers' settings.
pub struct BackgroundConfig {
    pub mail: MailTransport,
    pub mail_from: skybook_notify::Mailbox,
    pub webhook: Option<Url>,
    pub ops_email: Option<Email>,
    pub sentinel_schedule: skybook_worker::Schedule,
    pub sentinel: SentinelConfig,
    pub job_lease: Duration,
    /// Registers the `debug.slow` job kind (`SKYBOOK_ENABLE_FAULT_INJECTION=1`), for crash tests.
    pub fault_injection: bool,
    /// The importer's schedules and jobs (`serve` and `worker` prepare them at startup).
    pub imports: Option<crate::imports::Imports>,
}

/// The sentinel's job, as cron enqueues it.
pub const SENTINEL_JOB: &str = "sentinel";

/// Background settings; `demo_mail_dir` is where the demo writes emails when no SMTP server is configured, and
/// `default_schedule` the sentinel's schedule when none is given.
pub fn background(
    args: &BackgroundArgs,
    demo_mail_dir: Option<std::path::PathBuf>,
    default_schedule: &str,
) -> Result<BackgroundConfig> {
    let mail = match args.smtp_url.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => {
            let ok = Url::parse(raw)
                .ok()
                .is_some_and(|u| matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some());
            let url = SecretString::from(raw.to_owned());
            if !ok || skybook_notify::mail::SmtpMailer::check_url(&url).is_err() {
                bail!("invalid SKYBOOK_SMTP_URL (--smtp-url): expected smtp://HOST:PORT or smtps://HOST:PORT");
            }
            MailTransport::Smtp(url)
        }
        _ => demo_mail_dir.map_or(MailTransport::Off, MailTransport::Files),
    };
    let mail_from = args.mail_from.parse().map_err(|e| {
        invalid(
            "SKYBOOK_MAIL_FROM (--mail-from)",
            &args.mail_from,
            &format!("expected a mailbox such as \"skybook <bookings@example.com>\" ({e})"),
        )
    })?;
    let webhook = match args.alert_webhook_url.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => Some(http_url("SKYBOOK_ALERT_WEBHOOK_URL (--alert-webhook-url)", raw).map_err(|_| {
            anyhow!("invalid SKYBOOK_ALERT_WEBHOOK_URL (--alert-webhook-url): expected an http(s) URL")
        })?),
        _ => None,
    };
    let ops_email = match args.ops_email.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => Some(
            Email::parse(raw)
                .map_err(|e| invalid("SKYBOOK_OPS_EMAIL (--ops-email)", raw, e.message()))?,
        ),
        _ => None,
    };
    let pattern = args
        .sentinel_schedule
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(default_schedule);
    let job = skybook_storage::NewJob {
        queue: "default".into(),
        kind: SENTINEL_JOB.into(),
        payload: "{}".into(),
        priority: 10,
        max_attempts: 1,
        run_at: chrono::Utc::now(),
        unique_key: None,
        tenant_id: None,
    };
    // Exclusive: a sweep slower than the schedule is not joined by a second one.
    let sentinel_schedule = skybook_worker::Schedule::new("sentinel", pattern, job).map(skybook_worker::Schedule::exclusive).map_err(|_| {
        invalid("SKYBOOK_SENTINEL_SCHEDULE (--sentinel-schedule)", pattern, "expected a cron expression such as \"0 * * * * *\" (seconds first) or \"*/5 * * * *\"")
    })?;
    let alert_after = duration(
        "SKYBOOK_SENTINEL_ALERT_AFTER (--sentinel-alert-after)",
        &args.sentinel_alert_after,
    )?;
    let sentinel = SentinelConfig {
        settle_after: duration(
            "SKYBOOK_SENTINEL_SETTLE_AFTER (--sentinel-settle-after)",
            &args.sentinel_settle_after,
        )?,
        stuck_alert_after: alert_after,
        unsent_email_alert_after: alert_after,
        ..SentinelConfig::default()
    };
    let job_lease = duration("SKYBOOK_JOB_LEASE (--job-lease)", &args.job_lease)?;
    Ok(BackgroundConfig {
        mail,
        mail_from,
        webhook,
        ops_email,
        sentinel_schedule,
        sentinel,
        job_lease,
        fault_injection: false,
        imports: None,
    })
}

/// Starts forwarding panics to Sentry when a DSN is given (keep the guard for the life of the process).
pub fn sentry(dsn: Option<&str>) -> Result<Option<sentry::ClientInitGuard>> {
    let Some(raw) = dsn.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dsn: sentry::types::Dsn = raw
        .parse()
        .map_err(|_| anyhow!("invalid SKYBOOK_SENTRY_DSN (--sentry-dsn): expected a DSN such as https://KEY@HOST/PROJECT"))?;
    Ok(Some(sentry::init(sentry::ClientOptions {
        dsn: Some(dsn),
        release: Some(skybook_crash::RELEASE.into()),
        ..sentry::ClientOptions::default()
    })))
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
