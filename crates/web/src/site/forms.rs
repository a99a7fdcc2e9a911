//! Form posts: the CSRF check every one of them passes through, and the booking form's fields.

use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::session::{Draft, DraftPassenger, Visit};
use super::PageError;
use crate::error::ApiError;
use skybook_domain::{FieldErrors, MAX_PASSENGERS};

/// Largest form body accepted (a booking form for nine travellers is a few KiB).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A form POST that carried this session's CSRF token (field `csrf`), decoded as `T`.
///
/// Every site handler that accepts a POST takes its body through this extractor, so no form can be posted
/// without the check: a missing or wrong token is a 403 page before the handler runs.
pub struct CsrfForm<T>(pub Visit, pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let visit = Visit::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| invalid("body", "is too large"))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let token = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if token.is_empty() || !visit.csrf_matches(token).await? {
            tracing::warn!("form post refused: missing or wrong CSRF token");
            return Err(PageError(ApiError::Forbidden("csrf_token")));
        }
        let value = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| invalid("body", format!("is not a valid form: {e}")))?;
        Ok(Self(visit, value))
    }
}

fn invalid(field: &str, message: impl Into<String>) -> PageError {
    let mut errors = FieldErrors::new();
    errors.add(field, message);
    PageError(ApiError::Invalid(errors))
}

/// The booking form as posted: `contact_email`, `passengers[N].given_name|family_name`, `card.*`.
pub struct BookingForm {
    pairs: Vec<(String, String)>,
}

impl BookingForm {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// How many travellers the form has fields for (at least one, at most the booking limit): what the form
    /// page shows again.
    fn passenger_count(&self) -> usize {
        self.posted_passengers().min(MAX_PASSENGERS)
    }

    /// How many travellers were posted, up to one past the limit: a forged form with more than the limit is
    /// refused by the booking parser (never cut down to the limit and charged), and a huge index costs nothing.
    fn posted_passengers(&self) -> usize {
        let highest = self
            .pairs
            .iter()
            .filter_map(|(k, _)| k.strip_prefix("passengers[")?.split_once(']'))
            .filter_map(|(i, _)| i.parse::<usize>().ok())
            .max();
        highest
            .map_or(1, |i| i.saturating_add(1))
            .min(MAX_PASSENGERS + 1)
    }

    fn passengers(&self, count: usize) -> Vec<DraftPassenger> {
        (0..count)
            .map(|i| DraftPassenger {
                given_name: self.get(&format!("passengers[{i}].given_name")).to_owned(),
                family_name: self.get(&format!("passengers[{i}].family_name")).to_owned(),
            })
            .collect()
    }

    /// The non-card fields, as kept in the session.
    pub fn draft(&self, flight_id: &str, key: &str) -> Draft {
        Draft {
            flight_id: flight_id.to_owned(),
            key: key.to_owned(),
            contact_email: self.get("contact_email").to_owned(),
            passengers: self.passengers(self.passenger_count()),
            booked_reference: None,
        }
    }

    /// The API's request body for this form, so the site and the API parse bookings with the same code and
    /// report errors under the same field paths.
    pub fn to_json(&self, flight_id: &str) -> Vec<u8> {
        let passengers = self.passengers(self.posted_passengers());
        let number_or_text = |name: &str| {
            let raw = self.get(name).trim();
            raw.parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(raw))
        };
        let mut card = Map::new();
        card.insert(
            "number".into(),
            Value::from(self.get("card.number").replace([' ', '-'], "")),
        );
        card.insert("exp_month".into(), number_or_text("card.exp_month"));
        card.insert("exp_year".into(), number_or_text("card.exp_year"));
        card.insert("cvc".into(), Value::from(self.get("card.cvc").trim()));
        json!({
            "flight_id": flight_id,
            "contact_email": self.get("contact_email").trim(),
            "passengers": passengers.iter().map(|p| json!({
                "given_name": p.given_name, "family_name": p.family_name
            })).collect::<Vec<_>>(),
            "card": card,
        })
        .to_string()
        .into_bytes()
    }
}
