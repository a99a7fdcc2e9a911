//! The [`Store`]: connecting, migrating, health.

use sqlx::migrate::{Migrate, Migrator};

use crate::backend::{on_pool, Backend, Engine, PoolSettings};
use crate::catalog::TenantCache;
use crate::error::Result;
use crate::tx::Tx;
use crate::wakeups::OutboxAnnouncer;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle on the database; cheap to clone (pools inside).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    /// PostgreSQL's `current_schema()` at connect time: where the migrations put the tables, and so where the
    /// session store (which always qualifies its table) must look.
    pub(crate) pg_schema: Option<String>,
    pub(crate) outbox_announcer: OutboxAnnouncer,
    pub(crate) tenants: std::sync::Arc<TenantCache>,
    pub(crate) events: crate::events::EventBus,
}

/// Whether the schema matches this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationStatus {
    UpToDate,
    /// Migrations this build knows that the database has not applied, as `version description`, oldest first.
    Pending(Vec<String>),
}

impl Store {
    /// Connects to `sqlite://...` or `postgres://...`. Does not migrate.
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self> {
        let backend = Backend::connect(url, settings).await?;
        let pg_schema = match &backend {
            Backend::Sqlite { .. } => None,
            Backend::Postgres(pool) => Some(
                sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(pool)
                    .await?,
            ),
        };
        let outbox_announcer = OutboxAnnouncer::new(&backend);
        Ok(Self {
            backend,
            pg_schema,
            outbox_announcer,
            tenants: Default::default(),
            events: crate::events::EventBus::new(),
        })
    }

    pub fn engine(&self) -> Engine {
        self.backend.engine()
    }

    fn migrator(&self) -> &'static Migrator {
        match self.engine() {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies pending migrations. Safe to run from several processes: sqlx takes an advisory lock on PostgreSQL.
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await?,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        let applied = match &self.backend {
            Backend::Sqlite { writer, .. } => {
                let mut conn = writer.acquire().await?;
                conn.ensure_migrations_table().await?;
                conn.list_applied_migrations().await?
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                conn.ensure_migrations_table().await?;
                conn.list_applied_migrations().await?
            }
        };
        let pending: Vec<String> = self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        Ok(if pending.is_empty() {
            MigrationStatus::UpToDate
        } else {
            MigrationStatus::Pending(pending)
        })
    }

    /// One round trip to the database, for `/ready`.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(&self.backend, c => sqlx::query("SELECT 1").execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The clause that makes a claim query skip rows another transaction has locked (PostgreSQL). SQLite needs
    /// none: its single writer serialises claims.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "",
            Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// A `FROM` item that makes the statement's own transaction commit without waiting for the WAL flush
    /// (PostgreSQL; SQLite already syncs lazily in WAL mode). For writes whose loss in a crash only repeats
    /// work: the job queue's claims and completions.
    pub(crate) fn async_commit_from(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "",
            Backend::Postgres(_) => {
                " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"
            }
        }
    }

    /// Opens a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Tx::begin(&self.backend, &self.outbox_announcer).await
    }

    pub async fn close(&self) {
        self.backend.close().await;
    }
}
