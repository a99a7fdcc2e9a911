//! Feed declarations: a feed type is a TOML file, not a Rust module (Frictionless Table Schema is the model).
//! skybook ships `flights` and `airports` (`crates/import/feeds/`); an operator adds theirs in
//! `SKYBOOK_FEEDS_DIR`. A declaration that does not parse, or says something impossible, is refused with one
//! line naming the file, the field and what is wrong.
//!
//! ```toml
//! name = "airports"
//! key = ["iata"]
//! mode = "replace"              # or "upsert" (the default)
//! schedule = "0 0 2 * * *"      # optional: cron fetches it for every subscribed tenant
//! entry = "airports.csv"        # optional: the zip entry to read when a zip holds several files
//!
//! [dialect]                     # all optional
//! delimiter = ","
//! quote = '"'
//! encoding = "utf-8"            # or "latin-1" / "windows-1252"
//! null = ["", "NULL"]
//!
//! [budget]                      # a run rejecting more than either applies nothing
//! max_rejected = 100
//! max_rejected_ratio = 0.01
//!
//! [[columns]]
//! name = "iata"
//! type = "text"                 # text, integer, decimal, money, boolean, date, timestamp, enum
//! required = true
//! pattern = "^[A-Z]{3}$"        # text: the whole value must match
//! max_length = 3                # text
//! aliases = ["code", "IATA code"]   # headers that mean this column
//! # min / max (integer, decimal, money), values = [...] (enum; text: the allowed values)
//! ```

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use skybook_domain::feed::{ColumnType, FeedColumn, FeedTable, Identifier, LoadMode};

/// A declaration that cannot be used: `<file>: <field>: <what is wrong>`, on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct DeclarationError {
    pub file: String,
    pub field: String,
    pub message: String,
}

/// The character encodings a feed may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// ISO-8859-1 read as its superset Windows-1252, as browsers and every CSV tool do.
    Windows1252,
}

/// How a feed's CSV is written.
#[derive(Debug, Clone)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub encoding: Encoding,
    /// Field texts that mean "no value".
    pub null: Vec<String>,
}

/// How many rejected rows a run may have and still apply.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_rejected: u64,
    pub max_rejected_ratio: f64,
}

impl Budget {
    pub fn exceeded(&self, rejected: u64, read: u64) -> bool {
        rejected > self.max_rejected
            || (read > 0 && rejected as f64 / read as f64 > self.max_rejected_ratio)
    }
}

/// A column's rules beyond its type.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_length: Option<usize>,
    pub pattern: Option<Regex>,
    /// Text: the allowed values (enum columns carry theirs in the type).
    pub values: Option<Vec<String>>,
}

/// A parsed, checked feed declaration.
#[derive(Debug, Clone)]
pub struct FeedType {
    pub table: FeedTable,
    pub constraints: Vec<Constraints>,
    /// Lower-cased header text → column index: the column's own name and its aliases.
    pub headers: HashMap<String, usize>,
    pub mode: LoadMode,
    pub dialect: Dialect,
    pub budget: Budget,
    pub schedule: Option<String>,
    pub entry: Option<String>,
    /// Where it was declared (`built-in` or a path), for messages.
    pub origin: String,
}

impl FeedType {
    pub fn name(&self) -> &str {
        self.table.name.as_str()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    key: Vec<String>,
    #[serde(default)]
    mode: Option<String>,
    schedule: Option<String>,
    entry: Option<String>,
    #[serde(default)]
    dialect: RawDialect,
    #[serde(default)]
    budget: RawBudget,
    columns: Vec<RawColumn>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDialect {
    delimiter: Option<String>,
    quote: Option<String>,
    encoding: Option<String>,
    null: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_rejected: Option<u64>,
    max_rejected_ratio: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    required: bool,
    min: Option<f64>,
    max: Option<f64>,
    max_length: Option<usize>,
    pattern: Option<String>,
    values: Option<Vec<String>>,
    #[serde(default)]
    aliases: Vec<String>,
}

/// Parses the declaration in `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<FeedType, DeclarationError> {
    let err = |field: &str, message: String| DeclarationError {
        file: file.to_owned(),
        field: field.to_owned(),
        message,
    };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let field = line.map_or_else(|| "declaration".to_owned(), |l| format!("line {l}"));
        err(&field, e.message().replace('\n', " "))
    })?;
    let name = Identifier::parse(&raw.name).map_err(|e| err("name", e.message().to_owned()))?;
    if raw.columns.is_empty() {
        return Err(err("columns", "declare at least one column".into()));
    }
    let mut columns = Vec::new();
    let mut constraints = Vec::new();
    let mut headers = HashMap::new();
    for (i, c) in raw.columns.iter().enumerate() {
        let field = |what: &str| format!("columns[{i}]{what}");
        let column_name =
            Identifier::parse(&c.name).map_err(|e| err(&field(".name"), e.message().to_owned()))?;
        let ty = column_type(c).map_err(|m| err(&field(".type"), m))?;
        let numeric = matches!(
            ty,
            ColumnType::Integer | ColumnType::Decimal | ColumnType::Money
        );
        if (c.min.is_some() || c.max.is_some()) && !numeric {
            return Err(err(
                &field(".min"),
                format!(
                    "min and max apply to integer, decimal and money columns, not {}",
                    ty.name()
                ),
            ));
        }
        if let (Some(min), Some(max)) = (c.min, c.max) {
            if min > max {
                return Err(err(&field(".min"), format!("min {min} is above max {max}")));
            }
        }
        let text = ty == ColumnType::Text;
        if !text && (c.pattern.is_some() || c.max_length.is_some()) {
            return Err(err(
                &field(".pattern"),
                "pattern and max_length apply to text columns".into(),
            ));
        }
        let pattern = c
            .pattern
            .as_deref()
            .map(|p| Regex::new(&format!("^(?:{p})$")))
            .transpose()
            .map_err(|e| {
                err(
                    &field(".pattern"),
                    format!("not a regular expression: {}", first_line(&e.to_string())),
                )
            })?;
        for header in std::iter::once(&c.name).chain(&c.aliases) {
            let header = header.trim().to_lowercase();
            if headers.insert(header.clone(), i).is_some() {
                return Err(err(
                    &field(".aliases"),
                    format!("header {header:?} already names another column"),
                ));
            }
        }
        let values = if text { c.values.clone() } else { None };
        constraints.push(Constraints {
            min: c.min,
            max: c.max,
            max_length: c.max_length,
            pattern,
            values,
        });
        columns.push(FeedColumn {
            name: column_name,
            ty,
            required: c.required,
        });
    }
    let mut key = Vec::new();
    for (i, k) in raw.key.iter().enumerate() {
        let Some(index) = columns.iter().position(|c| c.name.as_str() == k) else {
            return Err(err(
                &format!("key[{i}]"),
                format!("{k:?} is not a declared column"),
            ));
        };
        if key.contains(&index) {
            return Err(err(&format!("key[{i}]"), format!("{k:?} is listed twice")));
        }
        columns[index].required = true;
        key.push(index);
    }
    if key.is_empty() {
        return Err(err("key", "name the column(s) that identify a row".into()));
    }
    let mode = match raw.mode.as_deref() {
        None | Some("upsert") => LoadMode::Upsert,
        Some("replace") => LoadMode::Replace,
        Some(other) => {
            return Err(err(
                "mode",
                format!("{other:?}: expected \"upsert\" or \"replace\""),
            ))
        }
    };
    let dialect =
        dialect(&raw.dialect).map_err(|(field, m)| err(&format!("dialect.{field}"), m))?;
    let ratio = raw.budget.max_rejected_ratio.unwrap_or(0.01);
    if !(0.0..=1.0).contains(&ratio) {
        return Err(err(
            "budget.max_rejected_ratio",
            format!("{ratio} is not between 0 and 1"),
        ));
    }
    if let Some(schedule) = &raw.schedule {
        if schedule.split_whitespace().count() < 5 {
            return Err(err(
                "schedule",
                format!("{schedule:?} is not a cron expression (\"0 0 2 * * *\": seconds first)"),
            ));
        }
    }
    Ok(FeedType {
        table: FeedTable { name, columns, key },
        constraints,
        headers,
        mode,
        dialect,
        budget: Budget {
            max_rejected: raw.budget.max_rejected.unwrap_or(100),
            max_rejected_ratio: ratio,
        },
        schedule: raw.schedule,
        entry: raw.entry,
        origin: file.to_owned(),
    })
}

fn column_type(c: &RawColumn) -> Result<ColumnType, String> {
    Ok(match c.ty.as_str() {
        "text" => ColumnType::Text,
        "integer" => ColumnType::Integer,
        "decimal" => ColumnType::Decimal,
        "money" => ColumnType::Money,
        "boolean" => ColumnType::Boolean,
        "date" => ColumnType::Date,
        "timestamp" => ColumnType::Timestamp,
        "enum" => match &c.values {
            Some(values) if !values.is_empty() => ColumnType::Enum(values.clone()),
            _ => return Err("an enum column lists its values (values = [...])".into()),
        },
        other => {
            return Err(format!(
                "{other:?} is not a type; expected one of {}",
                ColumnType::NAMES
            ))
        }
    })
}

fn dialect(raw: &RawDialect) -> Result<Dialect, (&'static str, String)> {
    let byte = |field: &'static str, value: &Option<String>, default: u8| match value.as_deref() {
        None => Ok(default),
        Some(s) if s.len() == 1 => Ok(s.as_bytes()[0]),
        Some("\\t" | "tab") => Ok(b'\t'),
        Some(other) => Err((field, format!("{other:?}: expected one ASCII character"))),
    };
    let encoding = match raw.encoding.as_deref().map(str::to_lowercase).as_deref() {
        None | Some("utf-8" | "utf8") => Encoding::Utf8,
        Some("latin-1" | "latin1" | "iso-8859-1" | "windows-1252" | "cp1252") => {
            Encoding::Windows1252
        }
        Some(other) => {
            return Err((
                "encoding",
                format!("{other:?}: expected utf-8, latin-1 or windows-1252"),
            ))
        }
    };
    Ok(Dialect {
        delimiter: byte("delimiter", &raw.delimiter, b',')?,
        quote: byte("quote", &raw.quote, b'"')?,
        encoding,
        null: raw.null.clone().unwrap_or_else(|| vec![String::new()]),
    })
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s)
}

/// The feed types skybook ships.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("flights.toml", include_str!("../feeds/flights.toml")),
    ("airports.toml", include_str!("../feeds/airports.toml")),
];

/// The built-in feed types and every `*.toml` in `dir`. An operator's declaration with a built-in's name
/// replaces it (to change its schedule, aliases or budget); two of the operator's may not share a name.
pub fn load_all(dir: Option<&Path>) -> Result<Vec<FeedType>, DeclarationError> {
    let mut feeds = Vec::new();
    for (file, text) in BUILT_IN {
        feeds.push(parse(&format!("built-in {file}"), text)?);
    }
    if let Some(dir) = dir {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| DeclarationError {
            file: shown.clone(),
            field: "SKYBOOK_FEEDS_DIR".into(),
            message: format!("cannot read the directory: {e}"),
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| DeclarationError {
                file: file.clone(),
                field: "file".into(),
                message: e.to_string(),
            })?;
            let feed = parse(&file, &text)?;
            match feeds
                .iter()
                .position(|f: &FeedType| f.name() == feed.name())
            {
                Some(i) if feeds[i].origin.starts_with("built-in ") => feeds[i] = feed,
                Some(i) => {
                    return Err(DeclarationError {
                        file,
                        field: "name".into(),
                        message: format!(
                            "feed {:?} is already declared by {}",
                            feed.name(),
                            feeds[i].origin
                        ),
                    })
                }
                None => feeds.push(feed),
            }
        }
    }
    Ok(feeds)
}
