//! Sending email: the [`Mailer`] trait and its two implementations — SMTP through lettre ([`SmtpMailer`],
//! `SKYBOOK_SMTP_URL`) and `.eml` files in a directory ([`FileMailer`], the demo's default, so a fresh clone
//! shows its emails without an SMTP server).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use skybook_domain::Email;

/// One email, composed and ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// `<...@...>`, deterministic for what it announces, so a re-send is recognisably the same message.
    pub message_id: String,
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A mailer configuration that cannot work (an SMTP URL lettre refuses).
    #[error("invalid mailer configuration: {0}")]
    Invalid(String),
    /// This email can never be delivered as it is: lettre refuses to build it (a recipient its parser
    /// refuses), or the server refused it for good (a permanent 5xx answer). Sending it again could only fail
    /// again; the outbox fails it and alerts at once.
    #[error("mail undeliverable: {0}")]
    Undeliverable(String),
    /// The server refused it for now (4xx) or could not be reached; the outbox tries again later.
    #[error("mail not accepted: {0}")]
    NotAccepted(String),
}

impl MailError {
    /// Whether sending this email again could only fail again.
    pub fn is_undeliverable(&self) -> bool {
        matches!(self, Self::Undeliverable(_))
    }
}

/// Hands an email on. `Ok` means the next hop (the SMTP server, the mail directory) has it.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}

fn message(from: &Mailbox, email: &OutgoingEmail) -> Result<Message, MailError> {
    let invalid = |e: &dyn std::fmt::Display| MailError::Undeliverable(e.to_string());
    let to: Mailbox = email.to.as_str().parse().map_err(|e| invalid(&e))?;
    Message::builder()
        .message_id(Some(email.message_id.clone()))
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .date_now()
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| invalid(&e))
}

/// SMTP through lettre. `smtp://host:port` is plain (a local relay), `smtp://...?tls=required` upgrades with
/// STARTTLS, `smtps://` is TLS from the start; `user:password@` in the URL authenticates.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// Whether `url` is an SMTP URL this mailer accepts (scheme, host, `tls` mode...), without connecting:
    /// for configuration checks at start-up.
    pub fn check_url(url: &SecretString) -> Result<(), MailError> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map(drop)
            .map_err(|e| MailError::Invalid(format!("SMTP URL: {e}")))
    }

    pub fn new(url: &SecretString, from: Mailbox) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| MailError::Invalid(format!("SMTP URL: {e}")))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let message = message(&self.from, email)?;
        self.transport.send(message).await.map(drop).map_err(|e| {
            if refused_for_good(&e) {
                MailError::Undeliverable(format!("SMTP: {e}"))
            } else {
                MailError::NotAccepted(format!("SMTP: {e}"))
            }
        })
    }
}

/// Whether the server's answer says *this recipient* can never be reached: a permanent (5xx) reply whose
/// enhanced status code (RFC 3463) is an addressing one — `5.1.x` (bad mailbox, bad domain, bad syntax) or
/// `5.2.1` (mailbox disabled). Any other permanent reply may refuse *us* (relay denied, our IP blocklisted,
/// authentication, a sender rejected): failing every email for good then would lose them all, so they wait,
/// retried, and the sentinel alerts while they stay unsent. (lettre does not say which command a reply
/// answered; the enhanced code does.)
fn refused_for_good(e: &lettre::transport::smtp::Error) -> bool {
    e.is_permanent() && names_a_bad_recipient(&e.to_string())
}

fn names_a_bad_recipient(reply: &str) -> bool {
    reply.split(|c: char| c.is_whitespace() || c == ':').any(|word| {
        let mut parts = word.split('.');
        matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some("5"), Some("1"), Some(detail), None) if !detail.is_empty() && detail.bytes().all(|b| b.is_ascii_digit())
        ) || word == "5.2.1"
    })
}

/// Writes each email as `<dir>/<message id>.eml` (written aside and renamed, so a reader never sees half a
/// file). Sending the same email twice rewrites the same file.
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> Self {
        Self { dir, from }
    }

    pub fn path_for(&self, message_id: &str) -> PathBuf {
        let name: String = message_id
            .trim_matches(|c| c == '<' || c == '>')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{name}.eml"))
    }
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let bytes = message(&self.from, email)?.formatted();
        let path = self.path_for(&email.message_id);
        let partial = path.with_extension("eml.partial");
        let write = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&partial, &bytes).await?;
            tokio::fs::rename(&partial, &path).await
        };
        write
            .await
            .map_err(|e| MailError::NotAccepted(format!("writing {}: {e}", path.display())))
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::names_a_bad_recipient;

    #[test]
    fn only_addressing_refusals_are_for_good() {
        for reply in [
            "permanent error (550): 5.1.1 <reject@example.com>: Recipient address rejected",
            "permanent error (553): 5.1.3 bad address syntax",
            "permanent error (550): 5.2.1 mailbox disabled",
        ] {
            assert!(names_a_bad_recipient(reply), "{reply}");
        }
        for reply in [
            "permanent error (550): 5.7.1 relaying denied",
            "permanent error (554): 5.7.1 your IP is on a blocklist",
            "permanent error (535): 5.7.8 authentication failed",
            "permanent error (553): sender rejected",
            "permanent error (550): 5.1.1.2",
        ] {
            assert!(!names_a_bad_recipient(reply), "{reply}");
        }
    }
}
