//! Feed tables: one per declared feed type (`feed_<name>`), tenant-scoped, built and evolved from its
//! declaration. Changes are additive only: a declaration may gain columns; one that would drop a column, change
//! its type or change the key is refused, naming the column, and nothing is changed.
//!
//! The columns each table was built with are recorded in `feed_columns`, so the check compares declarations,
//! not the engines' differing type catalogues. Every identifier is a parsed [`Identifier`] and is quoted as well.

use skybook_domain::feed::{ColumnType, FeedTable, Identifier};

use crate::backend::{on_tx, Engine};
use crate::error::{Result, StorageError};
use crate::store::Store;
use crate::tx::{Tx, TxInner};

/// A quoted identifier. Identifiers are already restricted to `[a-z0-9_]`; the quotes keep SQL's keywords out.
pub(crate) fn quoted(id: &str) -> String {
    format!("\"{id}\"")
}

/// The feed's table: `"feed_<name>"`.
pub(crate) fn table(feed: &Identifier) -> String {
    quoted(&format!("feed_{feed}"))
}

pub(crate) fn sql_type(engine: Engine, ty: &ColumnType) -> &'static str {
    match (engine, ty) {
        (_, ColumnType::Text | ColumnType::Enum(_)) => "TEXT",
        (Engine::Postgres, ColumnType::Integer | ColumnType::Money) => "BIGINT",
        (Engine::Postgres, ColumnType::Decimal) => "NUMERIC",
        (Engine::Postgres, ColumnType::Boolean) => "BOOLEAN",
        (Engine::Postgres, ColumnType::Date) => "DATE",
        (Engine::Postgres, ColumnType::Timestamp) => "TIMESTAMPTZ",
        (Engine::Sqlite, ColumnType::Integer | ColumnType::Money | ColumnType::Boolean) => {
            "INTEGER"
        }
        (Engine::Sqlite, ColumnType::Decimal | ColumnType::Date | ColumnType::Timestamp) => "TEXT",
    }
}

/// What [`Store::ensure_feed_table`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedTableChange {
    Created,
    /// The declaration gained these columns; they were added (empty for the rows already there).
    Added(Vec<String>),
    Unchanged,
}

#[derive(sqlx::FromRow)]
struct RecordedColumn {
    name: String,
    #[sqlx(rename = "type")]
    ty: String,
    in_key: bool,
}

impl Store {
    /// Creates the feed's table, or adds the columns its declaration gained. A declaration that would drop a
    /// column, change a column's type or change the key is refused with [`StorageError::FeedSchema`], and the
    /// table stays as it was.
    pub async fn ensure_feed_table(&self, feed: &FeedTable) -> Result<FeedTableChange> {
        let mut tx = self.begin().await?;
        let engine = tx.engine();
        if engine == Engine::Postgres {
            // Two nodes starting at once evolve a table one after the other.
            on_tx!(tx, c => sqlx::query("SELECT pg_advisory_xact_lock(hashtext('skybook.feed_columns'))").execute(c).await.map(|_| ()))?;
        }
        let recorded: Vec<RecordedColumn> = on_tx!(tx, c => sqlx::query_as(
            "SELECT name, type, in_key FROM feed_columns WHERE feed = $1 ORDER BY position")
            .bind(feed.name.as_str()).fetch_all(c).await)?;
        let change = if recorded.is_empty() {
            create(&mut tx, engine, feed).await?;
            FeedTableChange::Created
        } else {
            evolve(&mut tx, engine, feed, &recorded).await?
        };
        tx.commit().await?;
        Ok(change)
    }
}

async fn create(tx: &mut Tx, engine: Engine, feed: &FeedTable) -> Result<()> {
    // No foreign key to `tenants`: its check, one per row, took 40% of a bulk load (bench/README.md). Only the
    // importer writes these tables, with the id of a tenant it has just read, and tenants are never deleted.
    let tenant_type = match engine {
        Engine::Postgres => "UUID NOT NULL",
        Engine::Sqlite => "BLOB NOT NULL",
    };
    let (run_type, time_type) = match engine {
        Engine::Postgres => ("UUID NOT NULL", "TIMESTAMPTZ NOT NULL"),
        Engine::Sqlite => ("BLOB NOT NULL", "TEXT NOT NULL"),
    };
    let mut columns = vec![format!("tenant_id {tenant_type}")];
    for column in &feed.columns {
        columns.push(format!(
            "{} {}",
            quoted(column.name.as_str()),
            sql_type(engine, &column.ty)
        ));
    }
    columns.push(format!("run_id {run_type}"));
    columns.push(format!("updated_at {time_type}"));
    let key: Vec<String> = std::iter::once("tenant_id".to_owned())
        .chain(feed.key_columns().map(|c| quoted(c.name.as_str())))
        .collect();
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))",
        table(&feed.name),
        columns.join(", "),
        key.join(", ")
    );
    on_tx!(tx, c => sqlx::query(&sql).execute(c).await.map(|_| ()))?;
    for (position, column) in feed.columns.iter().enumerate() {
        record(tx, feed, position, column.name.as_str(), &column.ty).await?;
    }
    Ok(())
}

async fn record(
    tx: &mut Tx,
    feed: &FeedTable,
    position: usize,
    name: &str,
    ty: &ColumnType,
) -> Result<()> {
    let in_key = feed.key_columns().any(|k| k.name.as_str() == name);
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO feed_columns (feed, position, name, type, in_key) VALUES ($1, $2, $3, $4, $5)")
        .bind(feed.name.as_str()).bind(position as i32).bind(name).bind(ty.name()).bind(in_key)
        .execute(c).await.map(|_| ()))?;
    Ok(())
}

async fn evolve(
    tx: &mut Tx,
    engine: Engine,
    feed: &FeedTable,
    recorded: &[RecordedColumn],
) -> Result<FeedTableChange> {
    let refuse = |column: &str, reason: String| StorageError::FeedSchema {
        feed: feed.name.to_string(),
        column: column.to_owned(),
        reason,
    };
    for old in recorded {
        let Some(new) = feed.columns.iter().find(|c| c.name.as_str() == old.name) else {
            return Err(refuse(
                &old.name,
                "the declaration drops it, which would lose its data; keep the column (it may stop being required)".into(),
            ));
        };
        if new.ty.name() != old.ty {
            return Err(refuse(
                &old.name,
                format!(
                    "the declaration changes its type from {} to {}, which could lose data; add a new column instead",
                    old.ty,
                    new.ty.name()
                ),
            ));
        }
        let in_key = feed.key_columns().any(|k| k.name == new.name);
        if in_key != old.in_key {
            return Err(refuse(
                &old.name,
                "the declaration changes the key, which would merge or split existing rows".into(),
            ));
        }
    }
    let mut added = Vec::new();
    let mut position = recorded.len();
    for column in &feed.columns {
        if recorded.iter().any(|old| old.name == column.name.as_str()) {
            continue;
        }
        if feed.key_columns().any(|k| k.name == column.name) {
            return Err(refuse(
                column.name.as_str(),
                "a new column cannot join the key of rows already stored".into(),
            ));
        }
        let sql = format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            table(&feed.name),
            quoted(column.name.as_str()),
            sql_type(engine, &column.ty)
        );
        on_tx!(tx, c => sqlx::query(&sql).execute(c).await.map(|_| ()))?;
        record(tx, feed, position, column.name.as_str(), &column.ty).await?;
        position += 1;
        added.push(column.name.to_string());
    }
    Ok(if added.is_empty() {
        FeedTableChange::Unchanged
    } else {
        FeedTableChange::Added(added)
    })
}

impl Tx {
    pub(crate) fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Sqlite(_) => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
    }
}

impl Store {
    /// The key of every row `tenant` has in the feed's table, as text, sorted: what a load left there.
    pub async fn feed_keys(
        &self,
        feed: &FeedTable,
        tenant: skybook_domain::TenantId,
    ) -> Result<Vec<String>> {
        let key: Vec<String> = feed
            .key_columns()
            .map(|c| format!("CAST({} AS TEXT)", quoted(c.name.as_str())))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE tenant_id = $1",
            key.join(" || '|' || "),
            table(&feed.name)
        );
        let mut keys: Vec<String> = crate::backend::on_pool!(&self.backend, c => sqlx::query_scalar(&sql).bind(tenant).fetch_all(c).await)?;
        keys.sort();
        Ok(keys)
    }
}
