//! Tenant operator tokens: the secret a tenant's operator presents to `/admin`, and the digest stored in its
//! place.
//!
//! A token is 32 random bytes, so (unlike a password) it needs no slow hash: its SHA-256 is stored and looked
//! up directly, and a database read gives nobody a token that works. The `sbop_` prefix lets secret scanners
//! and people tell it from the platform's admin token.

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sbop_";

/// A freshly minted operator token: shown once, then only its [`OperatorTokenHash`] is kept.
pub struct OperatorToken(SecretString);

impl OperatorToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(SecretString::from(format!(
            "{PREFIX}{}",
            hex::encode(bytes)
        )))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> OperatorTokenHash {
        OperatorTokenHash::of(self.expose())
    }
}

/// The stored form of an operator token: its SHA-256, in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTokenHash(String);

impl OperatorTokenHash {
    /// The digest of whatever was presented; `None` when it cannot be an operator token (so a platform token
    /// or a typo costs no lookup).
    pub fn of_presented(presented: &str) -> Option<Self> {
        let rest = presented.strip_prefix(PREFIX)?;
        (rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self::of(presented))
    }

    fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presented_token_hashes_to_what_was_stored() {
        let token = OperatorToken::generate();
        assert!(token.expose().starts_with(PREFIX));
        assert_eq!(
            OperatorTokenHash::of_presented(token.expose()),
            Some(token.hash())
        );
        assert_ne!(token.hash().as_str(), token.expose());
    }

    #[test]
    fn two_tokens_differ() {
        assert_ne!(
            OperatorToken::generate().hash(),
            OperatorToken::generate().hash()
        );
    }

    #[test]
    fn what_cannot_be_a_token_is_not_looked_up() {
        for presented in [
            "",
            "sbop_",
            "admin-token",
            "sbop_xyz",
            &format!("sbop_{}", "g".repeat(64)),
        ] {
            assert_eq!(
                OperatorTokenHash::of_presented(presented),
                None,
                "{presented}"
            );
        }
    }
}
