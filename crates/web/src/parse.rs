//! Receive: a booking request's JSON parsed into domain types, collecting every bad field.

use chrono::NaiveDate;
use serde_json::Value;
use skybook_domain::card::ExpiryPart;
use skybook_domain::{
    Card, CardNumber, Cvc, Email, Expiry, FieldErrors, FlightId, NewBooking, ParseError, Passenger,
    PersonName, MAX_PASSENGERS,
};

/// Parses the body of `POST /bookings`. `today` decides card expiry.
pub fn booking_request(body: &[u8], today: NaiveDate) -> Result<NewBooking, FieldErrors> {
    let mut errors = FieldErrors::new();
    let value: Value = match serde_json::from_slice(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return Err(single("body", "must be a JSON object")),
        Err(e) => return Err(single("body", format!("is not valid JSON: {e}"))),
    };

    let flight_id = string(&value, "flight_id", &mut errors).and_then(|s| {
        errors.check(
            "flight_id",
            s.parse::<FlightId>()
                .map_err(|_| ParseError::new("must be a flight id")),
        )
    });
    let contact_email = string(&value, "contact_email", &mut errors)
        .and_then(|s| errors.check("contact_email", Email::parse(s)));
    let passengers = passengers(&value, &mut errors);
    let card = card(&value, today, &mut errors);

    match (flight_id, contact_email, passengers, card) {
        (Some(flight_id), Some(contact_email), Some(passengers), Some(card))
            if errors.is_empty() =>
        {
            Ok(NewBooking {
                flight_id,
                contact_email,
                passengers,
                card,
            })
        }
        _ => Err(errors),
    }
}

fn single(field: &str, message: impl Into<String>) -> FieldErrors {
    let mut errors = FieldErrors::new();
    errors.add(field, message);
    errors
}

/// A required string member; records "is required" / "must be a string" under `path`.
fn str_at<'a>(
    parent: &'a Value,
    name: &str,
    path: &str,
    errors: &mut FieldErrors,
) -> Option<&'a str> {
    match parent.get(name) {
        None | Some(Value::Null) => {
            errors.add(path, "is required");
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.add(path, "must be a string");
            None
        }
    }
}

fn string<'a>(parent: &'a Value, name: &str, errors: &mut FieldErrors) -> Option<&'a str> {
    str_at(parent, name, name, errors)
}

fn passengers(value: &Value, errors: &mut FieldErrors) -> Option<Vec<Passenger>> {
    let list = match value.get("passengers") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            errors.add("passengers", "is required");
            return None;
        }
        Some(_) => {
            errors.add("passengers", "must be a list of passengers");
            return None;
        }
    };
    if list.is_empty() || list.len() > MAX_PASSENGERS {
        errors.add(
            "passengers",
            format!("must list 1 to {MAX_PASSENGERS} passengers"),
        );
        return None;
    }
    let mut parsed = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let path = |field: &str| format!("passengers[{i}].{field}");
        if !p.is_object() {
            errors.add(
                format!("passengers[{i}]"),
                "must be an object with given_name and family_name",
            );
            continue;
        }
        let given = str_at(p, "given_name", &path("given_name"), errors)
            .and_then(|s| errors.check(path("given_name"), PersonName::parse(s)));
        let family = str_at(p, "family_name", &path("family_name"), errors)
            .and_then(|s| errors.check(path("family_name"), PersonName::parse(s)));
        if let (Some(given_name), Some(family_name)) = (given, family) {
            parsed.push(Passenger {
                given_name,
                family_name,
            });
        }
    }
    if parsed.len() != list.len() {
        return None;
    }
    // One traveller holds one seat: the same person twice (by their names' machine-readable form) would be
    // charged two seats for one passenger.
    let forms: Vec<String> = parsed.iter().map(Passenger::normalized).collect();
    let mut twice = false;
    for (j, form) in forms.iter().enumerate() {
        if let Some(i) = forms[..j].iter().position(|f| f == form) {
            errors.add(
                format!("passengers[{j}]"),
                format!("is the same traveller as passengers[{i}]"),
            );
            twice = true;
        }
    }
    (!twice).then_some(parsed)
}

/// A whole number given as a JSON number, as the API document declares (the website's forms send their numeric
/// fields as numbers too, `forms::to_json`). A numeric string is refused: the document says integer.
fn integer_at(parent: &Value, name: &str, path: &str, errors: &mut FieldErrors) -> Option<i64> {
    match parent.get(name) {
        None | Some(Value::Null) => {
            errors.add(path, "is required");
            None
        }
        Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
        // JSON has one number type: 2031.0 is the integer 2031 to JSON Schema, and so to us.
        Some(Value::Number(n))
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) =>
        {
            n.as_f64().map(|f| f as i64)
        }
        Some(_) => {
            errors.add(path, "must be a whole number");
            None
        }
    }
}

fn card(value: &Value, today: NaiveDate, errors: &mut FieldErrors) -> Option<Card> {
    let card = match value.get("card") {
        Some(card @ Value::Object(_)) => card,
        None | Some(Value::Null) => {
            errors.add("card", "is required");
            return None;
        }
        Some(_) => {
            errors.add(
                "card",
                "must be an object with number, exp_month, exp_year and cvc",
            );
            return None;
        }
    };
    let number = str_at(card, "number", "card.number", errors)
        .and_then(|s| errors.check("card.number", CardNumber::parse(s)));
    let month = integer_at(card, "exp_month", "card.exp_month", errors);
    let year = integer_at(card, "exp_year", "card.exp_year", errors);
    let expiry = match (month, year) {
        (Some(m), Some(y)) => match Expiry::parse(m, y, today) {
            Ok(expiry) => Some(expiry),
            Err(wrong) => {
                for (part, e) in wrong {
                    let field = match part {
                        ExpiryPart::Month => "card.exp_month",
                        ExpiryPart::Year => "card.exp_year",
                    };
                    errors.add(field, e.message());
                }
                None
            }
        },
        _ => None,
    };
    let cvc = match card.get("cvc") {
        Some(Value::Number(n)) => errors.check("card.cvc", Cvc::parse(&n.to_string())),
        _ => str_at(card, "cvc", "card.cvc", errors)
            .and_then(|s| errors.check("card.cvc", Cvc::parse(s))),
    };
    Some(Card {
        number: number?,
        expiry: expiry?,
        cvc: cvc?,
    })
}
