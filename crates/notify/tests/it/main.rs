//! skybook-notify against real parts: a real SMTP server process (aiosmtpd), a real webhook receiver over HTTP,
//! SQLite and PostgreSQL.

mod alerts;
mod outbox;
