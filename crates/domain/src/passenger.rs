//! Passenger names, and their normal form for duplicate detection.

use unicode_normalization::UnicodeNormalization;

use crate::error::ParseError;

/// One given or family name: 1–100 characters after trimming, no control characters, at least one letter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ParseError::new("is required"));
        }
        if trimmed.chars().count() > 100 {
            return Err(ParseError::new("must be at most 100 characters"));
        }
        if trimmed.chars().any(char::is_control) || !trimmed.chars().any(char::is_alphabetic) {
            return Err(ParseError::new("must be a name"));
        }
        Ok(Self(
            trimmed.split_whitespace().collect::<Vec<_>>().join(" "),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// NFKC, case-folded, single-spaced: "  SEÁN  o'brien" and "Seán O'Brien" compare equal.
    /// Upper- then lower-casing is the fold: lower-casing alone keeps `ß` while its capital form `SS` lowers to
    /// `ss`, so "Straße" and "STRASSE" would differ (found by the property tests).
    pub fn normalized(&self) -> String {
        self.0
            .nfkc()
            .collect::<String>()
            .to_uppercase()
            .to_lowercase()
    }
}

impl TryFrom<String> for PersonName {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(value: PersonName) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Passenger {
    pub given_name: PersonName,
    pub family_name: PersonName,
}

impl Passenger {
    /// The form used in fingerprints: `family|given`, normalised.
    pub fn normalized(&self) -> String {
        format!(
            "{}|{}",
            self.family_name.normalized(),
            self.given_name.normalized()
        )
    }
}

/// The most passengers one booking may carry.
pub const MAX_PASSENGERS: usize = 9;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form_ignores_case_and_spacing() {
        let a = PersonName::parse("  SEÁN   O'Brien ").unwrap();
        let b = PersonName::parse("seán o'brien").unwrap();
        assert_eq!(a.as_str(), "SEÁN O'Brien");
        assert_eq!(a.normalized(), b.normalized());
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse("1234").is_err());
        let strasse = PersonName::parse("Straße").unwrap().normalized();
        assert_eq!(strasse, PersonName::parse("STRASSE").unwrap().normalized());
    }
}
