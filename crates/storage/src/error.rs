//! Storage errors, classified so callers can decide what to retry.

/// A storage failure. `Transient` ones (connection lost, pool timeout, PostgreSQL serialization failure or
/// deadlock, SQLite busy) may succeed when retried; the rest will not.
///
/// A message says what failed here; its cause is the `source`, never repeated in the message, so a log line
/// prints the chain ([`skybook_domain::ErrorChain`]).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database unavailable")]
    Transient(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid database URL {url:?}: {reason}")]
    Config { url: String, reason: String },
    #[error("session store: {0}")]
    Session(String),
}

impl StorageError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            Self::Transient(e)
        } else {
            Self::Database(e)
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // PostgreSQL: serialization_failure, deadlock_detected, admin/crash shutdown, cannot_connect_now.
            Some("40001" | "40P01" | "57P01" | "57P02" | "57P03")
            // SQLite: SQLITE_BUSY, SQLITE_LOCKED (and their extended codes).
            | Some("5" | "6" | "261" | "262" | "517")
        ),
        _ => false,
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
