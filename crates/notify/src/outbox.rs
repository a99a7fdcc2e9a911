//! The outbox sender: hands queued emails to the [`Mailer`] and records each one only once the next hop has
//! accepted it.
//!
//! Delivery is at least once. A sender that dies between the SMTP server's "250 OK" and our record of it
//! leaves the row leased; once the lease lapses another sender sends it again, with the same Message-ID.
//! A failed attempt is retried with the shared [`RetryPolicy`]'s jittered backoff, indefinitely: the
//! sentinel alerts on an email that stays unsent past its threshold. An email that can never be delivered
//! ([`MailError::Undeliverable`]: a permanent 5xx answer, or a recipient the mailer refuses) is not retried: it
//! is failed for good and alerted (`email_undeliverable`) at once, since the customer has paid and will not
//! hear from us, and only a person can reach them now.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::future::join_all;
use serde_json::json;
use skybook_domain::{Email, RetryPolicy, CONFIRMATION_EMAIL_KIND};
use skybook_storage::{NewAlert, OutboxEmail, Store};
use tokio_util::sync::CancellationToken;

use crate::mail::{MailError, Mailer, OutgoingEmail};

/// The alert raised for an email failed for good; its subject is the outbox email's id.
pub const EMAIL_UNDELIVERABLE_ALERT: &str = "email_undeliverable";

#[derive(Debug, Clone)]
pub struct OutboxSenderConfig {
    /// How long a claimed email is this sender's; longer than the slowest SMTP conversation.
    pub lease: Duration,
    pub batch: i64,
    /// The wait when nothing is due.
    pub idle_poll: Duration,
    pub retry: RetryPolicy,
}

impl Default for OutboxSenderConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            batch: 16,
            idle_poll: Duration::from_secs(1),
            retry: RetryPolicy {
                initial_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(600),
                max_retries: usize::MAX,
                max_elapsed: Duration::MAX,
            },
        }
    }
}

pub struct OutboxSender {
    store: Store,
    mailer: Arc<dyn Mailer>,
    config: OutboxSenderConfig,
    worker_id: String,
    wake: Arc<tokio::sync::Notify>,
}

impl OutboxSender {
    pub fn new(store: Store, mailer: Arc<dyn Mailer>, config: OutboxSenderConfig) -> Self {
        Self {
            store,
            mailer,
            config,
            worker_id: crate::fresh_worker_id(),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified to end an idle wait early (an email was queued).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.wake)
    }

    /// Sends what is due until `cancel` fires.
    pub async fn run(&self, cancel: CancellationToken) -> anyhow::Result<()> {
        crate::poll_until_cancelled(&cancel, self.config.idle_poll, &self.wake, || {
            self.run_once()
        })
        .await
    }

    /// Claims one batch and tries each email once. Returns how many were claimed.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let lease = chrono::Duration::from_std(self.config.lease)?;
        let emails = self
            .store
            .claim_outbox_emails(&self.worker_id, Utc::now(), lease, self.config.batch)
            .await?;
        for result in join_all(emails.iter().map(|email| self.attempt(email))).await {
            result?;
        }
        Ok(emails.len())
    }

    #[tracing::instrument(name = "outbox.send", skip_all, fields(booking.id = %email.booking_id, tenant = %email.tenant_id, kind = %email.kind, attempt = email.attempts))]
    async fn attempt(&self, email: &OutboxEmail) -> anyhow::Result<()> {
        // Bounded well inside the lease, so a slow server cannot keep the email past it (when another sender
        // would send it again).
        let deadline = self.config.lease / 2;
        let send = async {
            let outgoing = self.compose(email).await?;
            self.mailer
                .send(&outgoing)
                .await
                .map_err(anyhow::Error::from)
        };
        let result = match tokio::time::timeout(deadline, send).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!(
                "no answer from the mail server within {deadline:?}"
            )),
        };
        match result {
            Ok(()) => {
                // The server has it: recording that must survive a database blip, or the email goes out again.
                let mark = || {
                    self.store
                        .mark_outbox_sent(email.id, &self.worker_id, Utc::now())
                };
                let marked = {
                    use backon::Retryable;
                    mark.retry(RetryPolicy::database().backoff())
                        .when(skybook_storage::StorageError::is_transient)
                        .await?
                };
                if marked {
                    metrics::counter!("skybook_emails_total", "outcome" => "sent").increment(1);
                    tracing::info!("email handed off");
                } else {
                    tracing::warn!(
                        "email sent after its lease lapsed; another sender may send it again"
                    );
                }
            }
            Err(e)
                if e.downcast_ref::<MailError>()
                    .is_some_and(MailError::is_undeliverable) =>
            {
                self.fail_for_good(email, &e).await?;
            }
            Err(e) => {
                let error = format!("{e:#}");
                let delay = self
                    .config
                    .retry
                    .attempt_delay(email.attempts.max(1) as u32, rand::random());
                let retry_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                metrics::counter!("skybook_emails_total", "outcome" => "retry").increment(1);
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "email not sent; will retry");
                self.store
                    .outbox_attempt_failed(email.id, &self.worker_id, &error, retry_at)
                    .await?;
            }
        }
        Ok(())
    }

    /// Fails the email for good and alerts on it. The alert comes first: raising it again is a no-op (one per
    /// kind and subject), so a sender that dies in between leaves an email that is claimed, refused and failed
    /// again, never one failed without an alert.
    async fn fail_for_good(
        &self,
        email: &OutboxEmail,
        error: &anyhow::Error,
    ) -> anyhow::Result<()> {
        let domain = email.recipient.rsplit_once('@').map_or("", |(_, d)| d);
        // Servers quote the address in their refusal; the alert travels to a webhook and an inbox, so it names
        // the domain only.
        let reason = without_address(&format!("{error:#}"), &email.recipient);
        let alert = NewAlert {
            kind: EMAIL_UNDELIVERABLE_ALERT,
            subject: email.id.to_string(),
            tenant_id: Some(email.tenant_id),
            message: format!(
                "the {} email for booking {} can never be delivered to its address at {domain}: {reason}",
                email.kind, email.booking_id
            ),
            details: json!({
                "booking_id": email.booking_id,
                "message_id": email.message_id,
                "recipient_domain": domain,
                "reason": reason,
                "attempts": email.attempts,
            }),
        };
        if self.store.raise_alert(&alert, Utc::now()).await? {
            metrics::counter!("skybook_alerts_total", "kind" => alert.kind).increment(1);
        }
        let failed = self
            .store
            .mark_outbox_failed(email.id, &self.worker_id, &reason, Utc::now())
            .await?;
        metrics::counter!("skybook_emails_total", "outcome" => "undeliverable").increment(1);
        tracing::warn!(
            %reason,
            recipient.domain = domain,
            marked = failed,
            "email undeliverable; not retried, alerted"
        );
        Ok(())
    }

    /// The email as it goes out, from the booking as it is now (reads scoped by the row's tenant).
    async fn compose(&self, email: &OutboxEmail) -> anyhow::Result<OutgoingEmail> {
        // Before anything else: a recipient queued under looser rules than today's is refused here, for good,
        // whatever else about the booking could be read.
        // What the mailer itself can send to decides, not today's input rules: an address accepted when it was
        // queued is tried unless the mailer cannot even address it.
        let to = email
            .recipient
            .parse::<lettre::Address>()
            .map_err(|e| MailError::Undeliverable(format!("the recipient is not an address ({e})")))
            .and_then(|_| {
                Email::from_stored(&email.recipient)
                    .map_err(|e| MailError::Undeliverable(e.to_string()))
            })?;
        let store = &self.store;
        let tenant = store
            .tenant(email.tenant_id)
            .await?
            .context("tenant not found")?;
        let booking = store
            .booking(tenant.id, email.booking_id)
            .await?
            .context("booking not found")?;
        let flight = store
            .flight(tenant.id, booking.flight_id)
            .await?
            .context("flight not found")?;
        match email.kind.as_str() {
            CONFIRMATION_EMAIL_KIND => {
                let mut outgoing = crate::confirmation::compose(&tenant, &booking, &flight)?;
                // The row is the record of what was promised: its recipient and Message-ID win.
                outgoing.to = to;
                outgoing.message_id = email.message_id.clone();
                Ok(outgoing)
            }
            other => anyhow::bail!("no composer for outbox emails of kind {other:?}"),
        }
    }
}

/// `text` with every occurrence of `address` (in any letter case) replaced by `<recipient>`.
fn without_address(text: &str, address: &str) -> String {
    if address.is_empty() {
        return text.to_owned();
    }
    // ASCII lower-casing keeps byte offsets, so positions found in the lower-cased copy hold in `text`.
    let (haystack, needle) = (text.to_ascii_lowercase(), address.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (at, _) in haystack.match_indices(&needle) {
        out.push_str(&text[rest..at]);
        out.push_str("<recipient>");
        rest = at + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_name_no_address() {
        let reason =
            "SMTP: permanent error (550): 5.1.1 <Reject.Ann@Example.com>: mailbox unavailable";
        assert_eq!(
            super::without_address(reason, "reject.ann@example.com"),
            "SMTP: permanent error (550): 5.1.1 <<recipient>>: mailbox unavailable"
        );
    }
}
