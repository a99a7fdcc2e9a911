//! `private_key_jwt` client authentication (RFC 7523 §2.2 as profiled by OpenID Connect Core §9):
//! instead of a secret, the client sends `client_assertion_type=urn:ietf:params:oauth:client-
//! assertion-type:jwt-bearer` and `client_assertion=<JWT>` signed with its private key; the sandbox
//! checks it against the public key registered for that client.
//!
//! Checked: the signature (`RS256` for an RSA key, `ES256` for an EC P-256 key — no other `alg`,
//! so neither `none` nor an HMAC-with-the-public-key confusion gets through), `iss` == `sub` ==
//! the client id (and == the `client_id` form field when one is sent), `aud` (a string or an array)
//! holding a value ending in `/oauth/token` (the token endpoint URL as the client addressed it),
//! `exp` in the future (no leeway) and `nbf`, when present, in the past. Not checked: `jti` reuse.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The only `client_assertion_type` accepted (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What an assertion's `aud` must end with: the token endpoint's path.
const TOKEN_ENDPOINT_PATH: &str = "/oauth/token";

/// Why a `private_key_jwt` client could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum JwtClientError {
    #[error("the client id of a JWT client must not be empty")]
    EmptyClientId,
    #[error("expected ID:PUBLIC_KEY_PEM_FILE, got {0:?}")]
    BadArgument(String),
    #[error("reading the public key file {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a usable public key: {0}")]
    BadKey(String),
}

/// A registered client's public key: RSA (assertions signed `RS256`) or EC P-256 (`ES256`).
#[derive(Clone)]
pub struct JwtPublicKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl JwtPublicKey {
    /// Parses a PEM public key (`-----BEGIN PUBLIC KEY-----` SPKI, or PKCS#1 `RSA PUBLIC KEY`),
    /// checking it really is an RSA or EC P-256 key.
    pub fn from_pem(pem: &str) -> Result<Self, JwtClientError> {
        if pem.contains("PRIVATE KEY-----") {
            return Err(JwtClientError::BadKey(
                "this is a private key; register the client's public key".to_owned(),
            ));
        }
        let bytes = pem.as_bytes();
        let key = DecodingKey::from_rsa_pem(bytes)
            .or_else(|_| DecodingKey::from_ec_pem(bytes))
            .map_err(|error| {
                JwtClientError::BadKey(format!("expected a PEM public key ({error})"))
            })?;
        // Turning the key into a JWK parses it fully (the RSA modulus and exponent, the EC point),
        // so a malformed key fails here rather than on every assertion.
        let jwk = Jwk::from_decoding_key(&key, None)
            .map_err(|error| JwtClientError::BadKey(error.to_string()))?;
        let algorithm = match jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ref ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => {
                return Err(JwtClientError::BadKey(
                    "only RSA and EC P-256 public keys are supported".to_owned(),
                ))
            }
        };
        Ok(Self { algorithm, key })
    }

    /// The one JWS algorithm this key's assertions must use: `"RS256"` or `"ES256"`.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::ES256 => "ES256",
            _ => "RS256",
        }
    }
}

impl fmt::Debug for JwtPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtPublicKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// Why an assertion was refused. Logged only: the client always gets a plain `invalid_client`.
#[derive(Debug, thiserror::Error)]
pub enum AssertionRefused {
    #[error("the assertion names no client (no client_id, no sub)")]
    NoClient,
    #[error("no JWT client {0:?} is registered")]
    UnknownClient(String),
    #[error("invalid assertion: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("aud {0:?} does not name the token endpoint (…{TOKEN_ENDPOINT_PATH})")]
    WrongAudience(Vec<String>),
}

/// The subject, read before the signature is checked, only to pick the key to check it with.
#[derive(Deserialize)]
struct Unverified {
    sub: Option<String>,
    iss: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    aud: Audience,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies `assertion` for the client named by the `client_id` form field (`claimed_id`) or,
/// without one, by the assertion's `sub`, answering the authenticated client id.
pub fn verify_assertion(
    clients: &BTreeMap<String, JwtPublicKey>,
    claimed_id: Option<&str>,
    assertion: &str,
) -> Result<String, AssertionRefused> {
    let client_id = match claimed_id.filter(|id| !id.is_empty()) {
        Some(id) => id.to_owned(),
        None => {
            let unverified: Unverified =
                jsonwebtoken::dangerous::insecure_decode_claims(assertion)?;
            unverified
                .sub
                .or(unverified.iss)
                .ok_or(AssertionRefused::NoClient)?
        }
    };
    let key = clients
        .get(&client_id)
        .ok_or_else(|| AssertionRefused::UnknownClient(client_id.clone()))?;

    let mut validation = Validation::new(key.algorithm);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_issuer(&[&client_id]);
    validation.sub = Some(client_id.clone());
    // `aud` is checked below: any URL of the token endpoint is accepted, not one fixed string.
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key.key, &validation)?.claims;

    let audiences = match claims.aud {
        Audience::One(aud) => vec![aud],
        Audience::Many(auds) => auds,
    };
    if audiences
        .iter()
        .any(|aud| aud.ends_with(TOKEN_ENDPOINT_PATH))
    {
        Ok(client_id)
    } else {
        Err(AssertionRefused::WrongAudience(audiences))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_keys_and_private_keys_are_refused() {
        assert!(matches!(
            JwtPublicKey::from_pem("not a key"),
            Err(JwtClientError::BadKey(_))
        ));
        assert!(matches!(
            JwtPublicKey::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
            Err(JwtClientError::BadKey(_))
        ));
    }
}
