//! Passenger names, and their machine-readable form for duplicate detection.

use unicode_normalization::UnicodeNormalization;

use crate::error::ParseError;
use crate::text::is_invisible;

/// One given or family name: 1–100 characters after trimming, at least one letter, and nothing invisible:
/// no control characters and no format characters (Unicode category Cf: zero-width spaces and joiners, soft
/// hyphens, bidirectional controls), which would let two names that render alike be different travellers.
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
        if let Some(c) = trimmed.chars().find(|&c| is_invisible(c)) {
            return Err(ParseError::new(format!(
                "must not contain invisible or formatting characters (found U+{:04X})",
                u32::from(c)
            )));
        }
        if !trimmed.chars().any(char::is_alphabetic) {
            return Err(ParseError::new("must be a name"));
        }
        Ok(Self(
            trimmed.split_whitespace().collect::<Vec<_>>().join(" "),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's machine-readable form, as a travel document's MRZ has it (the ICAO Doc 9303 idea): Latin
    /// capitals, transliterated from any script, apostrophes dropped, everything else that is not a letter or a
    /// digit one separator. "Seán O'Brien" and "SEAN OBRIEN", "Jean-Luc" and "Jean Luc", "Straße" and
    /// "STRASSE", and a Cyrillic look-alike letter and its Latin twin give the same form. Two names with the
    /// same form are one traveller.
    pub fn normalized(&self) -> String {
        // NFKC first: compatibility forms (ligatures, full-width letters) become their plain letters.
        let nfkc: String = self.0.nfkc().collect();
        let latin = deunicode::deunicode_with_tofu(&nfkc, "?");
        let mut form = String::with_capacity(latin.len());
        let mut gap = false;
        for c in latin.chars() {
            if matches!(c, '\'' | '`') {
                continue;
            }
            if c.is_ascii_alphanumeric() {
                if gap && !form.is_empty() {
                    form.push(' ');
                }
                gap = false;
                form.push(c.to_ascii_uppercase());
            } else {
                gap = true;
            }
        }
        if form.is_empty() {
            // A script the transliteration does not know: its own letters, case-folded, are the form.
            return nfkc.to_uppercase().to_lowercase();
        }
        form
    }
}

impl PersonName {
    /// A name as stored (in a booking's passengers), possibly under the looser rules of an earlier release: a
    /// booking taken then must stay readable. New input goes through [`PersonName::parse`].
    pub fn from_stored(raw: &str) -> Result<Self, ParseError> {
        match raw.trim() {
            "" => Err(ParseError::new("stored name is empty")),
            name => Ok(Self(name.to_owned())),
        }
    }
}

/// Deserialised from what skybook stored (see [`PersonName::from_stored`]); requests are parsed field by field
/// with [`PersonName::parse`].
impl TryFrom<String> for PersonName {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_stored(&value)
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

    /// Pairs that render as (or are written as) the same traveller's name.
    #[test]
    fn one_traveller_has_one_machine_readable_form() {
        for (a, b) in [
            ("Seán", "Sean"),
            ("Zoé", "ZOE"),
            ("Jean-Luc", "Jean Luc"),
            ("O'Brien", "OBrien"),
            ("O’Brien", "O'Brien"),
            ("Zoe  Wu", "zoe wu"),
            // Cyrillic о (U+043E) for the Latin o.
            ("Z\u{43e}e", "Zoe"),
            ("Ǆemal", "DZemal"),
            ("Müller", "Muller"),
        ] {
            let (a_form, b_form) = (
                PersonName::parse(a).unwrap().normalized(),
                PersonName::parse(b).unwrap().normalized(),
            );
            assert_eq!(a_form, b_form, "{a:?} and {b:?}");
        }
        assert_eq!(
            PersonName::parse("Jean-Luc O'Neil").unwrap().normalized(),
            "JEAN LUC ONEIL"
        );
        assert_ne!(
            PersonName::parse("Ann").unwrap().normalized(),
            PersonName::parse("Anne").unwrap().normalized()
        );
    }

    #[test]
    fn invisible_characters_are_refused() {
        for raw in [
            "Z\u{200B}oe", // zero-width space
            "Zo\u{AD}e",   // soft hyphen
            "Zoe\u{202E}", // right-to-left override
            "\u{2066}Zoe", // left-to-right isolate
            "Z\u{200D}oe", // zero-width joiner
            "Zo\u{FEFF}e", // zero-width no-break space
            "Zo\u{7}e",    // bell
        ] {
            let e = PersonName::parse(raw).unwrap_err();
            assert!(e.message().contains("invisible"), "{raw:?}: {e}");
        }
    }

    /// A booking taken before a rule grew stricter stays readable: what was stored is read back as stored.
    #[test]
    fn stored_names_read_back_under_the_rules_they_were_stored_with() {
        let stored: PersonName = serde_json::from_str(r#""Z\u200boe""#).unwrap();
        assert_eq!(stored.as_str(), "Z\u{200B}oe");
        assert!(
            PersonName::parse(stored.as_str()).is_err(),
            "new input is refused"
        );
        assert!(serde_json::from_str::<PersonName>("\"  \"").is_err());
    }
}
