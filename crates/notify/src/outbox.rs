//! The outbox sender: hands queued emails to the [`Mailer`] and records each one only once the next hop has
//! accepted it.
//!
//! Delivery is at least once. A sender that dies between the SMTP server's "250 OK" and our record of it
//! leaves the row leased; once the lease lapses another sender sends it again, with the same Message-ID.
//! A failed attempt is retried with the shared [`RetryPolicy`]'s jittered backoff, indefinitely: the
//! sentinel alerts on an email that stays unsent past its threshold.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::future::join_all;
use skybook_domain::{RetryPolicy, CONFIRMATION_EMAIL_KIND};
use skybook_storage::{OutboxEmail, Store};
use tokio_util::sync::CancellationToken;

use crate::mail::{Mailer, OutgoingEmail};

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

    /// The email as it goes out, from the booking as it is now (reads scoped by the row's tenant).
    async fn compose(&self, email: &OutboxEmail) -> anyhow::Result<OutgoingEmail> {
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
                outgoing.to = email.recipient.clone();
                outgoing.message_id = email.message_id.clone();
                Ok(outgoing)
            }
            other => anyhow::bail!("no composer for outbox emails of kind {other:?}"),
        }
    }
}
