//! The pages' templates (`crates/web/templates`) and the view models they render.

use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use skybook_domain::{FieldErrors, Flight};
use skybook_storage::BookingRecord;

/// One line of a form's error summary, linked to its field.
#[derive(Debug, Clone)]
pub struct SummaryError {
    pub anchor: String,
    pub label: String,
    pub message: String,
}

/// Pages with an error summary; their templates ask `has_error("field")` to mark inputs `aria-invalid`.
pub trait HasErrors {
    fn summary_errors(&self) -> &[SummaryError];

    fn has_error(&self, field: &str) -> bool {
        let id = field_id(field);
        self.summary_errors().iter().any(|e| e.anchor == id)
    }
}

/// The error summary for `errors`, labelled for people and anchored to the inputs' ids.
pub fn summary(errors: &FieldErrors) -> Vec<SummaryError> {
    let mut fields: Vec<_> = errors.iter().collect();
    // The summary reads in the order the fields appear on the page, not alphabetically.
    fields.sort_by_key(|(field, _)| form_order(field));
    fields
        .into_iter()
        .flat_map(|(field, messages)| {
            messages.iter().map(move |m| SummaryError {
                anchor: field_id(field),
                label: field_label(field),
                message: m.clone(),
            })
        })
        .collect()
}

/// Where a field sits on its form: travellers (in order), contact, card, then anything else.
fn form_order(path: &str) -> (u8, usize, String) {
    if let Some(rest) = path.strip_prefix("passengers[") {
        let index = rest
            .split(']')
            .next()
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        return (1, index, path.to_owned());
    }
    const ORDER: [&str; 13] = [
        "origin",
        "destination",
        "date",
        "passengers",
        "reference",
        "email",
        "token",
        "contact_email",
        "card",
        "card.number",
        "card.exp_month",
        "card.exp_year",
        "card.cvc",
    ];
    match ORDER.iter().position(|f| *f == path) {
        Some(i) => (2, i, String::new()),
        None => (3, 0, path.to_owned()),
    }
}

/// The HTML id of the input for a field path: `passengers[0].given_name` → `f-passengers-0-given_name`.
pub fn field_id(path: &str) -> String {
    let mut id = String::from("f-");
    for c in path.chars() {
        match c {
            '[' | '.' => id.push('-'),
            ']' => {}
            c => id.push(c),
        }
    }
    id
}

/// How a field path reads in an error summary.
pub fn field_label(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("passengers[") {
        if let Some((index, field)) = rest.split_once("].") {
            let n = index.parse::<usize>().map(|i| i + 1).unwrap_or(0);
            let what = match field {
                "given_name" => "given name",
                "family_name" => "family name",
                other => other,
            };
            return format!("Traveller {n} {what}");
        }
    }
    match path {
        "contact_email" => "Email",
        "card.number" => "Card number",
        "card.exp_month" => "Expiry month",
        "card.exp_year" => "Expiry year",
        "card.cvc" => "Security code",
        "card" => "Card",
        "flight_id" => "Flight",
        "passengers" => "Travellers",
        "origin" => "From",
        "destination" => "To",
        "date" => "Date",
        "reference" => "Booking reference",
        "email" => "Email",
        "token" => "Admin token",
        other => other,
    }
    .to_owned()
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn departs(t: DateTime<Utc>) -> String {
    t.format("%a %-d %b %Y, %H:%M UTC").to_string()
}

/// A flight as a page shows it.
#[derive(Debug, Clone)]
pub struct FlightView {
    pub id: String,
    pub number: String,
    pub origin: String,
    pub destination: String,
    pub departs: String,
    pub fare: String,
    pub seats_left: u32,
    /// "Only N seats left" is shown below this many.
    pub few_left: bool,
    pub bookable: bool,
}

/// Below this many seats the results say "only N left".
pub const FEW_SEATS: u32 = 5;

impl FlightView {
    pub fn new(f: &Flight, passengers: u32) -> Self {
        let seats_left = f.seats_left();
        Self {
            id: f.id.to_string(),
            number: f.number.to_string(),
            origin: f.origin.to_string(),
            destination: f.destination.to_string(),
            departs: departs(f.departs_at),
            fare: f.fare.to_string(),
            seats_left,
            few_left: seats_left > 0 && seats_left <= FEW_SEATS,
            bookable: seats_left >= passengers.max(1),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SearchForm {
    pub origin: String,
    pub destination: String,
    pub date: String,
    pub passengers: u32,
}

#[derive(Template, WebTemplate)]
#[template(path = "search.html")]
pub struct SearchPage {
    pub search: SearchForm,
    pub searched: bool,
    pub flights: Vec<FlightView>,
    pub errors: Vec<SummaryError>,
}

impl HasErrors for SearchPage {
    fn summary_errors(&self) -> &[SummaryError] {
        &self.errors
    }
}

/// One text input of the booking form.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub id: String,
    pub value: String,
    pub errors: Vec<String>,
}

impl Input {
    pub fn new(name: &str, value: &str, errors: &FieldErrors) -> Self {
        Self {
            name: name.to_owned(),
            id: field_id(name),
            value: value.to_owned(),
            errors: errors.get(name).to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PassengerInputs {
    pub given: Input,
    pub family: Input,
}

/// A card input: never has a value (card details are not echoed back).
#[derive(Debug, Clone)]
pub struct CardInput {
    pub name: &'static str,
    pub id: String,
    pub label: &'static str,
    pub autocomplete: &'static str,
    pub narrow: bool,
    pub errors: Vec<String>,
}

pub fn card_inputs(errors: &FieldErrors) -> Vec<CardInput> {
    [
        ("card.number", "Card number", "cc-number", false),
        ("card.exp_month", "Expiry month (MM)", "cc-exp-month", true),
        ("card.exp_year", "Expiry year (YYYY)", "cc-exp-year", true),
        ("card.cvc", "Security code (CVC)", "cc-csc", true),
    ]
    .into_iter()
    .map(|(name, label, autocomplete, narrow)| CardInput {
        name,
        id: field_id(name),
        label,
        autocomplete,
        narrow,
        errors: errors.get(name).to_vec(),
    })
    .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "book.html")]
pub struct BookPage {
    pub flight: FlightView,
    pub total: String,
    pub csrf: String,
    pub key: String,
    pub passengers: Vec<PassengerInputs>,
    pub email: Input,
    pub card: Vec<CardInput>,
    pub errors: Vec<SummaryError>,
    pub notice: Option<String>,
}

/// A booking as its page shows it (never more of the card than brand and last 4).
#[derive(Debug, Clone)]
pub struct BookingSummary {
    pub reference: String,
    pub status: String,
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departs: String,
    pub passengers: Vec<String>,
    pub amount: String,
    pub card_brand: String,
    pub card_last4: String,
    pub contact_email: String,
}

impl BookingSummary {
    pub fn new(b: &BookingRecord, f: &Flight) -> Self {
        Self {
            reference: b.reference.to_string(),
            status: b.status.to_string().replace('_', " "),
            flight_number: f.number.to_string(),
            origin: f.origin.to_string(),
            destination: f.destination.to_string(),
            departs: departs(f.departs_at),
            passengers: b
                .passengers
                .iter()
                .map(|p| format!("{} {}", p.given_name.as_str(), p.family_name.as_str()))
                .collect(),
            amount: b.amount.to_string(),
            card_brand: capitalised(&b.card_brand),
            card_last4: b.card_last4.clone(),
            contact_email: b.contact_email.to_string(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "booking.html")]
pub struct BookingPage {
    pub heading: &'static str,
    pub message: &'static str,
    pub tone: &'static str,
    pub pending: bool,
    pub booking: BookingSummary,
}

#[derive(Template, WebTemplate)]
#[template(path = "duplicate.html")]
pub struct DuplicatePage {
    pub reference: String,
    pub status: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "find.html")]
pub struct FindPage {
    pub csrf: String,
    pub reference: String,
    pub email: String,
    pub errors: Vec<SummaryError>,
}

impl HasErrors for FindPage {
    fn summary_errors(&self) -> &[SummaryError] {
        &self.errors
    }
}

/// A page that only says something: errors, sold out, "still confirming".
#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub heading: String,
    pub message: String,
    pub tone: &'static str,
    pub request_id: Option<String>,
    /// Reload every few seconds (a "still confirming" page).
    pub refresh: bool,
    pub link_href: String,
    pub link_text: String,
}

impl MessagePage {
    pub fn new(heading: impl Into<String>, message: impl Into<String>, tone: &'static str) -> Self {
        Self {
            heading: heading.into(),
            message: message.into(),
            tone,
            request_id: None,
            refresh: false,
            link_href: "/".into(),
            link_text: "Search flights".into(),
        }
    }

    pub fn link(mut self, href: impl Into<String>, text: impl Into<String>) -> Self {
        self.link_href = href.into();
        self.link_text = text.into();
        self
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_login.html")]
pub struct AdminLoginPage {
    pub csrf: String,
    pub errors: Vec<SummaryError>,
}

impl HasErrors for AdminLoginPage {
    fn summary_errors(&self) -> &[SummaryError] {
        &self.errors
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub csrf: String,
    pub nav: AdminNav,
    pub alerts: Vec<AlertRow>,
    pub crashes: Vec<CrashRow>,
    pub audit: Vec<AuditRow>,
}

/// What every admin page knows of who is looking: whether to offer the platform's pages (cron, queues,
/// crashes) and the action buttons. Only looks: each route checks again (see `operator`).
pub struct AdminNav {
    pub platform: bool,
    pub can_act: bool,
    /// "platform admin", or the tenant's slug with "(read-only)".
    pub who: String,
}

impl AdminNav {
    pub(super) fn of(operator: &super::operator::Operator) -> Self {
        Self {
            platform: operator.is_platform(),
            can_act: !operator.read_only,
            who: match operator.tenant() {
                None => "platform admin".to_owned(),
                Some(_) if operator.read_only => "tenant operator (read-only)".to_owned(),
                Some(_) => "tenant operator".to_owned(),
            },
        }
    }
}

/// One operator action, as the admin shows it.
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub affected: i64,
}

pub struct AlertRow {
    pub kind: String,
    pub message: String,
    pub subject: String,
    pub raised: String,
    /// "delivered", "pending (n attempts): cause", ...
    pub delivery: String,
}

impl From<&skybook_storage::Alert> for AlertRow {
    fn from(a: &skybook_storage::Alert) -> Self {
        let delivery = match (&a.delivered_at, &a.last_error) {
            (Some(_), _) => "delivered".to_owned(),
            (None, Some(error)) => {
                format!("retrying after {} attempt(s): {error}", a.delivery_attempts)
            }
            (None, None) => "pending".to_owned(),
        };
        Self {
            kind: a.kind.clone(),
            message: a.message.clone(),
            subject: a.subject.clone(),
            raised: a.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            delivery,
        }
    }
}

pub struct CrashRow {
    pub message: String,
    pub location: String,
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub last_request_id: String,
}

impl From<&skybook_storage::CrashGroup> for CrashRow {
    fn from(g: &skybook_storage::CrashGroup) -> Self {
        let time = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        Self {
            message: g.message.clone(),
            location: g.location.clone(),
            count: g.count,
            first_seen: time(&g.first_seen),
            last_seen: time(&g.last_seen),
            last_request_id: g.last_request_id.clone().unwrap_or_else(|| "-".into()),
        }
    }
}
