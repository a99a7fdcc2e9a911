//! skybook-notify: what skybook tells people.
//!
//! - [`mail`]: the [`Mailer`] trait, SMTP through lettre and `.eml` files for the demo.
//! - [`confirmation`]: the booking confirmation email (plain text and HTML).
//! - [`outbox`]: the [`OutboxSender`] loop that sends the outbox rows the pipeline writes in Tx 2.
//! - [`alerts`]: the [`AlertDispatcher`] loop that delivers alert rows to a webhook and the ops address.
//!
//! The loops are run by the binary under `skybook-worker`'s supervisor. They read and write only through
//! `skybook-storage`.

pub mod alerts;
pub mod confirmation;
pub mod mail;
pub mod outbox;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use alerts::{AlertChannels, AlertDispatcher, AlertDispatcherConfig};
pub use lettre::message::Mailbox;
pub use mail::{FileMailer, MailError, Mailer, OutgoingEmail, SmtpMailer};
pub use outbox::{OutboxSender, OutboxSenderConfig};

/// A fresh id for this process's claims: a restarted process never inherits its predecessor's leases.
fn fresh_worker_id() -> String {
    format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// Runs `round` until `cancel` fires, waiting `idle` (or until `wake` is notified) after a round that found
/// nothing to do.
async fn poll_until_cancelled<F, Fut>(
    cancel: &CancellationToken,
    idle: Duration,
    wake: &tokio::sync::Notify,
    mut round: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    while !cancel.is_cancelled() {
        if round().await? == 0 {
            tokio::select! {
                () = tokio::time::sleep(idle) => {}
                () = wake.notified() => {}
                () = cancel.cancelled() => {}
            }
        }
    }
    Ok(())
}
