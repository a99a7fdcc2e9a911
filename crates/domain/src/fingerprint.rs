//! Keyed fingerprints. The seed talk hashed card numbers with plain SHA-256; a card number has so little
//! entropy (a known 6–8 digit prefix, a Luhn digit, the last 4 on the receipt) that such a hash is reversed by
//! brute force in minutes. Every fingerprint here is an HMAC-SHA256 under a sub-key derived from the deployment's
//! `SKYBOOK_SECRET_KEY`, so without the key a stored fingerprint reveals nothing, and every node of one
//! deployment (sharing the key) computes the same value.
//!
//! Fields are length-prefixed before hashing so that no two different inputs encode to the same bytes.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use crate::booking::NewBooking;
use crate::card::CardNumber;
use crate::error::ParseError;
use crate::ids::{FlightId, TenantId};
use crate::passenger::Passenger;

type HmacSha256 = Hmac<Sha256>;

/// The deployment's secret key (`SKYBOOK_SECRET_KEY`). Sub-keys are derived per purpose so that, e.g., a cookie
/// signing key never equals the card fingerprint key.
pub struct SecretKey(SecretBox<Vec<u8>>);

impl SecretKey {
    /// At least 32 characters; any text (a hex or base64 string from a generator is typical).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        if raw.len() < 32 {
            return Err(ParseError::new("must be at least 32 characters"));
        }
        Ok(Self(SecretBox::new(Box::new(raw.as_bytes().to_vec()))))
    }

    /// A new random key in hex (64 characters), for `demo` to write to its data dir.
    pub fn generate_hex() -> String {
        let bytes: [u8; 32] = rand::random();
        hex::encode(bytes)
    }

    /// A 32-byte key for one purpose, e.g. `"cookie-signing/v1"`.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(self.0.expose_secret())
            .expect("HMAC accepts any key length");
        mac.update(b"skybook/");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn mac(&self, purpose: &str) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.derive(purpose)).expect("HMAC accepts any key length")
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Feeds length-prefixed fields into a MAC.
struct Fields(HmacSha256);

impl Fields {
    fn field(mut self, bytes: &[u8]) -> Self {
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }
    fn hex(self) -> String {
        hex::encode(self.0.finalize().into_bytes())
    }
}

macro_rules! hex_fingerprint {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// 64 lower-case hex digits.
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                if raw.len() != 64 || !raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(ParseError::new("must be 64 lower-case hex digits"));
                }
                Ok(Self(raw.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        crate::sqlx_string_newtype!($name);
    };
}

hex_fingerprint!(
    /// HMAC of a card number: recognises the same card without storing it.
    CardFingerprint
);
hex_fingerprint!(
    /// HMAC of what makes two bookings "the same booking": tenant, flight, passengers (normalised, order-free) and
    /// card. Guarded by a partial unique index over live bookings.
    EntityFingerprint
);
hex_fingerprint!(
    /// HMAC of one booking request's content, stored with its idempotency key to detect a key reused for a
    /// different request. Keyed because the request holds the card number.
    RequestFingerprint
);

impl CardFingerprint {
    pub fn compute(key: &SecretKey, number: &CardNumber) -> Self {
        Self(
            Fields(key.mac("card-fingerprint/v1"))
                .field(number.expose_digits().as_bytes())
                .hex(),
        )
    }
}

impl EntityFingerprint {
    pub fn compute(
        key: &SecretKey,
        tenant: TenantId,
        flight: FlightId,
        passengers: &[Passenger],
        card: &CardFingerprint,
    ) -> Self {
        let mut names: Vec<String> = passengers.iter().map(Passenger::normalized).collect();
        names.sort();
        let mut fields = Fields(key.mac("entity-fingerprint/v1"))
            .field(tenant.as_uuid().as_bytes())
            .field(flight.as_uuid().as_bytes())
            .field(&(names.len() as u64).to_be_bytes());
        for name in &names {
            fields = fields.field(name.as_bytes());
        }
        Self(fields.field(card.as_str().as_bytes()).hex())
    }
}

impl RequestFingerprint {
    /// Over the parsed request, so JSON whitespace or key order do not matter but every value does.
    pub fn compute(key: &SecretKey, tenant: TenantId, request: &NewBooking) -> Self {
        let mut fields = Fields(key.mac("request-fingerprint/v1"))
            .field(tenant.as_uuid().as_bytes())
            .field(request.flight_id.as_uuid().as_bytes())
            .field(request.contact_email.as_str().as_bytes())
            .field(&(request.passengers.len() as u64).to_be_bytes());
        for p in &request.passengers {
            fields = fields
                .field(p.given_name.as_str().as_bytes())
                .field(p.family_name.as_str().as_bytes());
        }
        let card = &request.card;
        Self(
            fields
                .field(card.number.expose_digits().as_bytes())
                .field(&[card.expiry.month()])
                .field(&card.expiry.year().to_be_bytes())
                .field(card.cvc.expose().as_bytes())
                .hex(),
        )
    }
}
