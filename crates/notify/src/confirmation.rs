//! The booking confirmation email: one plain-text and one HTML part from the same facts (reference, flight,
//! passengers, amount, the card's brand and last 4 digits — skybook never has more of a card than that).

use askama::Template;
use skybook_domain::{confirmation_message_id, Flight};
use skybook_storage::{BookingRecord, Tenant};

use crate::mail::OutgoingEmail;

struct Facts {
    tenant: String,
    reference: String,
    flight_number: String,
    origin: String,
    destination: String,
    departs: String,
    passengers: Vec<String>,
    amount: String,
    card_brand: String,
    card_last4: String,
}

#[derive(Template)]
#[template(path = "email/confirmation.txt")]
struct Text<'a>(&'a Facts);

#[derive(Template)]
#[template(path = "email/confirmation.html")]
struct Html<'a>(&'a Facts);

impl std::ops::Deref for Text<'_> {
    type Target = Facts;
    fn deref(&self) -> &Facts {
        self.0
    }
}

impl std::ops::Deref for Html<'_> {
    type Target = Facts;
    fn deref(&self) -> &Facts {
        self.0
    }
}

/// Composes the confirmation of `booking` on `flight`.
pub fn compose(
    tenant: &Tenant,
    booking: &BookingRecord,
    flight: &Flight,
) -> Result<OutgoingEmail, askama::Error> {
    let facts = Facts {
        tenant: tenant.name.clone(),
        reference: booking.reference.to_string(),
        flight_number: flight.number.to_string(),
        origin: flight.origin.to_string(),
        destination: flight.destination.to_string(),
        departs: flight
            .departs_at
            .format("%a %-d %b %Y, %H:%M UTC")
            .to_string(),
        passengers: booking
            .passengers
            .iter()
            .map(|p| format!("{} {}", p.given_name.as_str(), p.family_name.as_str()))
            .collect(),
        amount: booking.amount.to_string(),
        card_brand: booking.card_brand.clone(),
        card_last4: booking.card_last4.clone(),
    };
    Ok(OutgoingEmail {
        message_id: confirmation_message_id(booking.id),
        to: booking.contact_email.clone(),
        subject: format!(
            "Booking {} confirmed: {} {} to {}",
            facts.reference, facts.flight_number, facts.origin, facts.destination
        ),
        text: Text(&facts).render()?,
        html: Html(&facts).render()?,
    })
}
