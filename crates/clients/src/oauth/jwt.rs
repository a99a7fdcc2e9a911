//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the client proves who it
//! is with a short-lived JWT signed by its private key instead of sending a shared secret.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// How long a signed assertion is valid: long enough for one token request, short enough to be useless
/// if it leaked.
const ASSERTION_LIFETIME_SECS: u64 = 120;

/// A client that authenticates to the token endpoint with a signed JWT.
#[derive(Clone)]
pub struct JwtClient {
    pub token_url: url::Url,
    pub client_id: String,
    pub(crate) key: EncodingKey,
    pub(crate) algorithm: Algorithm,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub extra_params: Vec<(String, String)>,
}

impl fmt::Debug for JwtClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtClient")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("key", &"[REDACTED]")
            .field("algorithm", &self.algorithm)
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

impl JwtClient {
    /// Reads the PEM private key for `algorithm` (`RS256` or `ES256`); errors say what is wrong, never the key.
    pub fn new(
        token_url: url::Url,
        client_id: String,
        private_key_pem: &SecretString,
        algorithm: &str,
    ) -> Result<Self, String> {
        let pem = private_key_pem.expose_secret().as_bytes();
        let (key, algorithm) = match algorithm {
            "RS256" => (EncodingKey::from_rsa_pem(pem), Algorithm::RS256),
            "ES256" => (EncodingKey::from_ec_pem(pem), Algorithm::ES256),
            other => {
                return Err(format!(
                    "unsupported algorithm {other:?}: expected RS256 or ES256"
                ))
            }
        };
        let key = key.map_err(|e| format!("not a PEM {algorithm:?} private key: {e}"))?;
        Ok(Self {
            token_url,
            client_id,
            key,
            algorithm,
            scope: None,
            audience: None,
            extra_params: Vec::new(),
        })
    }

    /// A fresh signed assertion: issuer and subject the client id, audience the token endpoint.
    pub(crate) fn assertion(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let claims = Claims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: self.token_url.as_str(),
            jti: format!("{:032x}", rand::random::<u128>()),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
    }
}
