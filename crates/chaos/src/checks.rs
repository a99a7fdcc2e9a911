//! The verdict: the booking promises, checked from the soak's own record against the database, the
//! provider's charges and the mail server. Each check counts its failures and keeps a few examples to start
//! an investigation from (the full record is in `record.jsonl`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::cluster::Exit;
use crate::evidence::{Booking, Charge, Flight};
use crate::record::{Answer, Attempt, Kind};

/// Examples kept per check.
const EXAMPLES: usize = 5;

pub struct Check {
    pub name: &'static str,
    pub failures: usize,
    /// The figures behind the verdict.
    pub summary: String,
    pub examples: Vec<String>,
}

impl Check {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            failures: 0,
            summary: String::new(),
            examples: Vec::new(),
        }
    }

    fn fail(&mut self, example: String) {
        self.failures += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(example);
        }
    }

    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

/// Everything read from outside the soak, once the sentinel has settled what it can.
pub struct Evidence {
    pub bookings: Vec<Booking>,
    pub flights: Vec<Flight>,
    pub charges: Vec<Charge>,
    /// Confirmation emails by booking reference, each with its Message-ID.
    pub emails: BTreeMap<String, Vec<String>>,
    pub other_emails: usize,
}

struct Index<'a> {
    by_reference: HashMap<&'a str, &'a Booking>,
    by_id: HashMap<&'a str, &'a Booking>,
    kept_by_booking: HashMap<&'a str, Vec<&'a Charge>>,
}

impl<'a> Index<'a> {
    fn new(evidence: &'a Evidence) -> Self {
        let mut kept_by_booking: HashMap<&str, Vec<&Charge>> = HashMap::new();
        for charge in evidence.charges.iter().filter(|c| c.kept()) {
            if let Some(id) = &charge.booking_id {
                kept_by_booking.entry(id).or_default().push(charge);
            }
        }
        Self {
            by_reference: evidence
                .bookings
                .iter()
                .map(|b| (b.reference.as_str(), b))
                .collect(),
            by_id: evidence
                .bookings
                .iter()
                .map(|b| (b.id.as_str(), b))
                .collect(),
            kept_by_booking,
        }
    }
}

pub fn run(
    attempts: &[Attempt],
    evidence: &Evidence,
    exits: &[Exit],
    incidents: &[String],
) -> Vec<Check> {
    let index = Index::new(evidence);
    vec![
        double_charges(attempts, evidence, &index),
        lost_acknowledged(attempts, &index),
        unrefunded_charges(evidence, &index),
        oversold(evidence),
        emails(evidence),
        exits_check(exits),
        same_booking(attempts, &index),
        contract(attempts),
        soak_incidents(incidents),
    ]
}

/// No customer pays twice for one trip: at most one kept charge per entity fingerprint (travellers, flight,
/// card) and per booking, and at most one confirmed booking per trip of the record.
fn double_charges(attempts: &[Attempt], evidence: &Evidence, index: &Index<'_>) -> Check {
    let mut check = Check::new("double charges");
    let mut by_entity: BTreeMap<&str, Vec<&Charge>> = BTreeMap::new();
    for charge in evidence.charges.iter().filter(|c| c.kept()) {
        let key = charge
            .entity
            .as_deref()
            .or(charge.booking_id.as_deref())
            .unwrap_or(&charge.id);
        by_entity.entry(key).or_default().push(charge);
    }
    for charges in by_entity.values().filter(|c| c.len() > 1) {
        let ids: Vec<String> = charges
            .iter()
            .map(|c| {
                format!(
                    "{} (booking {})",
                    c.id,
                    c.booking_id.as_deref().unwrap_or("?")
                )
            })
            .collect();
        check.fail(format!(
            "one trip charged {} times: {}",
            ids.len(),
            ids.join(", ")
        ));
    }
    let mut confirmed_by_trip: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    for attempt in attempts {
        let reference = match &attempt.answer {
            Answer::Booked { reference, .. } => reference.as_str(),
            Answer::Duplicate { existing } => existing.as_str(),
            _ => continue,
        };
        if index
            .by_reference
            .get(reference)
            .is_some_and(|b| b.status == "confirmed")
        {
            confirmed_by_trip
                .entry(attempt.trip)
                .or_default()
                .insert(reference);
        }
    }
    for (trip, references) in confirmed_by_trip.iter().filter(|(_, r)| r.len() > 1) {
        check.fail(format!(
            "trip {trip} has {} confirmed bookings: {references:?}",
            references.len()
        ));
    }
    let kept = evidence.charges.iter().filter(|c| c.kept()).count();
    let succeeded = evidence.charges.iter().filter(|c| c.succeeded).count();
    check.summary = format!(
        "{succeeded} successful charges at the provider, {kept} kept, {} refunded; {} trips booked",
        succeeded - kept,
        confirmed_by_trip.len()
    );
    check
}

/// Every booking acknowledged (201, 202, the website's redirect to it) or named by a duplicate answer exists;
/// one acknowledged as confirmed is confirmed; one acknowledged as pending settled confirmed, or failed
/// legitimately (see below); its money is judged by the unrefunded-charges check.
fn lost_acknowledged(attempts: &[Attempt], index: &Index<'_>) -> Check {
    let mut check = Check::new("lost acknowledged bookings");
    let mut seen = BTreeSet::new();
    // Bookings some answer called payment-pending (202, or a page showing it so).
    let pending_payment: BTreeSet<&str> = attempts
        .iter()
        .filter_map(|a| match &a.answer {
            Answer::Booked {
                status,
                reference,
                shown,
            } if *status == 202 || shown.as_deref() == Some("payment pending") => {
                Some(reference.as_str())
            }
            _ => None,
        })
        .collect();
    // Each booking counted once, however many attempts name it.
    let mut tallied: BTreeSet<&str> = BTreeSet::new();
    let mut confirmed = 0;
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for attempt in attempts {
        let acknowledged = matches!(attempt.answer, Answer::Booked { .. });
        let (reference, promised_confirmed, how) = match &attempt.answer {
            Answer::Booked {
                status,
                reference,
                shown,
            } => (
                reference,
                *status == 201 || shown.as_deref() == Some("confirmed"),
                format!("{status}"),
            ),
            Answer::Duplicate { existing } => {
                (existing, false, "named by 409 duplicate_booking".into())
            }
            _ => continue,
        };
        if !seen.insert((reference.clone(), promised_confirmed, acknowledged)) {
            continue;
        }
        let context = format!(
            "{reference} ({how}, {:?} {:?}, key {})",
            attempt.channel, attempt.kind, attempt.key
        );
        match index.by_reference.get(reference.as_str()) {
            None => check.fail(format!("{context}: not in the database")),
            Some(b) if promised_confirmed && b.status != "confirmed" => {
                check.fail(format!(
                    "{context}: acknowledged confirmed, now {}",
                    b.status
                ));
            }
            Some(b) if b.status == "seat_held" || b.status == "payment_pending" => {
                check.fail(format!("{context}: still {}", b.status));
            }
            Some(b) if b.status == "confirmed" => {
                confirmed += usize::from(tallied.insert(reference));
            }
            Some(b) => {
                let reason = b.failure_reason.clone().unwrap_or_else(|| "?".into());
                // Failed legitimately: the provider declined; or the charge never reached it and the key was
                // forgotten, so its retry booked afresh (judged by the same-booking check); or its outcome was
                // unknown (202, a page showing "payment pending") and the provider turned out to have no
                // charge, so the sentinel failed it once its hold expired. Not: a booking the website showed
                // as "seat held" (no payment under way) that then expired: nobody was paying for it.
                let legitimate = match reason.as_str() {
                    "card_declined" | "provider_unavailable" => true,
                    "hold_expired" => pending_payment.contains(reference.as_str()),
                    _ => false,
                };
                if acknowledged && !legitimate {
                    check.fail(format!("{context}: acknowledged, then failed: {reason}"));
                }
                if tallied.insert(reference) {
                    *failed.entry(reason).or_default() += 1;
                }
            }
        }
    }
    let failed: Vec<String> = failed.iter().map(|(r, n)| format!("{n} {r}")).collect();
    check.summary = format!(
        "{} bookings acknowledged or named: {confirmed} confirmed, failed since: {}",
        seen.iter()
            .map(|(r, _, _)| r)
            .collect::<BTreeSet<_>>()
            .len(),
        if failed.is_empty() {
            "none".to_owned()
        } else {
            failed.join(", ")
        }
    );
    check
}

/// A kept charge is the charge of a confirmed booking; and every confirmed booking keeps its charge.
fn unrefunded_charges(evidence: &Evidence, index: &Index<'_>) -> Check {
    let mut check = Check::new("charges without a confirmed booking, unrefunded");
    for charge in evidence.charges.iter().filter(|c| c.kept()) {
        let booking = charge
            .booking_id
            .as_deref()
            .and_then(|id| index.by_id.get(id));
        match booking {
            Some(b) if b.status == "confirmed" && b.charge_id.as_deref() == Some(&charge.id) => {}
            Some(b) => check.fail(format!(
                "{} kept for booking {} ({}, charge_id {:?})",
                charge.id, b.reference, b.status, b.charge_id
            )),
            None => check.fail(format!(
                "{} kept for booking {:?}, which the database does not have",
                charge.id, charge.booking_id
            )),
        }
    }
    let mut unpaid = 0;
    for b in evidence.bookings.iter().filter(|b| b.status == "confirmed") {
        let paid = b.charge_id.as_deref().is_some_and(|id| {
            index
                .kept_by_booking
                .get(b.id.as_str())
                .is_some_and(|charges| charges.iter().any(|c| c.id == id))
        });
        if !paid {
            unpaid += 1;
            check.fail(format!(
                "booking {} confirmed but its charge {:?} is not kept at the provider",
                b.reference, b.charge_id
            ));
        }
    }
    let refunded = evidence
        .charges
        .iter()
        .filter(|c| c.succeeded && c.amount_refunded > 0)
        .count();
    check.summary = format!(
        "{refunded} stray charges refunded by the sentinel; {unpaid} confirmed bookings without their charge"
    );
    check
}

/// No flight sells more seats than it has, and its sold count is exactly its live bookings' seats.
fn oversold(evidence: &Evidence) -> Check {
    let mut check = Check::new("oversold seats");
    let mut confirmed: HashMap<&str, i64> = HashMap::new();
    let mut live: HashMap<&str, i64> = HashMap::new();
    for b in &evidence.bookings {
        if b.status == "confirmed" {
            *confirmed.entry(&b.flight_id).or_default() += b.seats;
        }
        if b.status != "failed" {
            *live.entry(&b.flight_id).or_default() += b.seats;
        }
    }
    let mut full = 0;
    for f in &evidence.flights {
        let sold = confirmed.get(f.id.as_str()).copied().unwrap_or_default();
        let held = live.get(f.id.as_str()).copied().unwrap_or_default();
        if sold > f.capacity || f.seats_sold > f.capacity {
            check.fail(format!(
                "{}: {sold} seats confirmed, {} counted sold, of {}",
                f.number, f.seats_sold, f.capacity
            ));
        }
        if f.seats_sold != held {
            check.fail(format!(
                "{}: counted {} sold but its live bookings hold {held}",
                f.number, f.seats_sold
            ));
        }
        if f.capacity - f.seats_sold < 3 {
            full += 1;
        }
    }
    check.summary = format!(
        "{} flights, {full} sold out (fewer than 3 seats left)",
        evidence.flights.len()
    );
    check
}

/// Exactly one confirmation email per confirmed booking, and none for any other.
fn emails(evidence: &Evidence) -> Check {
    let mut check = Check::new("confirmation emails not exactly one per confirmed booking");
    let confirmed: BTreeSet<&str> = evidence
        .bookings
        .iter()
        .filter(|b| b.status == "confirmed")
        .map(|b| b.reference.as_str())
        .collect();
    let (mut missing, mut repeated) = (0, 0);
    for reference in &confirmed {
        match evidence.emails.get(*reference).map_or(0, Vec::len) {
            1 => {}
            0 => {
                missing += 1;
                check.fail(format!("{reference}: no email"));
            }
            n => {
                repeated += 1;
                let ids: BTreeSet<&String> = evidence.emails[*reference].iter().collect();
                check.fail(format!(
                    "{reference}: {n} emails, {} distinct Message-IDs",
                    ids.len()
                ));
            }
        }
    }
    for reference in evidence.emails.keys() {
        if !confirmed.contains(reference.as_str()) {
            check.fail(format!(
                "{reference}: an email, but the booking is not confirmed"
            ));
        }
    }
    let messages: usize = evidence.emails.values().map(Vec::len).sum();
    check.summary = format!(
        "{messages} confirmation emails for {} confirmed bookings ({missing} missing, {repeated} repeated); {} other messages",
        confirmed.len(),
        evidence.other_emails
    );
    check
}

fn exits_check(exits: &[Exit]) -> Check {
    let mut check = Check::new("skybook exits the soak did not cause");
    for exit in exits {
        check.fail(format!(
            "{} exited {:?}; see {}",
            exit.process,
            exit.code,
            exit.log.display()
        ));
    }
    check.summary = format!("{} unexpected exits", exits.len());
    check
}

/// The same request (key) always answers the same booking; a fresh-browser duplicate is refused as the
/// booking it duplicates (or books anew only if that one failed).
///
/// One exception is skybook's design: a booking whose charge never reached the provider is failed
/// (`provider_unavailable`) and its key forgotten, so the retry with that key starts afresh. A second click's
/// status page may have shown that booking (as `seat held`) before it was abandoned; tolerated, and counted,
/// as long as it was never acknowledged as booked (201, 202, or a page showing it confirmed or pending).
fn same_booking(attempts: &[Attempt], index: &Index<'_>) -> Check {
    let mut check = Check::new("replays and duplicates not answered with the same booking");
    let mut by_key: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    let mut duplicates = 0;
    for attempt in attempts {
        if let (
            false,
            Answer::Booked {
                status,
                reference,
                shown,
            },
        ) = (attempt.key.is_empty(), &attempt.answer)
        {
            let acknowledged = *status != 303 || shown.as_deref() != Some("seat held");
            let entry = by_key
                .entry(&attempt.key)
                .or_default()
                .entry(reference)
                .or_default();
            *entry |= acknowledged;
        }
        let Kind::Duplicate { of } = &attempt.kind else {
            continue;
        };
        duplicates += 1;
        let original_failed = index
            .by_reference
            .get(of.as_str())
            .is_some_and(|b| b.status == "failed");
        match &attempt.answer {
            Answer::Duplicate { existing } if existing == of => {}
            Answer::Booked { reference, .. } if reference == of || original_failed => {}
            Answer::Unanswered { .. } | Answer::Unexpected { .. } => {}
            other => check.fail(format!(
                "duplicate of {of} ({:?}, key {}) answered {other:?}",
                attempt.channel, attempt.key
            )),
        }
    }
    let mut restarted = 0;
    for (key, references) in by_key.iter().filter(|(_, r)| r.len() > 1) {
        let abandoned = |reference: &str, acknowledged: bool| {
            !acknowledged
                && index.by_reference.get(reference).is_some_and(|b| {
                    b.status == "failed"
                        && b.failure_reason.as_deref() == Some("provider_unavailable")
                })
        };
        let kept = references
            .iter()
            .filter(|(r, a)| !abandoned(r, **a))
            .count();
        if kept <= 1 {
            restarted += 1;
        } else {
            check.fail(format!(
                "key {key} answered bookings {references:?} (reference: acknowledged)"
            ));
        }
    }
    let replays = attempts
        .iter()
        .filter(|a| matches!(a.kind, Kind::Replay | Kind::DoubleClick))
        .count();
    check.summary = format!(
        "{replays} same-key replays and double clicks, {duplicates} fresh-browser duplicates; {restarted} keys \
         booked afresh after their first booking was abandoned unpaid (provider unreachable)"
    );
    check
}

/// Every attempt got an answer the contract names, within its deadline.
fn contract(attempts: &[Attempt]) -> Check {
    let mut check = Check::new("answers outside the contract, or none");
    for attempt in attempts {
        match &attempt.answer {
            Answer::Unexpected { status, body } => check.fail(format!(
                "{:?} {:?} key {}: {status} {body}",
                attempt.channel, attempt.kind, attempt.key
            )),
            Answer::Unanswered { last } => check.fail(format!(
                "{:?} {:?} key {}: no answer in time, last {last}",
                attempt.channel, attempt.kind, attempt.key
            )),
            _ => {}
        }
    }
    let requests: usize = attempts.iter().map(|a| a.requests.len()).sum();
    check.summary = format!("{} attempts, {requests} requests", attempts.len());
    check
}

fn soak_incidents(incidents: &[String]) -> Check {
    let mut check = Check::new("soak incidents (faults not injected, unclean SIGTERM exits)");
    for incident in incidents {
        check.fail(incident.clone());
    }
    check.summary = format!("{} incidents", incidents.len());
    check
}
