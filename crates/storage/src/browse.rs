//! The admin's data browser: one page at a time of a tenant-scoped table — a feed's table, with the columns its
//! declaration gives, or the bookings — filtered per column by the column's type, sorted by any column and
//! keyset-paginated, so a deep page costs what the first one does. The CSV export reads it page by page.
//!
//! Pages run on the key order (tenant, then the key columns: the primary key's index) unless a column is
//! chosen; a chosen column sorts first, with rows without a value last either way, and the key breaks ties so
//! every row has one place. Every name in the SQL comes from a [`Browsable`] built from parsed identifiers;
//! every value is a bind.

use chrono::{DateTime, NaiveDate, Utc};
use skybook_domain::feed::{ColumnType, FeedTable, FeedValue};
use skybook_domain::TenantId;
use sqlx::Row as _;

use crate::backend::{Backend, Engine};
use crate::error::Result;
use crate::feeds::{quoted, table};
use crate::store::Store;

/// A table the browser can page through: every one has `tenant_id`.
#[derive(Debug, Clone)]
pub struct Browsable {
    /// The table, quoted.
    table: String,
    pub columns: Vec<BrowseColumn>,
    /// The columns that, after the tenant, identify a row (indexes into `columns`).
    pub key: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct BrowseColumn {
    pub name: String,
    pub ty: ColumnType,
    /// Part of the key: never without a value (the table's primary key holds it). Any other column may be
    /// empty, whatever its declaration says (a column a declaration gained is empty in the rows before it).
    pub in_key: bool,
}

impl Browsable {
    /// A feed's table, as its declaration has it.
    pub fn feed(feed: &FeedTable) -> Self {
        Self {
            table: table(&feed.name),
            columns: feed
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| BrowseColumn {
                    name: c.name.as_str().to_owned(),
                    ty: c.ty.clone(),
                    in_key: feed.key.contains(&i),
                })
                .collect(),
            key: feed.key.clone(),
        }
    }

    /// The bookings, as an operator reads them (never the card's fingerprint; the number is never stored).
    pub fn bookings() -> Self {
        let column = |name: &str, ty: ColumnType| BrowseColumn {
            name: name.to_owned(),
            ty,
            in_key: name == "reference",
        };
        let columns = vec![
            column("reference", ColumnType::Text),
            column(
                "status",
                ColumnType::Enum(
                    ["seat_held", "payment_pending", "confirmed", "failed"]
                        .map(String::from)
                        .to_vec(),
                ),
            ),
            column("contact_email", ColumnType::Text),
            column("seats", ColumnType::Integer),
            column("amount_minor", ColumnType::Money),
            column("currency", ColumnType::Text),
            column("card_last4", ColumnType::Text),
            column("charge_id", ColumnType::Text),
            column("failure_reason", ColumnType::Text),
            column("created_at", ColumnType::Timestamp),
            column("updated_at", ColumnType::Timestamp),
        ];
        Self {
            table: quoted("bookings"),
            columns,
            key: vec![0],
        }
    }
}

/// What a filter asks of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Text containing this (case-insensitive on ASCII).
    Contains(String),
    Equals(FeedValue),
    AtLeast(FeedValue),
    AtMost(FeedValue),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnFilter {
    pub column: usize,
    pub condition: Condition,
}

/// Where the previous page ended: its last row's sort value (when a column is chosen), tenant and key.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowseCursor {
    pub sort: Option<FeedValue>,
    pub tenant: TenantId,
    pub key: Vec<FeedValue>,
}

#[derive(Debug, Clone, Default)]
pub struct BrowseQuery {
    /// Only this tenant's rows (a tenant operator's always are).
    pub tenant: Option<TenantId>,
    pub filters: Vec<ColumnFilter>,
    /// The column to sort by (`None`: the key).
    pub sort: Option<usize>,
    pub descending: bool,
    pub after: Option<BrowseCursor>,
    pub limit: i64,
}

/// One row: its tenant, and a value per column.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowseRow {
    pub tenant_id: TenantId,
    pub values: Vec<FeedValue>,
}

impl BrowseRow {
    /// Where a page ending on this row ends, for `query`.
    pub fn cursor(&self, table: &Browsable, query: &BrowseQuery) -> BrowseCursor {
        BrowseCursor {
            sort: query.sort.map(|c| self.values[c].clone()),
            tenant: self.tenant_id,
            key: table.key.iter().map(|&k| self.values[k].clone()).collect(),
        }
    }
}

enum Bind {
    Value(FeedValue),
    Tenant(TenantId),
}

struct Sql {
    engine: Engine,
    binds: Vec<Bind>,
}

impl Sql {
    /// A placeholder for `value`, compared as a value of `ty`.
    fn value(&mut self, ty: &ColumnType, value: FeedValue) -> String {
        self.binds.push(Bind::Value(value));
        let n = self.binds.len();
        match (self.engine, ty) {
            (Engine::Postgres, ColumnType::Decimal) => format!("CAST(${n} AS NUMERIC)"),
            (Engine::Sqlite, ColumnType::Decimal) => format!("CAST(${n} AS REAL)"),
            _ => format!("${n}"),
        }
    }

    /// A placeholder for `value`, compared with the column as stored.
    fn stored(&mut self, ty: &ColumnType, value: FeedValue) -> String {
        match (self.engine, ty) {
            (Engine::Sqlite, ColumnType::Decimal) => {
                self.binds.push(Bind::Value(value));
                format!("${}", self.binds.len())
            }
            _ => self.value(ty, value),
        }
    }

    fn tenant(&mut self, tenant: TenantId) -> String {
        self.binds.push(Bind::Tenant(tenant));
        format!("${}", self.binds.len())
    }

    /// The column as compared and sorted (SQLite keeps decimals as text: compared as numbers).
    fn column(&self, column: &BrowseColumn) -> String {
        match (self.engine, &column.ty) {
            (Engine::Sqlite, ColumnType::Decimal) => {
                format!("CAST({} AS REAL)", quoted(&column.name))
            }
            _ => quoted(&column.name),
        }
    }

    /// `(tenant_id, key...) > (cursor's)`: after the cursor in key order.
    fn after_key(&mut self, table: &Browsable, cursor: &BrowseCursor) -> String {
        let mut left = vec!["tenant_id".to_owned()];
        let mut right = vec![self.tenant(cursor.tenant)];
        for (&k, value) in table.key.iter().zip(&cursor.key) {
            // A key compares as stored, as the primary key orders it (on SQLite a decimal's text: as numbers,
            // two keys of one value, `1.5` and `1.50`, would tie and a page would skip one).
            let column = &table.columns[k];
            left.push(quoted(&column.name));
            right.push(self.stored(&column.ty, value.clone()));
        }
        format!("({}) > ({})", left.join(", "), right.join(", "))
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Tenant(t) => query.bind(t),
                Bind::Value(FeedValue::Null) => query.bind(None::<String>),
                Bind::Value(FeedValue::Text(s) | FeedValue::Decimal(s)) => query.bind(s),
                Bind::Value(FeedValue::Integer(n)) => query.bind(n),
                Bind::Value(FeedValue::Boolean(b)) => query.bind(b),
                Bind::Value(FeedValue::Date(d)) => query.bind(d),
                Bind::Value(FeedValue::Timestamp(t)) => query.bind(t),
            };
        }
        query
    }};
}

macro_rules! decode_row {
    ($name:ident, $row:ty) => {
        fn $name(row: &$row, table: &Browsable) -> std::result::Result<BrowseRow, sqlx::Error> {
            let mut values = Vec::with_capacity(table.columns.len());
            for (i, column) in table.columns.iter().enumerate() {
                let at = i + 1;
                let value = match column.ty {
                    ColumnType::Text | ColumnType::Enum(_) => {
                        row.try_get::<Option<String>, _>(at)?.map(FeedValue::Text)
                    }
                    ColumnType::Decimal => row
                        .try_get::<Option<String>, _>(at)?
                        .map(FeedValue::Decimal),
                    ColumnType::Integer | ColumnType::Money => {
                        row.try_get::<Option<i64>, _>(at)?.map(FeedValue::Integer)
                    }
                    ColumnType::Boolean => {
                        row.try_get::<Option<bool>, _>(at)?.map(FeedValue::Boolean)
                    }
                    ColumnType::Date => row
                        .try_get::<Option<NaiveDate>, _>(at)?
                        .map(FeedValue::Date),
                    ColumnType::Timestamp => row
                        .try_get::<Option<DateTime<Utc>>, _>(at)?
                        .map(FeedValue::Timestamp),
                };
                values.push(value.unwrap_or(FeedValue::Null));
            }
            Ok(BrowseRow {
                tenant_id: row.try_get(0)?,
                values,
            })
        }
    };
}
decode_row!(decode_sqlite, sqlx::sqlite::SqliteRow);
decode_row!(decode_pg, sqlx::postgres::PgRow);

impl Store {
    /// The feed's table as it stands, to browse: the declaration's columns the table has (one gained since the
    /// last import is added by the next); `None` while no import has built the table.
    pub async fn browsable_feed(&self, feed: &FeedTable) -> Result<Option<Browsable>> {
        let sql = "SELECT name FROM feed_columns WHERE feed = $1";
        let built: Vec<String> = crate::backend::on_pool!(&self.backend, c => sqlx::query_scalar(sql)
            .bind(feed.name.as_str()).fetch_all(c).await)?;
        if built.is_empty() {
            return Ok(None);
        }
        let mut table = Browsable::feed(feed);
        let keep: Vec<bool> = table
            .columns
            .iter()
            .map(|c| built.contains(&c.name))
            .collect();
        let mut at = 0;
        let mut renumber = vec![None; keep.len()];
        for (i, k) in keep.iter().enumerate() {
            if *k {
                renumber[i] = Some(at);
                at += 1;
            }
        }
        table.key = table.key.iter().filter_map(|&k| renumber[k]).collect();
        let mut i = 0;
        table.columns.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        Ok(Some(table))
    }

    /// One page of `table`'s rows as `query` asks.
    pub async fn browse(&self, table: &Browsable, query: &BrowseQuery) -> Result<Vec<BrowseRow>> {
        let engine = self.engine();
        let mut sql = Sql {
            engine,
            binds: Vec::new(),
        };
        let mut conditions = vec!["TRUE".to_owned()];
        if let Some(tenant) = query.tenant {
            let p = sql.tenant(tenant);
            conditions.push(format!("tenant_id = {p}"));
        }
        for filter in &query.filters {
            let column = &table.columns[filter.column];
            let expr = sql.column(column);
            conditions.push(match &filter.condition {
                Condition::Contains(text) => {
                    let pattern = format!(
                        "%{}%",
                        text.replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_")
                    );
                    let like = match engine {
                        Engine::Postgres => "ILIKE",
                        Engine::Sqlite => "LIKE",
                    };
                    let p = sql.value(&ColumnType::Text, FeedValue::Text(pattern));
                    format!("{expr} {like} {p} ESCAPE '\\'")
                }
                Condition::Equals(v) => format!("{expr} = {}", sql.value(&column.ty, v.clone())),
                Condition::AtLeast(v) => format!("{expr} >= {}", sql.value(&column.ty, v.clone())),
                Condition::AtMost(v) => format!("{expr} <= {}", sql.value(&column.ty, v.clone())),
            });
        }
        let key_order: Vec<String> = std::iter::once("tenant_id".to_owned())
            .chain(table.key.iter().map(|&k| quoted(&table.columns[k].name)))
            .collect();
        let order = match query.sort {
            None => key_order.join(", "),
            Some(c) => {
                let column = &table.columns[c];
                let dir = if query.descending { "DESC" } else { "ASC" };
                let nulls = match column.in_key {
                    true => String::new(),
                    false => format!("({} IS NULL), ", quoted(&column.name)),
                };
                format!(
                    "{nulls}{} {dir}, {}",
                    sql.column(column),
                    key_order.join(", ")
                )
            }
        };
        if let Some(cursor) = &query.after {
            let tail = sql.after_key(table, cursor);
            conditions.push(match (query.sort, &cursor.sort) {
                (None, _) | (Some(_), None) => tail,
                (Some(c), Some(FeedValue::Null)) => {
                    format!("({} IS NULL AND {tail})", quoted(&table.columns[c].name))
                }
                (Some(c), Some(value)) => {
                    let column = &table.columns[c];
                    let expr = sql.column(column);
                    let v = sql.value(&column.ty, value.clone());
                    let beyond = if query.descending { "<" } else { ">" };
                    let nulls = match column.in_key {
                        true => String::new(),
                        false => format!("{} IS NULL OR ", quoted(&column.name)),
                    };
                    format!("({nulls}{expr} {beyond} {v} OR ({expr} = {v} AND {tail}))")
                }
            });
        }
        // Each output is named by its position: an output named as its column would be what `ORDER BY` sorts
        // (PostgreSQL's rule), and a decimal's is its text.
        let select: Vec<String> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    i,
                    match (engine, &c.ty) {
                        (Engine::Postgres, ColumnType::Decimal) => {
                            format!("CAST({} AS TEXT)", quoted(&c.name))
                        }
                        // Read as the 64-bit numbers they are declared, whatever width the table has (a booking's seats).
                        (Engine::Postgres, ColumnType::Integer | ColumnType::Money) => {
                            format!("CAST({} AS BIGINT)", quoted(&c.name))
                        }
                        _ => quoted(&c.name),
                    },
                )
            })
            .map(|(i, expr)| format!("{expr} AS out_{i}"))
            .collect();
        let limit = sql.value(&ColumnType::Integer, FeedValue::Integer(query.limit));
        let text = format!(
            "SELECT tenant_id AS out_tenant, {} FROM {} WHERE {} ORDER BY {order} LIMIT {limit}",
            select.join(", "),
            table.table,
            conditions.join(" AND ")
        );
        let rows = match &self.backend {
            Backend::Sqlite { reader, .. } => bind_all!(sqlx::query(&text), sql.binds)
                .fetch_all(reader)
                .await?
                .iter()
                .map(|r| decode_sqlite(r, table))
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?,
            Backend::Postgres(pool) => bind_all!(sqlx::query(&text), sql.binds)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| decode_pg(r, table))
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?,
        };
        Ok(rows)
    }
}
