//! The 6-character booking reference travellers read over the phone: an alphabet without look-alikes
//! (no `0`/`O`, `1`/`I`/`L`), so 31^6 ≈ 887 million codes.

use std::fmt;

use rand::Rng;

use crate::error::ParseError;

const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const LEN: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BookingReference(String);

impl BookingReference {
    pub fn generate(rng: &mut impl Rng) -> Self {
        let code = (0..LEN)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        Self(code)
    }

    /// Case-insensitive; surrounding spaces ignored.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() != LEN || !code.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(ParseError::new("must be a 6-character booking reference"));
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BookingReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for BookingReference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

crate::sqlx_string_newtype!(BookingReference);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_references_parse() {
        let mut rng = rand::rng();
        for _ in 0..1000 {
            let r = BookingReference::generate(&mut rng);
            assert_eq!(
                BookingReference::parse(&r.as_str().to_lowercase()).unwrap(),
                r
            );
        }
        assert!(BookingReference::parse("ABC10O").is_err());
    }
}
