//! Storage errors, classified so callers can decide what to retry.

/// A storage failure. `Transient` ones may succeed when retried; the rest will not. The transient classes
/// (ARCHITECTURE.md lists them with the reasons):
///
/// - the connection: I/O errors (a refused connect among them), PostgreSQL class `08` (connection exception);
/// - the server going away or not yet there: `57P01` admin shutdown, `57P02` crash shutdown, `57P03` cannot
///   connect now (starting up, or a standby being promoted), `53300` too many connections;
/// - the server being the wrong one: `25006` read-only SQL transaction (a standby not yet promoted, or a
///   demoted primary, behind the read-write endpoint during a failover);
/// - contention: `40001` serialization failure, `40P01` deadlock, SQLite `BUSY`/`LOCKED`, a pool timeout.
///
/// The first three are *connection faults*: they say the server behind the URL changed or went away, so every
/// connection opened before one is discarded instead of reused ([`connection_fault_at`]).
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
    /// A feed declaration that its table cannot follow without losing data.
    #[error("feed {feed:?}, column {column:?}: {reason}")]
    FeedSchema {
        feed: String,
        column: String,
        reason: String,
    },
    /// A first load written straight into the feed's table met a key twice in the file: nothing of it stays
    /// (the load's transaction is done for); load the file again through the staging table, which names the
    /// repeats.
    #[error("the file repeats a key")]
    RepeatedKey,
}

impl StorageError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match classify(&e) {
            Class::ConnectionFault => {
                faults::record();
                Self::Transient(e)
            }
            Class::Busy => Self::Transient(e),
            Class::Permanent => Self::Database(e),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// The server behind the URL went away or is not the primary: retry on a fresh connection.
    ConnectionFault,
    /// The transaction lost a race, or waited too long for a connection: retry as it is.
    Busy,
    Permanent,
}

fn classify(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => Class::ConnectionFault,
        // A busy pool says nothing about the server: its connections are fine.
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Class::Busy,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code.starts_with("08") => Class::ConnectionFault,
            Some("57P01" | "57P02" | "57P03" | "53300" | "25006") => Class::ConnectionFault,
            Some("40001" | "40P01") => Class::Busy,
            // SQLite: SQLITE_BUSY, SQLITE_LOCKED (and their extended codes).
            Some("5" | "6" | "261" | "262" | "517") => Class::Busy,
            _ => Class::Permanent,
        },
        _ => Class::Permanent,
    }
}

/// When this process last saw a connection fault, as an instant: a pooled connection opened before it is not
/// reused. The pools consult it before handing out a connection and when one comes back.
///
/// After a failover every connection opened earlier leads to the old primary: dead, or alive and read-only
/// (`25006`) if it was demoted or the endpoint briefly pointed at a standby. sqlx finds a dead one only when a
/// query fails on it, one by one, and keeps a read-only one forever; discarding them all at the first fault
/// costs a reconnect per connection and saves a failed attempt on each. It is process-wide because a process
/// has one database; in a test process with many, a fault makes the others reconnect, nothing worse.
pub fn connection_fault_at() -> Option<std::time::Instant> {
    faults::last()
}

mod faults {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static EPOCH: OnceLock<Instant> = OnceLock::new();
    /// Microseconds after `EPOCH` of the last fault, plus one (0: none yet).
    static LAST: AtomicU64 = AtomicU64::new(0);

    fn epoch() -> Instant {
        *EPOCH.get_or_init(Instant::now)
    }

    pub(super) fn record() {
        let micros = epoch().elapsed().as_micros() as u64 + 1;
        LAST.fetch_max(micros, Ordering::Relaxed);
    }

    pub(super) fn last() -> Option<Instant> {
        match LAST.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(epoch() + Duration::from_micros(micros - 1)),
        }
    }
}

/// `true` when a connection `age` old was opened before the last connection fault, so must not be reused.
pub(crate) fn opened_before_fault(age: std::time::Duration) -> bool {
    connection_fault_at().is_some_and(|fault| {
        std::time::Instant::now()
            .checked_sub(age)
            .is_some_and(|opened| opened <= fault)
    })
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn pg_error(code: &'static str) -> sqlx::Error {
        #[derive(Debug)]
        struct Coded(&'static str);
        impl std::fmt::Display for Coded {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "error {}", self.0)
            }
        }
        impl std::error::Error for Coded {}
        impl sqlx::error::DatabaseError for Coded {
            fn message(&self) -> &str {
                "coded"
            }
            fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.0.into())
            }
            fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
                self
            }
            fn kind(&self) -> sqlx::error::ErrorKind {
                sqlx::error::ErrorKind::Other
            }
        }
        sqlx::Error::Database(Box::new(Coded(code)))
    }

    #[test]
    fn failover_errors_are_connection_faults() {
        for code in [
            "57P01", "57P02", "57P03", "25006", "08006", "08001", "53300",
        ] {
            assert_eq!(classify(&pg_error(code)), Class::ConnectionFault, "{code}");
        }
        for code in ["40001", "40P01", "5", "517"] {
            assert_eq!(classify(&pg_error(code)), Class::Busy, "{code}");
        }
        for code in ["23505", "42P01", "22001"] {
            assert_eq!(classify(&pg_error(code)), Class::Permanent, "{code}");
        }
    }

    #[test]
    fn a_connection_fault_retires_older_connections_only() {
        let before = std::time::Instant::now();
        let e = StorageError::from(pg_error("25006"));
        assert!(e.is_transient());
        let fault = connection_fault_at().expect("recorded");
        assert!(fault >= before);
        // Opened (well) before the fault: retired. Opened after it: kept.
        assert!(opened_before_fault(
            before.elapsed() + std::time::Duration::from_millis(1)
        ));
        assert!(!opened_before_fault(std::time::Duration::ZERO));
    }
}
