//! Small text newtypes that parse: tenant slugs, airport codes, emails, flight numbers, idempotency keys.

use std::fmt;

use crate::error::ParseError;

macro_rules! string_newtype {
    ($name:ident) => {
        string_newtype!($name, parse);
    };
    ($name:ident, $read:ident) => {
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
        crate::sqlx_string_newtype!($name, $read);
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

/// An email address our mailer can deliver to. It must pass lettre's own parser (the one that builds the
/// message), and stricter rules besides: lettre also accepts quoted local parts, which mailbox providers
/// refuse, and non-ASCII ones, which need the relay's SMTPUTF8 and are rarely deliverable. An address that
/// cannot be delivered means a booking confirmed and charged, and a customer never told.
///
/// - the local part is an RFC 5321 dot-atom of ASCII `atext` (letters, digits and ``!#$%&'*+-/=?^_`{|}~``),
///   dots only between them: no quoted strings (`"a b"@`), no comments (`a(x)@`), no `,`;
/// - the domain has at least one dot, its labels letters, digits and inner hyphens (an internationalised
///   domain is kept as typed; lettre sends it with SMTPUTF8);
/// - nowhere whitespace, a control or an invisible format character (U+200B, U+202E, U+00AD...), which
///   pasted text carries unseen;
/// - at most 254 characters.
///
/// Stored as given, with the domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);
string_newtype!(Email, from_stored);

const EMAIL_INVALID: &str = "must be an email address like name@example.com";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let invalid = || ParseError::new(EMAIL_INVALID);
        if raw.chars().any(|c| c.is_whitespace() || is_invisible(c)) {
            return Err(ParseError::new(
                "contains a space or an invisible character: type the address rather than pasting it",
            ));
        }
        if raw.len() > 254 {
            return Err(ParseError::new("must be at most 254 characters"));
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(invalid)?;
        let atext_only = local.bytes().all(|b| b == b'.' || is_atext(b));
        if local.is_empty() || local.len() > 64 || !atext_only {
            return Err(invalid());
        }
        if local.split('.').any(str::is_empty) {
            return Err(ParseError::new(
                "must not start or end with a dot, or have two dots in a row, before the @",
            ));
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(invalid());
        }
        let address = format!("{local}@{}", domain.to_lowercase());
        // The mailer's parser has the last word: whatever it would refuse when the email is built, the person
        // hears about now, not never.
        address.parse::<lettre::Address>().map_err(|_| invalid())?;
        Ok(Self(address))
    }
}

impl Email {
    /// An address as stored, possibly under the looser rules of an earlier release (a booking taken then must
    /// stay readable): one `@` between non-empty parts, no control characters. New input goes through
    /// [`Email::parse`]; the mailer parses the address again before sending, and fails what it cannot send.
    pub fn from_stored(raw: &str) -> Result<Self, ParseError> {
        match raw.rsplit_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !raw.chars().any(char::is_control) =>
            {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(ParseError::new("stored email address is not an address")),
        }
    }
}

/// RFC 5322 `atext`, ASCII only.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Characters nobody can see, which pasted text carries unseen: controls and Unicode's format characters
/// (general category Cf: zero-width spaces and joiners, soft hyphens, bidirectional controls).
pub(crate) fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control() || c.general_category() == GeneralCategory::Format
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
        for good in [
            "ann@example.com",
            "ann.lee+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "x_y-z@b\u{fc}cher.de",
        ] {
            assert_eq!(Email::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@b..c", "a@-b.c", "a@b@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    /// Addresses the old parser let through and the mailer could never send to (issue 12, defect 5): the
    /// booking was confirmed and charged, and the email retried forever.
    #[test]
    fn emails_the_mailer_cannot_send_to_are_refused() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("ann@{}.com", vec!["b".repeat(60); 5].join("."));
        for bad in [
            "a,b@example.com",
            "a..b@example.com",
            ".ann@example.com",
            "ann.@example.com",
            "a(comment)@example.com",
            "\"ann lee\"@example.com",
            "\"ann\"@example.com",
            "se\u{e1}n@example.com",
            "ann\u{202E}moc@example.com",
            "an\u{200B}n@example.com",
            "ann@exam\u{AD}ple.com",
            "\u{FEFF}ann@example.com",
            "ann@example.com\u{200B}",
            "ann\t@example.com",
            "ann@[192.168.0.1]",
            "ann@localhost",
            long_local.as_str(),
            long.as_str(),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn email_messages_speak_to_the_person_who_typed_it() {
        let message = |raw: &str| Email::parse(raw).unwrap_err().message().to_owned();
        assert_eq!(message("nobody@"), EMAIL_INVALID);
        assert!(message("an\u{200B}n@example.com").contains("invisible character"));
        assert!(message("a..b@example.com").contains("two dots in a row"));
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
