//! Card tokenisation, `POST /v1/tokens`: the only place a card number is ever seen.
//!
//! The number is validated (12–19 digits, Luhn), reduced to last4, brand and the "always declines"
//! flag, and dropped; neither it nor the CVC is stored or logged. Error messages here never quote
//! the request body, since serde's messages echo offending values.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::error::{parse_json, ApiError};
use crate::ids::{new_id, now_seconds};
use crate::state::AppState;
use crate::store::CardToken;

/// The test card every charge declines on.
pub const ALWAYS_DECLINED_CARD: &str = "4000000000000002";

#[derive(Deserialize)]
struct TokenRequest {
    card: CardInput,
}

#[derive(Deserialize)]
struct CardInput {
    number: String,
    exp_month: IntOrString,
    exp_year: IntOrString,
    #[serde(default)]
    cvc: Option<IntOrString>,
}

/// Numbers some clients send as JSON numbers and others as strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString {
    Int(u64),
    Str(String),
}

impl IntOrString {
    fn digits(&self) -> Option<String> {
        match self {
            Self::Int(n) => Some(n.to_string()),
            Self::Str(s) => {
                let s = s.trim();
                (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
            }
        }
    }

    fn number(&self) -> Option<u32> {
        self.digits()?.parse().ok()
    }
}

/// `POST /v1/tokens`.
#[tracing::instrument(name = "create_card_token", skip_all)]
pub async fn create_token(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: TokenRequest = parse_json(&body).map_err(|mut error| {
        error.message =
            "expected {\"card\": {\"number\", \"exp_month\", \"exp_year\", \"cvc\"}}".to_owned();
        error
    })?;
    let card = validate(&request.card)?;
    state
        .store
        .insert_card_token(&card)
        .await
        .map_err(crate::store::StoreError::from)?;
    tracing::debug!(token = %card.id, brand = card.brand, last4 = %card.last4, "card tokenised");
    Ok(Json(json!({
        "id": card.id,
        "object": "token",
        "created": card.created,
        "card": {
            "last4": card.last4,
            "brand": card.brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
        },
    }))
    .into_response())
}

fn validate(input: &CardInput) -> Result<CardToken, ApiError> {
    let number: String = input.number.chars().filter(|c| *c != ' ').collect();
    if !is_valid_number(&number) {
        return Err(ApiError::invalid_request(
            "invalid_number",
            "the card number is not a valid card number",
        ));
    }
    let exp_month = input
        .exp_month
        .number()
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| {
            ApiError::invalid_request("invalid_expiry_month", "exp_month must be 1 to 12")
        })?;
    let exp_year = input
        .exp_year
        .number()
        .map(|y| if y < 100 { y + 2000 } else { y })
        .filter(|y| (2000..=2099).contains(y))
        .ok_or_else(|| {
            ApiError::invalid_request("invalid_expiry_year", "exp_year must be a year")
        })?;
    if let Some(cvc) = &input.cvc {
        if !cvc.digits().is_some_and(|cvc| (3..=4).contains(&cvc.len())) {
            return Err(ApiError::invalid_request(
                "invalid_cvc",
                "cvc must be 3 or 4 digits",
            ));
        }
    }
    Ok(CardToken {
        id: new_id("tok_"),
        last4: number[number.len() - 4..].to_owned(),
        brand: brand(&number),
        exp_month,
        exp_year,
        always_declines: number == ALWAYS_DECLINED_CARD,
        created: now_seconds(),
    })
}

/// 12–19 ASCII digits passing the Luhn check.
pub fn is_valid_number(number: &str) -> bool {
    (12..=19).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
        && skybook_domain::card::luhn_valid(number)
}

/// Card brand by number prefix.
pub fn brand(number: &str) -> &'static str {
    let prefix = |n: usize| {
        number
            .get(..n)
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    if number.starts_with('4') {
        "visa"
    } else if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
        "mastercard"
    } else if matches!(prefix(2), 34 | 37) {
        "amex"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_length_rules() {
        assert!(is_valid_number("4242424242424242"));
        assert!(is_valid_number(ALWAYS_DECLINED_CARD));
        assert!(is_valid_number("378282246310005"));
        assert!(!is_valid_number("4242424242424241"));
        assert!(!is_valid_number("42424242424"));
        assert!(!is_valid_number("4242-4242-4242-4242"));
        assert!(!is_valid_number("00000000000000000000"));
    }

    #[test]
    fn brands_by_prefix() {
        assert_eq!(brand("4242424242424242"), "visa");
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("2223003122003222"), "mastercard");
        assert_eq!(brand("378282246310005"), "amex");
        assert_eq!(brand("6011111111111117"), "unknown");
    }
}
