//! Partner-data feed types, as an operator declares them (one TOML file per feed, read by `skybook-import`): the
//! columns a feed's rows have, its key and how a file replaces what came before. The storage layer builds and
//! evolves each feed's table from a [`FeedTable`]; the importer parses every row into [`FeedValue`]s by it.
//!
//! Names become SQL identifiers, so they are parsed here, once: lower-case ASCII letters, digits and `_`,
//! starting with a letter, at most 40 characters, and none of the names skybook keeps for itself.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::ParseError;

/// Names a feed or a column may not take: the columns every feed table has, and SQL's own words that a careless
/// quote would turn into syntax.
const RESERVED: &[&str] = &[
    "tenant_id",
    "run_id",
    "updated_at",
    "line",
    "select",
    "from",
    "where",
    "table",
    "order",
    "group",
    "user",
    "default",
    "null",
    "true",
    "false",
];

/// A lower-case SQL-safe identifier: a feed's or a column's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(String);

impl Identifier {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = raw.len() <= 40
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ParseError::new(
                "must be 1 to 40 characters of a-z, 0-9 and _, starting with a letter",
            ));
        }
        if RESERVED.contains(&raw) {
            return Err(ParseError::new(format!("{raw:?} is reserved")));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// A whole number (64-bit).
    Integer,
    /// A decimal number, kept exactly as written (normalised: no `+`, no leading zeros).
    Decimal,
    /// An amount in minor units (cents), a whole number.
    Money,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339 with a zone (`2026-12-01T07:30:00Z`, `...+01:00`), stored in UTC.
    Timestamp,
    /// One of the listed values, exactly.
    Enum(Vec<String>),
}

impl ColumnType {
    /// The declared name, as stored in a feed's schema record: a change of it is a change of type.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Decimal => "decimal",
            Self::Money => "money",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
            Self::Enum(_) => "enum",
        }
    }

    /// The type names a declaration may use.
    pub const NAMES: &'static str = "text, integer, decimal, money, boolean, date, timestamp, enum";
}

/// One column of a feed's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedColumn {
    pub name: Identifier,
    pub ty: ColumnType,
    /// A row without a value for it is rejected. Part of the key implies required.
    pub required: bool,
}

/// What the storage layer needs to build, evolve and load a feed's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedTable {
    pub name: Identifier,
    pub columns: Vec<FeedColumn>,
    /// The columns that identify a row within a tenant (indexes into `columns`), in declared order.
    pub key: Vec<usize>,
}

impl FeedTable {
    pub fn key_columns(&self) -> impl Iterator<Item = &FeedColumn> {
        self.key.iter().map(|&i| &self.columns[i])
    }
}

/// How a file's rows meet what the feed's table already holds for the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Rows are inserted or updated by key; rows absent from the file stay.
    Upsert,
    /// As `Upsert`, and the tenant's rows absent from the file are removed: the file is the whole set.
    Replace,
}

/// A row's value for one column, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedValue {
    Null,
    Text(String),
    Integer(i64),
    /// Normalised decimal text (`-12.50`).
    Decimal(String),
    Boolean(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

/// The value as text, as the admin shows it and a CSV carries it (empty for no value; times in RFC 3339, UTC).
/// The importer reads each back as the same value.
impl fmt::Display for FeedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => Ok(()),
            Self::Text(s) | Self::Decimal(s) => f.write_str(s),
            Self::Integer(n) => write!(f, "{n}"),
            Self::Boolean(b) => write!(f, "{b}"),
            Self::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Self::Timestamp(t) => {
                f.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_safe_sql_names() {
        for good in ["flights", "fare_minor", "a1"] {
            assert!(Identifier::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1a",
            "Flights",
            "fare-minor",
            "a b",
            "x\"; drop table y",
            "tenant_id",
            "select",
        ] {
            assert!(Identifier::parse(bad).is_err(), "{bad}");
        }
        assert!(Identifier::parse(&"a".repeat(41)).is_err());
    }
}
