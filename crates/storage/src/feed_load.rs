//! Loading one file into a feed's table, all or nothing: rows are staged in a temporary table inside one
//! transaction (PostgreSQL: `COPY ... FROM STDIN`, chunk by chunk; SQLite: prepared multi-row inserts), then
//! merged into the feed's table with one statement, and the transaction commits — or, dropped, rolls back and
//! leaves the table exactly as it was. Nobody reading the table ever sees part of a file.
//!
//! On PostgreSQL, a tenant's first load of a feed (no rows of theirs in its table yet) may skip the staging table: with nothing
//! to merge with, the rows go straight into the feed's table, in the same transaction, at the speed of the
//! database's own bulk load (bench/README.md). The table's primary key then finds repeated keys: a repeat ends
//! the load with [`StorageError::RepeatedKey`](crate::StorageError::RepeatedKey), and the caller loads the file
//! again through the staging table, which names every repeat.

use chrono::{DateTime, Utc};
use skybook_domain::feed::{FeedTable, FeedValue, LoadMode};
use skybook_domain::{ImportRunId, TenantId};

use crate::backend::{on_tx, Engine};
use crate::error::Result;
use crate::feeds::{quoted, sql_type, table};
use crate::store::Store;
use crate::tx::{Tx, TxInner};

/// PostgreSQL: bytes of COPY data sent per `COPY` statement. Large enough that the per-statement round trip is
/// noise, small enough to keep the importer's memory flat.
const COPY_CHUNK: usize = 4 << 20;
/// SQLite: bound parameters per multi-row insert (its limit is 32766).
const SQLITE_PARAMETERS: usize = 30_000;

/// What a load changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadCounts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// A load in progress: an open transaction with a staging table. Dropped without [`FeedLoad::apply`], it rolls
/// back and nothing of the file remains.
pub struct FeedLoad {
    tx: Tx,
    feed: FeedTable,
    tenant: TenantId,
    run: ImportRunId,
    stage: String,
    /// PostgreSQL: COPY data (CSV) not yet sent.
    copy: Vec<u8>,
    /// SQLite: rows not yet inserted.
    rows: Vec<(u64, Vec<FeedValue>)>,
    rows_per_insert: usize,
    /// The file is also the tenant's booking catalog (the `flights` feed): applied to `flights` too.
    catalog: bool,
    /// A first load written straight into the feed's table (no staging table): the rows written so far, and the
    /// time stamped on them.
    direct: Option<(u64, DateTime<Utc>)>,
}

/// The columns a feed must have to be the booking catalog.
const CATALOG_COLUMNS: [&str; 7] = [
    "number",
    "origin",
    "destination",
    "departs_at",
    "capacity",
    "fare_minor",
    "currency",
];

impl Store {
    /// Opens a load of `feed` for `tenant` on behalf of import run `run`. With `first_load_direct`, a first load
    /// (the tenant has no rows in the feed's table) goes straight into the table; see the module's doc. Not for the
    /// booking catalog, whose checks need the staging table.
    pub async fn begin_feed_load(
        &self,
        feed: &FeedTable,
        tenant: TenantId,
        run: ImportRunId,
        first_load_direct: bool,
    ) -> Result<FeedLoad> {
        let mut tx = self.begin().await?;
        let engine = tx.engine();
        if engine == Engine::Postgres {
            // One load of a feed for a tenant at a time (SQLite's single writer gives this by itself): `apply`
            // relies on it between its update and its insert, and a direct load on the table staying empty.
            let lock = format!("skybook.feed.{}.{}", feed.name, tenant);
            on_tx!(tx, c => sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(&lock).execute(c).await.map(|_| ()))?;
        }
        // SQLite stays with the staging table: its multi-row inserts straight into the keyed table measured
        // slower than staging and one `INSERT ... SELECT` (bench/README.md).
        let direct = if first_load_direct && engine == Engine::Postgres {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE tenant_id = $1)",
                table(&feed.name)
            );
            let any: bool =
                on_tx!(tx, c => sqlx::query_scalar(&sql).bind(tenant).fetch_one(c).await)?;
            (!any).then(|| (0, Utc::now()))
        } else {
            None
        };
        let stage = quoted(&format!("stage_{}", feed.name));
        if direct.is_none() {
            let mut columns = vec!["line BIGINT NOT NULL".to_owned()];
            columns.extend(
                feed.columns
                    .iter()
                    .map(|c| format!("{} {}", quoted(c.name.as_str()), sql_type(engine, &c.ty))),
            );
            let create = match engine {
                Engine::Postgres => format!(
                    "CREATE TEMP TABLE {stage} ({}) ON COMMIT DROP",
                    columns.join(", ")
                ),
                // SQLite's temporary tables live with the (one, pooled) writer connection, and DDL is
                // transactional: a rollback drops the table with everything else.
                Engine::Sqlite => format!("CREATE TEMP TABLE {stage} ({})", columns.join(", ")),
            };
            on_tx!(tx, c => sqlx::query(&create).execute(c).await.map(|_| ()))?;
        }
        Ok(FeedLoad {
            tx,
            feed: feed.clone(),
            tenant,
            run,
            stage,
            copy: Vec::with_capacity(COPY_CHUNK + 4096),
            rows: Vec::new(),
            rows_per_insert: (SQLITE_PARAMETERS / (feed.columns.len() + 1)).max(1),
            catalog: false,
            direct,
        })
    }
}

impl FeedLoad {
    /// Stages one parsed row, read at `line` of the file.
    pub async fn stage(&mut self, line: u64, row: Vec<FeedValue>) -> Result<()> {
        if let Some((written, _)) = &mut self.direct {
            *written += 1;
        }
        match self.tx.engine() {
            Engine::Postgres => {
                match self.direct {
                    Some((_, now)) => {
                        write_direct_row(&mut self.copy, self.tenant, self.run, now, &row);
                    }
                    None => write_copy_row(&mut self.copy, line, &row),
                }
                if self.copy.len() >= COPY_CHUNK {
                    self.flush().await?;
                }
            }
            Engine::Sqlite => {
                self.rows.push((line, row));
                if self.rows.len() >= self.rows_per_insert {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let result = self.send().await;
        match result {
            Err(sqlx::Error::Database(e)) if self.direct.is_some() && e.is_unique_violation() => {
                Err(crate::StorageError::RepeatedKey)
            }
            other => Ok(other?),
        }
    }

    /// Sends the rows gathered so far: to the staging table, or (a direct load) to the feed's table.
    async fn send(&mut self) -> std::result::Result<(), sqlx::Error> {
        let feed_columns = self.feed.columns.iter().map(|c| quoted(c.name.as_str()));
        let (target, columns): (String, Vec<String>) = match self.direct {
            Some(_) => (
                table(&self.feed.name),
                std::iter::once("tenant_id".to_owned())
                    .chain(feed_columns)
                    .chain(["run_id".to_owned(), "updated_at".to_owned()])
                    .collect(),
            ),
            None => (
                self.stage.clone(),
                std::iter::once("line".to_owned())
                    .chain(feed_columns)
                    .collect(),
            ),
        };
        match &mut self.tx.inner {
            TxInner::Postgres(t) if !self.copy.is_empty() => {
                let sql = format!(
                    "COPY {target} ({}) FROM STDIN WITH (FORMAT csv)",
                    columns.join(", ")
                );
                let mut copy = t.copy_in_raw(&sql).await?;
                copy.send(std::mem::take(&mut self.copy)).await?;
                copy.finish().await?;
                self.copy = Vec::with_capacity(COPY_CHUNK + 4096);
            }
            TxInner::Sqlite(t) if !self.rows.is_empty() => {
                let one = format!("({})", vec!["?"; columns.len()].join(", "));
                let sql = format!(
                    "INSERT INTO {target} ({}) VALUES {}",
                    columns.join(", "),
                    vec![one.as_str(); self.rows.len()].join(", ")
                );
                let mut query = sqlx::query(&sql);
                // (Always the staging table: direct loads are PostgreSQL's.)
                for (line, row) in self.rows.drain(..) {
                    query = query.bind(line as i64);
                    for value in row {
                        query = bind_sqlite(query, value);
                    }
                }
                query.execute(&mut **t).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Rows whose key repeats an earlier row of the same file: `(line, line of the first)`, in file order. They
    /// are taken out of the staging table: the first row of a key is the one loaded.
    pub async fn later_duplicates(&mut self) -> Result<Vec<(u64, u64)>> {
        self.flush().await?;
        if self.direct.is_some() {
            // Every row is in the feed's table, whose primary key let no repeat through.
            return Ok(Vec::new());
        }
        let key: Vec<String> = self
            .feed
            .key_columns()
            .map(|c| quoted(c.name.as_str()))
            .collect();
        let key = key.join(", ");
        let on_key = self
            .feed
            .key_columns()
            .map(|c| format!("s.{0} = d.{0}", quoted(c.name.as_str())))
            .collect::<Vec<_>>()
            .join(" AND ");
        // Only keys that repeat are joined back (a hash aggregate over the stage, not a sort of every row).
        let repeated = format!(
            "SELECT s.line, d.first FROM {stage} s JOIN (SELECT {key}, min(line) AS first FROM {stage} \
             GROUP BY {key} HAVING count(*) > 1) d ON {on_key} WHERE s.line <> d.first ORDER BY s.line",
            stage = self.stage
        );
        let pairs: Vec<(i64, i64)> =
            on_tx!(self.tx, c => sqlx::query_as(&repeated).fetch_all(c).await)?;
        for chunk in pairs.chunks(1000) {
            let lines: Vec<String> = chunk.iter().map(|(line, _)| line.to_string()).collect();
            let delete = format!(
                "DELETE FROM {} WHERE line IN ({})",
                self.stage,
                lines.join(", ")
            );
            on_tx!(self.tx, c => sqlx::query(&delete).execute(c).await.map(|_| ()))?;
        }
        Ok(pairs
            .into_iter()
            .map(|(line, first)| (line as u64, first as u64))
            .collect())
    }

    /// Makes this load the tenant's booking catalog too: [`FeedLoad::apply`] then inserts the staged flights into
    /// `flights` or updates their schedule, capacity and fare. Returns the rows that cannot apply — a capacity
    /// below the seats already sold, as `(line, reason)` — after taking them out of the load. The flights they
    /// name are locked (PostgreSQL) until the load ends, so no booking sells past the new capacity meanwhile.
    pub async fn as_catalog(&mut self) -> Result<Vec<(u64, String)>> {
        if self.direct.is_some() {
            return Err(crate::StorageError::Corrupt(
                "a direct load cannot be the booking catalog (begin it without first_load_direct)"
                    .into(),
            ));
        }
        for column in CATALOG_COLUMNS {
            if !self.feed.columns.iter().any(|c| c.name.as_str() == column) {
                return Err(crate::StorageError::FeedSchema {
                    feed: self.feed.name.to_string(),
                    column: column.to_owned(),
                    reason: "the booking catalog's feed must have it".into(),
                });
            }
        }
        self.flush().await?;
        self.catalog = true;
        let lock = match self.tx.engine() {
            Engine::Postgres => " FOR UPDATE OF f",
            Engine::Sqlite => "",
        };
        let sql = format!(
            "SELECT s.line, s.capacity, f.seats_sold FROM {} s JOIN flights f ON f.tenant_id = $1 \
             AND f.number = s.number AND f.departs_at = s.departs_at WHERE s.capacity < f.seats_sold{lock}",
            self.stage
        );
        let short: Vec<(i64, i64, i32)> =
            on_tx!(self.tx, c => sqlx::query_as(&sql).bind(self.tenant).fetch_all(c).await)?;
        for (line, _, _) in &short {
            let delete = format!("DELETE FROM {} WHERE line = $1", self.stage);
            on_tx!(self.tx, c => sqlx::query(&delete).bind(line).execute(c).await.map(|_| ()))?;
        }
        Ok(short
            .into_iter()
            .map(|(line, capacity, sold)| {
                (
                    line as u64,
                    format!("a capacity of {capacity} is below the {sold} seats already sold on this flight"),
                )
            })
            .collect())
    }

    /// Merges the staged rows into the feed's table (`mode`), and commits: the file is in, whole.
    pub async fn apply(mut self, mode: LoadMode, now: DateTime<Utc>) -> Result<LoadCounts> {
        self.flush().await?;
        if let Some((written, _)) = self.direct {
            // A first load: the rows are in the table already, and there was nothing to update or remove.
            self.tx.commit().await?;
            return Ok(LoadCounts {
                inserted: written,
                updated: 0,
                deleted: 0,
            });
        }
        let target = table(&self.feed.name);
        let names: Vec<String> = self
            .feed
            .columns
            .iter()
            .map(|c| quoted(c.name.as_str()))
            .collect();
        let key: Vec<String> = self
            .feed
            .key_columns()
            .map(|c| quoted(c.name.as_str()))
            .collect();
        let matches = key
            .iter()
            .map(|k| format!("t.{k} = s.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let others: Vec<&String> = names.iter().filter(|n| !key.contains(n)).collect();
        let distinct = |a: &str, b: &str| match self.tx.engine() {
            Engine::Postgres => format!("{a} IS DISTINCT FROM {b}"),
            Engine::Sqlite => format!("{a} IS NOT {b}"),
        };
        // Two plain statements rather than one `INSERT ... ON CONFLICT DO UPDATE`, whose per-row speculative
        // insertion costs three times what filling the table takes (bench/README.md): first the rows the file
        // changes, then the rows it adds (an anti-join). Loads of one feed for one tenant never run at once
        // (`begin_feed_load` takes a lock), so nothing can slip in between the two.
        let updated = if others.is_empty() {
            0
        } else {
            let set = others
                .iter()
                .map(|n| format!("{n} = s.{n}"))
                .chain(["run_id = $2".to_owned(), "updated_at = $3".to_owned()])
                .collect::<Vec<_>>()
                .join(", ");
            let changed = others
                .iter()
                .map(|n| distinct(&format!("{target}.{n}"), &format!("s.{n}")))
                .collect::<Vec<_>>()
                .join(" OR ");
            let on_key = key
                .iter()
                .map(|k| format!("{target}.{k} = s.{k}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let update = format!(
                "UPDATE {target} SET {set} FROM {stage} s WHERE {target}.tenant_id = $1 AND {on_key} AND ({changed})",
                stage = self.stage,
            );
            on_tx!(self.tx, c => sqlx::query(&update)
                .bind(self.tenant).bind(self.run).bind(now).execute(c).await.map(|r| r.rows_affected()))?
        };
        let insert = format!(
            "INSERT INTO {target} (tenant_id, {cols}, run_id, updated_at) \
             SELECT $1, {scols}, $2, $3 FROM {stage} s \
             WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE t.tenant_id = $1 AND {matches})",
            cols = names.join(", "),
            scols = names
                .iter()
                .map(|n| format!("s.{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            stage = self.stage,
        );
        let inserted = on_tx!(self.tx, c => sqlx::query(&insert)
            .bind(self.tenant).bind(self.run).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        let deleted = match mode {
            LoadMode::Upsert => 0,
            LoadMode::Replace => {
                let delete = format!(
                    "DELETE FROM {target} WHERE tenant_id = $1 AND NOT EXISTS \
                     (SELECT 1 FROM {} s WHERE {})",
                    self.stage,
                    key.iter()
                        .map(|k| format!("s.{k} = {target}.{k}"))
                        .collect::<Vec<_>>()
                        .join(" AND ")
                );
                on_tx!(self.tx, c => sqlx::query(&delete).bind(self.tenant).execute(c).await.map(|r| r.rows_affected()))?
            }
        };
        if self.catalog {
            // New flights become bookable; known ones take the new schedule, capacity and fare (never below
            // the seats sold: those rows were taken out by `as_catalog`). Flights absent from the file stay,
            // unless the feed is declared `replace`: then those nobody has booked go (a flight with bookings, of
            // any state, stays — the bookings point to it).
            let id = match self.tx.engine() {
                Engine::Postgres => "gen_random_uuid()",
                Engine::Sqlite => "randomblob(16)",
            };
            let sql = format!(
                "INSERT INTO flights (id, tenant_id, number, origin, destination, departs_at, capacity, seats_sold, \
                 fare_minor, currency, created_at) \
                 SELECT {id}, $1, s.number, s.origin, s.destination, s.departs_at, s.capacity, 0, s.fare_minor, \
                 s.currency, $2 FROM {} s WHERE true \
                 ON CONFLICT (tenant_id, number, departs_at) DO UPDATE SET origin = excluded.origin, \
                 destination = excluded.destination, capacity = excluded.capacity, \
                 fare_minor = excluded.fare_minor, currency = excluded.currency",
                self.stage
            );
            on_tx!(self.tx, c => sqlx::query(&sql).bind(self.tenant).bind(now).execute(c).await.map(|_| ()))?;
            if mode == LoadMode::Replace {
                let sql = format!(
                    "DELETE FROM flights AS f WHERE f.tenant_id = $1 AND f.seats_sold = 0 \
                     AND NOT EXISTS (SELECT 1 FROM {} s WHERE s.number = f.number AND s.departs_at = f.departs_at) \
                     AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.flight_id = f.id)",
                    self.stage
                );
                on_tx!(self.tx, c => sqlx::query(&sql).bind(self.tenant).execute(c).await.map(|_| ()))?;
            }
        }
        if self.tx.engine() == Engine::Sqlite {
            let drop = format!("DROP TABLE {}", self.stage);
            on_tx!(self.tx, c => sqlx::query(&drop).execute(c).await.map(|_| ()))?;
        }
        self.tx.commit().await?;
        Ok(LoadCounts {
            inserted,
            updated,
            deleted,
        })
    }
}

/// One row of COPY's CSV format: NULL is an unquoted empty field, text is always quoted (so an empty string
/// stays one).
fn write_copy_row(out: &mut Vec<u8>, line: u64, row: &[FeedValue]) {
    use std::io::Write as _;
    let _ = write!(out, "{line}");
    write_copy_values(out, row);
    out.push(b'\n');
}

/// The values of a row in COPY's CSV format, each after a comma.
fn write_copy_values(out: &mut Vec<u8>, row: &[FeedValue]) {
    use std::io::Write as _;
    for value in row {
        out.push(b',');
        let _ = match value {
            FeedValue::Null => Ok(()),
            FeedValue::Text(s) => {
                out.push(b'"');
                for &b in s.as_bytes() {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
                Ok(())
            }
            FeedValue::Integer(n) => write!(out, "{n}"),
            FeedValue::Decimal(d) => write!(out, "{d}"),
            FeedValue::Boolean(b) => write!(out, "{}", if *b { "t" } else { "f" }),
            FeedValue::Date(d) => write!(out, "{}", d.format("%Y-%m-%d")),
            FeedValue::Timestamp(t) => write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.fZ")),
        };
    }
}

/// One row of a direct load, in COPY's CSV format: the tenant, the row's values, the run and the time.
fn write_direct_row(
    out: &mut Vec<u8>,
    tenant: TenantId,
    run: ImportRunId,
    now: DateTime<Utc>,
    row: &[FeedValue],
) {
    use std::io::Write as _;
    let _ = write!(out, "{tenant}");
    write_copy_values(out, row);
    let _ = writeln!(out, ",{run},{}", now.format("%Y-%m-%dT%H:%M:%S%.fZ"));
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_sqlite(query: SqliteQuery<'_>, value: FeedValue) -> SqliteQuery<'_> {
    match value {
        FeedValue::Null => query.bind(None::<String>),
        FeedValue::Text(s) | FeedValue::Decimal(s) => query.bind(s),
        FeedValue::Integer(n) => query.bind(n),
        FeedValue::Boolean(b) => query.bind(b),
        FeedValue::Date(d) => query.bind(d),
        FeedValue::Timestamp(t) => query.bind(t),
    }
}
