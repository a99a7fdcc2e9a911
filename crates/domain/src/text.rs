//! Small text newtypes that parse: tenant slugs, airport codes, emails, flight numbers, idempotency keys.

use std::fmt;

use crate::error::ParseError;

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        crate::sqlx_string_newtype!($name);
    };
}

/// A tenant's URL slug: 2–40 chars of `a-z`, `0-9` and inner `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSlug(String);
string_newtype!(TenantSlug);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !(2..=40).contains(&raw.len()) || !ok_chars || raw.starts_with('-') || raw.ends_with('-')
        {
            return Err(ParseError::new(
                "must be 2-40 characters of a-z, 0-9 and inner hyphens",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// An IATA airport code: three letters, stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AirportCode(String);
string_newtype!(AirportCode);

impl AirportCode {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ParseError::new("must be a 3-letter IATA airport code"));
        }
        Ok(Self(raw.to_ascii_uppercase()))
    }
}

/// A flight number such as `EI154`: a 2-character airline designator and 1–4 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlightNumber(String);
string_newtype!(FlightNumber);

impl FlightNumber {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim().to_ascii_uppercase();
        let (airline, digits) = raw.split_at(raw.len().min(2));
        let airline_ok = airline.len() == 2 && airline.bytes().all(|b| b.is_ascii_alphanumeric());
        let digits_ok =
            (1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if !airline_ok || !digits_ok {
            return Err(ParseError::new(
                "must be a 2-character airline code followed by 1-4 digits",
            ));
        }
        Ok(Self(raw))
    }
}

/// An email address, well-formed enough to send to: one `@`, a non-empty local part, a dotted domain, no
/// whitespace or control characters, at most 254 characters. Stored as given, with the domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let invalid = || ParseError::new("must be an email address like name@example.com");
        if raw.is_empty()
            || raw.len() > 254
            || raw.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(invalid)?;
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || !domain.contains('.')
            || !labels_ok
        {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }
}

/// The client's `Idempotency-Key`: 16 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);
string_newtype!(IdempotencyKey);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if !(16..=255).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::new(
                "must be 16 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" a.b@Example.COM ").unwrap().as_str(),
            "a.b@example.com"
        );
        for bad in ["", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@b..c", "a@-b.c"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn airport_codes_and_flight_numbers() {
        assert_eq!(AirportCode::parse("dub").unwrap().as_str(), "DUB");
        assert!(AirportCode::parse("DU1").is_err());
        assert_eq!(FlightNumber::parse("ei154").unwrap().as_str(), "EI154");
        assert!(FlightNumber::parse("EI").is_err());
        assert!(FlightNumber::parse("EI12345").is_err());
    }

    #[test]
    fn slugs_and_keys() {
        assert!(TenantSlug::parse("demo").is_ok());
        assert!(TenantSlug::parse("-demo").is_err());
        assert!(TenantSlug::parse("Demo").is_err());
        assert!(IdempotencyKey::parse("short").is_err());
        assert!(IdempotencyKey::parse("0123456789abcdef").is_ok());
        assert!(IdempotencyKey::parse("0123456789abcde f").is_err());
    }
}
