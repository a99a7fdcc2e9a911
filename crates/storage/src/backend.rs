//! The two database engines behind one type.
//!
//! SQL in this crate is written once: `$1`-style placeholders work in both engines (sqlx binds SQLite's `$N` by
//! number), and the dialect differences live in the two migration folders. The [`on_pool!`] and [`on_tx!`]
//! macros expand one block of query code once per engine, so each query is type-checked against both.
//!
//! SQLite gets one writer connection and a pool of readers: WAL lets readers run beside the single writer, and
//! a lone writer never meets SQLITE_BUSY upgrade deadlocks between deferred transactions.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::{opened_before_fault, Result, StorageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl PoolSettings {
    /// A small pool: on a few cores PostgreSQL does more work with few busy connections than with many
    /// (see bench/README.md).
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Backend {
    pub(crate) async fn connect(url: &str, settings: &PoolSettings) -> Result<Self> {
        let config_err = |reason: String| StorageError::Config {
            url: redact(url),
            reason,
        };
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| config_err(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(settings.acquire_timeout.max(Duration::from_secs(30)))
                .connect_with(options.clone())
                .await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(settings.max_connections.clamp(1, 8))
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options.read_only(true))
                .await?;
            Ok(Self::Sqlite { writer, reader })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            check_single_host(url).map_err(config_err)?;
            let options = PgConnectOptions::from_str(url).map_err(|e| config_err(e.to_string()))?;
            // No ping on every acquire: it costs a round trip per checkout (several per booking). A connection
            // that died since its last use fails its first query with a transient error instead, and that
            // fault retires every connection opened before it (see `StorageError`).
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .test_before_acquire(false)
                .after_connect(|conn, _| Box::pin(refuse_standby(conn)))
                .before_acquire(|_, meta| {
                    Box::pin(async move { Ok(!opened_before_fault(meta.age)) })
                })
                .after_release(|_, meta| {
                    Box::pin(async move { Ok(!opened_before_fault(meta.age)) })
                })
                .connect_with(options)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            Err(config_err(
                "must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    pub(crate) fn engine(&self) -> Engine {
        match self {
            Self::Sqlite { .. } => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// skybook writes on every connection, so it only keeps connections to a primary: one to a server in recovery
/// (a standby, or a primary being demoted, reached through a read-write endpoint mid-failover) is closed at
/// once and the connect counts as a transient fault — what libpq's `target_session_attrs=read-write` does.
async fn refuse_standby(conn: &mut sqlx::PgConnection) -> std::result::Result<(), sqlx::Error> {
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(conn)
        .await?;
    if in_recovery {
        return Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "the server is a standby in recovery, not the primary",
        )));
    }
    Ok(())
}

/// A libpq multi-host URL (`postgres://a,b/db?target_session_attrs=read-write`) is refused: sqlx connects to one
/// host, and silently using the first would hide a failover setup that does not work. Point skybook at the
/// cluster's read-write endpoint instead (docs/replication.md).
fn check_single_host(url: &str) -> std::result::Result<(), String> {
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    if hosts.contains(',') || url.contains("target_session_attrs") {
        return Err("several hosts (libpq multi-host syntax) are not supported: give the cluster's read-write endpoint, one host".into());
    }
    Ok(())
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Runs `$body` with `$c` bound to a read executor (a pool) of whichever engine `$backend` is.
macro_rules! on_pool {
    ($backend:expr, $c:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite { reader: $c, .. } => $body,
            $crate::backend::Backend::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the pool that takes single-statement writes: SQLite's one writer, or
/// PostgreSQL's pool.
macro_rules! on_writer {
    ($backend:expr, $c:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite { writer: $c, .. } => $body,
            $crate::backend::Backend::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the `&mut Connection` of the open transaction `$tx`.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::tx::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::tx::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx, on_writer};

#[cfg(test)]
mod tests {
    use super::check_single_host;

    #[test]
    fn multi_host_urls_are_refused() {
        assert!(check_single_host("postgres://u:p@db-rw:5432/skybook").is_ok());
        assert!(check_single_host("postgres://u@a:5432,b:5432/skybook").is_err());
        assert!(
            check_single_host("postgres://u@a/skybook?target_session_attrs=read-write").is_err()
        );
    }
}
