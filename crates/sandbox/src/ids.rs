//! Identifiers, clocks and hashes shared by every part of the sandbox, so that id formats (`ch_`,
//! `re_`, `tok_`, `sbx_at_` + 24 random alphanumerics) and the access-token hash are defined once.

use rand::distr::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Number of random characters after an id's prefix.
const RANDOM_LEN: usize = 24;

/// A fresh id: `prefix` followed by 24 random ASCII alphanumerics.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + RANDOM_LEN);
    id.push_str(prefix);
    id.extend(
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_LEN)
            .map(char::from),
    );
    id
}

/// Hex SHA-256 of an access token: what is stored and looked up instead of the token itself.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Wall-clock time in unix milliseconds (access-token expiry survives restarts, so it is
/// wall-clock).
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Wall-clock time in unix seconds (the `created` field of payment objects).
pub fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Constant-time equality, for comparing client secrets.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_24_alphanumerics() {
        let id = new_id("ch_");
        assert!(id.starts_with("ch_"));
        assert_eq!(id.len(), 3 + RANDOM_LEN);
        assert!(id[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(new_id("ch_"), id);
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
