//! Telling the operators: every alert row (the sentinel's findings, new crash groups) is delivered to the
//! optional webhook (Slack-compatible `{"text": ...}`) and the optional ops address. The row is written first
//! and is what the admin page shows, so a finding is never lost when a channel is down; delivery is retried
//! with backoff until every configured channel has taken it (at least once).

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use chrono::Utc;
use skybook_domain::{Email, RetryPolicy};
use skybook_storage::{Alert, Store};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::mail::{Mailer, OutgoingEmail};

/// Where alerts go besides the admin page.
#[derive(Clone, Default)]
pub struct AlertChannels {
    /// POSTed `{"text": ...}` (Slack incoming-webhook compatible).
    pub webhook: Option<Url>,
    /// Mailed through the same mailer as the confirmations.
    pub ops_email: Option<(Email, Arc<dyn Mailer>)>,
}

#[derive(Debug, Clone)]
pub struct AlertDispatcherConfig {
    pub lease: Duration,
    pub idle_poll: Duration,
    pub retry: RetryPolicy,
}

impl Default for AlertDispatcherConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_secs(2),
            retry: RetryPolicy {
                initial_delay: Duration::from_secs(5),
                max_delay: Duration::from_secs(600),
                max_retries: usize::MAX,
                max_elapsed: Duration::MAX,
            },
        }
    }
}

pub struct AlertDispatcher {
    store: Store,
    http: reqwest::Client,
    channels: AlertChannels,
    config: AlertDispatcherConfig,
}

#[derive(Template)]
#[template(
    source = "<pre style=\"font: inherit; white-space: pre-wrap;\">{{ text }}</pre>",
    ext = "html"
)]
struct AlertHtml<'a> {
    text: &'a str,
}

impl AlertDispatcher {
    pub fn new(
        store: Store,
        http: reqwest::Client,
        channels: AlertChannels,
        config: AlertDispatcherConfig,
    ) -> Self {
        Self {
            store,
            http,
            channels,
            config,
        }
    }

    pub async fn run(&self, cancel: CancellationToken) -> anyhow::Result<()> {
        let never = tokio::sync::Notify::new();
        crate::poll_until_cancelled(&cancel, self.config.idle_poll, &never, || self.run_once())
            .await
    }

    /// Delivers the undelivered alerts that are due. Returns how many were attempted.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let lease = chrono::Duration::from_std(self.config.lease)?;
        let alerts = self
            .store
            .claim_alert_deliveries(Utc::now(), lease, 16)
            .await?;
        for alert in &alerts {
            match self.deliver(alert).await {
                Ok(()) => {
                    self.store.alert_delivered(alert.id, Utc::now()).await?;
                    metrics::counter!("skybook_alert_deliveries_total", "outcome" => "delivered")
                        .increment(1);
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    let delay = self
                        .config
                        .retry
                        .attempt_delay(alert.delivery_attempts.max(1) as u32, rand::random());
                    tracing::warn!(alert.kind = %alert.kind, alert.subject = %alert.subject, %error, "alert delivery failed; will retry");
                    metrics::counter!("skybook_alert_deliveries_total", "outcome" => "retry")
                        .increment(1);
                    let retry_at =
                        Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    self.store
                        .alert_delivery_failed(alert.id, &error, retry_at)
                        .await?;
                }
            }
        }
        Ok(alerts.len())
    }

    async fn deliver(&self, alert: &Alert) -> anyhow::Result<()> {
        let text = summary(alert);
        if let Some(url) = &self.channels.webhook {
            let response = self
                .http
                .post(url.clone())
                .json(&serde_json::json!({ "text": text }))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("webhook: {}", e.without_url()))?;
            anyhow::ensure!(
                response.status().is_success(),
                "webhook: HTTP {}",
                response.status()
            );
        }
        if let Some((to, mailer)) = &self.channels.ops_email {
            let email = OutgoingEmail {
                message_id: format!("<alert-{}@skybook>", alert.id),
                to: to.clone(),
                subject: format!("[skybook alert] {}: {}", alert.kind, alert.message),
                html: AlertHtml { text: &text }.render()?,
                text,
            };
            mailer.send(&email).await?;
        }
        Ok(())
    }
}

/// The alert as a few lines of text: what, when, and its particulars.
pub fn summary(alert: &Alert) -> String {
    let mut text = format!(
        "[skybook] {}: {}\nsubject: {}\nraised: {}",
        alert.kind,
        alert.message,
        alert.subject,
        alert
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    if let Some(tenant) = alert.tenant_id {
        text.push_str(&format!("\ntenant: {tenant}"));
    }
    if let Ok(serde_json::Value::Object(details)) = serde_json::from_str(&alert.details) {
        for (key, value) in details {
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            text.push_str(&format!("\n{key}: {value}"));
        }
    }
    text
}
