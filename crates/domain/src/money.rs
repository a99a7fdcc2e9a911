//! Money as integer minor units plus an ISO 4217 currency code. Never floating point.

use std::fmt;

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ParseError::new("must be a 3-letter ISO 4217 currency code"));
        }
        Ok(Self(raw.to_ascii_uppercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::sqlx_string_newtype!(Currency);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    /// `self × n`, or `None` on overflow.
    pub fn times(&self, n: u32) -> Option<Money> {
        Some(Money::new(
            self.amount_minor.checked_mul(i64::from(n))?,
            self.currency.clone(),
        ))
    }
}

impl fmt::Display for Money {
    /// Two decimal places: right for the currencies skybook sells in (EUR, GBP, USD).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_display() {
        let fare = Money::new(9599, Currency::parse("eur").unwrap());
        assert_eq!(fare.to_string(), "95.99 EUR");
        assert_eq!(fare.times(3).unwrap().amount_minor, 28797);
        assert!(Money::new(i64::MAX, fare.currency).times(2).is_none());
    }
}
