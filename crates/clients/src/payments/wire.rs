//! The provider's JSON shapes (`docs/sandbox.md`), kept apart from the types the rest of skybook sees.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{CardToken, Charge, ChargeStatus, Refund};

#[derive(Deserialize)]
pub(super) struct WireCardToken {
    pub id: String,
    pub card: WireCard,
}

#[derive(Deserialize)]
pub(super) struct WireCard {
    pub last4: String,
    pub brand: String,
}

impl From<WireCardToken> for CardToken {
    fn from(w: WireCardToken) -> Self {
        Self {
            id: w.id,
            last4: w.card.last4,
            brand: w.card.brand,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct WireCharge {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: ChargeStatus,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub refunded: bool,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub created: i64,
}

impl From<WireCharge> for Charge {
    fn from(w: WireCharge) -> Self {
        Self {
            id: w.id,
            amount_minor: w.amount,
            currency: w.currency,
            status: w.status,
            idempotency_key: w.idempotency_key,
            amount_refunded: w.amount_refunded,
            refunded: w.refunded,
            metadata: w.metadata.unwrap_or_default(),
            created: w.created,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct WireList<T> {
    pub data: Vec<T>,
}

#[derive(Deserialize)]
pub(super) struct WireRefund {
    pub id: String,
    pub charge: String,
    pub amount: i64,
}

impl From<WireRefund> for Refund {
    fn from(w: WireRefund) -> Self {
        Self {
            id: w.id,
            charge_id: w.charge,
            amount_minor: w.amount,
        }
    }
}

/// `{"error": {"type", "code", "message", "charge"?}}`; every field optional so a surprising body still
/// yields what it can.
#[derive(Deserialize, Default)]
pub(super) struct WireErrorBody {
    #[serde(default)]
    pub error: WireError,
}

#[derive(Deserialize, Default)]
pub(super) struct WireError {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub charge: Option<String>,
}

impl WireError {
    /// Parses an error body; anything else (HTML from a proxy, an OAuth-style `{"error": "..."}`) gives an
    /// empty error rather than failing.
    pub fn parse(body: &[u8]) -> Self {
        if let Ok(parsed) = serde_json::from_slice::<WireErrorBody>(body) {
            return parsed.error;
        }
        if let Ok(serde_json::Value::Object(map)) =
            serde_json::from_slice::<serde_json::Value>(body)
        {
            if let Some(serde_json::Value::String(code)) = map.get("error") {
                return Self {
                    code: Some(code.clone()),
                    ..Self::default()
                };
            }
        }
        Self::default()
    }

    /// The most specific name for the error: its code, else its type, else the HTTP reason.
    pub fn code_or(&self, status: reqwest::StatusCode) -> String {
        self.code
            .clone()
            .or_else(|| self.kind.clone())
            .unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase()
                    .replace(' ', "_")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_object() {
        let body =
            br#"{"id":"ch_1","object":"charge","amount":9599,"currency":"eur","status":"succeeded",
            "source":"tok_1","description":null,"metadata":{"booking":"b1"},"idempotency_key":"k",
            "amount_refunded":0,"refunded":false,"created":1700000000}"#;
        let charge: Charge = serde_json::from_slice::<WireCharge>(body).unwrap().into();
        assert_eq!(charge.amount_minor, 9599);
        assert_eq!(charge.status, ChargeStatus::Succeeded);
        assert_eq!(
            charge.metadata.get("booking").map(String::as_str),
            Some("b1")
        );
        assert_eq!(charge.idempotency_key.as_deref(), Some("k"));
    }

    #[test]
    fn error_bodies() {
        let e = WireError::parse(
            br#"{"error":{"type":"card_error","code":"card_declined","charge":"ch_9"}}"#,
        );
        assert_eq!(e.code.as_deref(), Some("card_declined"));
        assert_eq!(e.charge.as_deref(), Some("ch_9"));
        let e = WireError::parse(br#"{"error":"invalid_client"}"#);
        assert_eq!(e.code.as_deref(), Some("invalid_client"));
        let e = WireError::parse(b"<html>bad gateway</html>");
        assert_eq!(e.code_or(reqwest::StatusCode::BAD_GATEWAY), "bad_gateway");
    }
}
