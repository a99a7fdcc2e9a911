//! Payment cards. A [`CardNumber`] that exists has passed Luhn; its digits are held in a `secrecy` box and are
//! never `Debug`- or `Display`-printed: only the last 4 digits and the brand leave this type in clear, and the
//! keyed fingerprint (see [`crate::fingerprint`]) is the only derived value that may be stored.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use secrecy::{ExposeSecret, SecretString};

use crate::error::ParseError;

/// The digits of a card number (12–19, Luhn-valid). Spaces and dashes are accepted on input and dropped.
#[derive(Clone)]
pub struct CardNumber(SecretString);

impl CardNumber {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::new("must be 12 to 19 digits"));
        }
        if !luhn_valid(&digits) {
            return Err(ParseError::new("is not a valid card number"));
        }
        Ok(Self(SecretString::from(digits)))
    }

    /// The full digits. Call only to hand them to the payment provider's tokeniser or to a keyed hash.
    pub fn expose_digits(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn last4(&self) -> String {
        let digits = self.expose_digits();
        digits[digits.len() - 4..].to_owned()
    }

    pub fn brand(&self) -> CardBrand {
        CardBrand::from_digits(self.expose_digits())
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber(****{})", self.last4())
    }
}

/// The Luhn checksum (ISO/IEC 7812-1).
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Other,
}

impl CardBrand {
    fn from_digits(d: &str) -> Self {
        let two: u32 = d[..2].parse().unwrap_or(0);
        let four: u32 = d[..4].parse().unwrap_or(0);
        match () {
            _ if d.starts_with('4') => Self::Visa,
            _ if (51..=55).contains(&two) || (2221..=2720).contains(&four) => Self::Mastercard,
            _ if two == 34 || two == 37 => Self::Amex,
            _ => Self::Other,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Other => "card",
        }
    }
}

/// A card's expiry month; valid through the last day of that month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    month: u8,
    year: u16,
}

impl Expiry {
    /// `year` may be given as 2 or 4 digits. `today` decides whether it has passed (the domain reads no clock).
    /// The errors say which parts are wrong — both, when both are — and an expired card is reported against
    /// the year.
    pub fn parse(
        month: i64,
        year: i64,
        today: NaiveDate,
    ) -> Result<Self, Vec<(ExpiryPart, ParseError)>> {
        let mut errors = Vec::new();
        if !(1..=12).contains(&month) {
            errors.push((ExpiryPart::Month, ParseError::new("must be 1 to 12")));
        }
        let year = if (0..100).contains(&year) {
            2000 + year
        } else {
            year
        };
        if !(2000..=2100).contains(&year) {
            errors.push((
                ExpiryPart::Year,
                ParseError::new("must be a year such as 2030"),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (month, year) = (month as u8, year as u16);
        if (i32::from(year), u32::from(month)) < (today.year(), today.month()) {
            return Err(vec![(
                ExpiryPart::Year,
                ParseError::new("the card has expired"),
            )]);
        }
        Ok(Self { month, year })
    }

    pub fn month(&self) -> u8 {
        self.month
    }
    pub fn year(&self) -> u16 {
        self.year
    }
}

/// Which half of an expiry date is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryPart {
    Month,
    Year,
}

/// The 3–4 digit card verification code. Secret like the number.
#[derive(Clone)]
pub struct Cvc(SecretString);

impl Cvc {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        if !(3..=4).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::new("must be 3 or 4 digits"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

/// A complete card as typed by the traveller.
#[derive(Debug, Clone)]
pub struct Card {
    pub number: CardNumber,
    pub expiry: Expiry,
    pub cvc: Cvc,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_brands() {
        let visa = CardNumber::parse("4242 4242 4242 4242").unwrap();
        assert_eq!(visa.brand(), CardBrand::Visa);
        assert_eq!(visa.last4(), "4242");
        assert_eq!(format!("{visa:?}"), "CardNumber(****4242)");
        assert_eq!(
            CardNumber::parse("5555555555554444").unwrap().brand(),
            CardBrand::Mastercard
        );
        assert!(CardNumber::parse("4242424242424241").is_err());
        assert!(CardNumber::parse("42424242").is_err());
        assert!(CardNumber::parse("4242x42424242424").is_err());
    }

    #[test]
    fn expiry() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert!(Expiry::parse(11, 2026, today).is_ok());
        assert!(Expiry::parse(10, 2026, today).is_err());
        assert_eq!(Expiry::parse(1, 30, today).unwrap().year(), 2030);
        assert!(Expiry::parse(13, 2030, today).is_err());
        let both = Expiry::parse(13, 1800, today).unwrap_err();
        let parts: Vec<ExpiryPart> = both.iter().map(|(part, _)| *part).collect();
        assert_eq!(
            parts,
            [ExpiryPart::Month, ExpiryPart::Year],
            "both halves reported"
        );
    }
}
