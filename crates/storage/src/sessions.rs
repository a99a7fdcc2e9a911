//! Website sessions in the database: tower-sessions' sqlx stores over our pools and our `sessions` table.
//!
//! The store crate writes the session SQL; it is used here, behind this crate's boundary, so the rest of the
//! code base still sees the storage crate as the only place that talks to the database. The table itself is
//! created by our migrations (`*_sessions.sql`), never by the store's own `migrate()`.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::backend::Backend;
use crate::error::{Result, StorageError};
use crate::store::Store;

const TABLE: &str = "sessions";

/// A [`tower_sessions::SessionStore`] on whichever engine the [`Store`] runs. Cheap to clone.
#[derive(Debug, Clone)]
pub enum SessionStore {
    /// Loads go to the reader pool, writes to the single writer (see `backend.rs`).
    Sqlite {
        writer: SqliteStore,
        reader: SqliteStore,
    },
    Postgres(PostgresStore),
}

impl Store {
    /// The session store for this database. On PostgreSQL the table is addressed in the connection's current
    /// schema, the one the migrations ran in.
    pub fn session_store(&self) -> Result<SessionStore> {
        let invalid = |reason: String| StorageError::Config {
            url: "(session table)".into(),
            reason,
        };
        Ok(match &self.backend {
            Backend::Sqlite { writer, reader } => SessionStore::Sqlite {
                writer: SqliteStore::new(writer.clone())
                    .with_table_name(TABLE)
                    .map_err(invalid)?,
                reader: SqliteStore::new(reader.clone())
                    .with_table_name(TABLE)
                    .map_err(invalid)?,
            },
            Backend::Postgres(pool) => {
                let schema = self.pg_schema.as_deref().unwrap_or("public");
                SessionStore::Postgres(
                    PostgresStore::new(pool.clone())
                        .with_schema_name(schema)
                        .map_err(invalid)?
                        .with_table_name(TABLE)
                        .map_err(invalid)?,
                )
            }
        })
    }
}

impl Store {
    /// Deletes expired website sessions (the periodic purge).
    pub async fn delete_expired_sessions(&self) -> Result<()> {
        self.session_store()?
            .delete_expired()
            .await
            .map_err(|e| StorageError::Session(e.to_string()))
    }
}

#[async_trait]
impl tower_sessions::SessionStore for SessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite { writer, .. } => writer.create(record).await,
            Self::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite { writer, .. } => writer.save(record).await,
            Self::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite { reader, .. } => reader.load(id).await,
            Self::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite { writer, .. } => writer.delete(id).await,
            Self::Postgres(store) => store.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for SessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Self::Sqlite { writer, .. } => writer.delete_expired().await,
            Self::Postgres(store) => store.delete_expired().await,
        }
    }
}
