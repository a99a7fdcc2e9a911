//! One row into its declared types: every field parsed, every constraint checked, every problem named (a row
//! with any problem is rejected whole, with one reject record per problem).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use skybook_domain::feed::{ColumnType, FeedValue};

use crate::declaration::{Constraints, FeedType};
use crate::rows::{decode, Mapping};

/// What is wrong with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The column, when the problem is one field's.
    pub column: Option<String>,
    pub value: Option<String>,
    pub reason: String,
}

/// Offending values are kept to this many characters.
const VALUE_CHARS: usize = 200;

pub fn truncate(value: &str) -> String {
    match value.char_indices().nth(VALUE_CHARS) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_owned(),
    }
}

pub(crate) fn parse_row(
    record: &csv::ByteRecord,
    mapping: &Mapping,
    feed: &FeedType,
) -> Result<Vec<FeedValue>, Vec<Problem>> {
    let header_fields = mapping.iter().flatten().max().map_or(0, |m| m + 1);
    if record.len() < header_fields {
        return Err(vec![Problem {
            column: None,
            value: None,
            reason: format!(
                "has {} field(s); the header has at least {header_fields}",
                record.len()
            ),
        }]);
    }
    let mut values = Vec::with_capacity(mapping.len());
    let mut problems = Vec::new();
    for (i, column) in feed.table.columns.iter().enumerate() {
        let name = column.name.as_str();
        let problem = |value: Option<&str>, reason: String| Problem {
            column: Some(name.to_owned()),
            value: value.map(str::to_owned),
            reason,
        };
        let Some(field) = mapping[i] else {
            values.push(FeedValue::Null);
            continue;
        };
        let Some(text) = decode(&record[field], feed.dialect.encoding) else {
            let lossy = String::from_utf8_lossy(&record[field]).into_owned();
            problems.push(problem(Some(&lossy), "is not valid UTF-8".into()));
            continue;
        };
        let trimmed = text.trim();
        if feed.dialect.null.iter().any(|n| n == trimmed) {
            if column.required {
                problems.push(problem(None, "is required".into()));
            }
            values.push(FeedValue::Null);
            continue;
        }
        match parse_value(trimmed, &column.ty, &feed.constraints[i]) {
            Ok(value) => values.push(value),
            Err(reason) => problems.push(problem(Some(trimmed), reason)),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// `text` as a value of type `ty`, by the importer's own rules (no column constraints): what the admin's
/// filters and cursors parse with, so a value reads the same wherever it is typed. The error says what is wrong.
pub fn parse_typed(text: &str, ty: &ColumnType) -> Result<FeedValue, String> {
    parse_value(text, ty, &Constraints::default())
}

fn parse_value(text: &str, ty: &ColumnType, rules: &Constraints) -> Result<FeedValue, String> {
    let value = match ty {
        ColumnType::Text => {
            if let Some(max) = rules.max_length {
                let chars = text.chars().count();
                if chars > max {
                    return Err(format!("is {chars} characters long; at most {max}"));
                }
            }
            if let Some(pattern) = &rules.pattern {
                if !pattern.is_match(text) {
                    return Err(format!(
                        "does not match the pattern {}",
                        shown_pattern(pattern)
                    ));
                }
            }
            if let Some(values) = &rules.values {
                if !values.iter().any(|v| v == text) {
                    return Err(format!("is not one of {}", values.join(", ")));
                }
            }
            FeedValue::Text(text.to_owned())
        }
        ColumnType::Enum(values) => {
            if !values.iter().any(|v| v == text) {
                return Err(format!("is not one of {}", values.join(", ")));
            }
            FeedValue::Text(text.to_owned())
        }
        ColumnType::Integer | ColumnType::Money => {
            let n: i64 = text
                .parse()
                .map_err(|_| "is not a whole number".to_owned())?;
            in_range(n as f64, rules)?;
            FeedValue::Integer(n)
        }
        ColumnType::Decimal => {
            let normalised =
                decimal(text).ok_or_else(|| "is not a decimal number such as 12.50".to_owned())?;
            in_range(normalised.parse::<f64>().unwrap_or(f64::NAN), rules)?;
            FeedValue::Decimal(normalised)
        }
        ColumnType::Boolean => FeedValue::Boolean(match text.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => true,
            "false" | "f" | "no" | "n" | "0" => false,
            _ => return Err("is not true or false".into()),
        }),
        ColumnType::Date => FeedValue::Date(
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .filter(|d| YEARS.contains(&d.year()))
                .ok_or_else(|| "is not a date YYYY-MM-DD from year 1 to 9999".to_owned())?,
        ),
        ColumnType::Timestamp => FeedValue::Timestamp(
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| YEARS.contains(&t.year()))
                .ok_or_else(|| {
                    "is not a time with its zone from year 1 to 9999, such as 2026-12-01T07:30:00Z"
                        .to_owned()
                })?,
        ),
    };
    Ok(value)
}

/// The years a date or a time may have: what both databases store and every tool reads (chrono parses years
/// far beyond, PostgreSQL refuses some of them, and a day added to the last one overflows).
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

fn in_range(n: f64, rules: &Constraints) -> Result<(), String> {
    if let Some(min) = rules.min {
        if n < min {
            return Err(format!("is below the minimum {min}"));
        }
    }
    if let Some(max) = rules.max {
        if n > max {
            return Err(format!("is above the maximum {max}"));
        }
    }
    Ok(())
}

/// `-012.50` → `-12.50`; `None` unless digits with at most one point and an optional sign.
fn decimal(text: &str) -> Option<String> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let valid = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    if !valid || whole.len() + fraction.len() > 38 {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    Some(format!("{sign}{whole}{fraction}"))
}

/// The declared pattern, without the anchors the declaration parser added.
fn shown_pattern(pattern: &regex::Regex) -> &str {
    let p = pattern.as_str();
    p.strip_prefix("^(?:")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_normalise() {
        assert_eq!(decimal("-012.50").as_deref(), Some("-12.50"));
        assert_eq!(decimal("+7").as_deref(), Some("7"));
        assert_eq!(decimal("000").as_deref(), Some("0"));
        for bad in ["", "1.", ".5", "1e5", "1,5", "--1", "1.2.3"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
    }

    /// Years a database refuses or a day's arithmetic overflows are a reject, not a failed load (or a panic in
    /// the admin's filters, which parse with the same rules).
    #[test]
    fn dates_and_times_are_of_years_1_to_9999() {
        for good in ["0001-01-01", "9999-12-31"] {
            assert!(parse_typed(good, &ColumnType::Date).is_ok(), "{good}");
        }
        for bad in ["+262142-12-31", "-5000-01-01", "0000-01-01", "10000-01-01"] {
            assert!(parse_typed(bad, &ColumnType::Date).is_err(), "{bad}");
        }
        assert!(parse_typed("9999-12-31T23:59:59Z", &ColumnType::Timestamp).is_ok());
        assert!(parse_typed("0000-12-31T23:59:59Z", &ColumnType::Timestamp).is_err());
    }

    #[test]
    fn long_values_are_truncated_on_a_character() {
        let long = "é".repeat(300);
        let short = truncate(&long);
        assert_eq!(short.chars().count(), VALUE_CHARS + 1);
        assert!(short.ends_with('…'));
    }
}
