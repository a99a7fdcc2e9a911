//! Partners whose flights file is a fixed timetable rather than generated flights: the file for a
//! date lists every departure of the timetable on each day of a window starting that date. The demo
//! configures its tenant's partner this way (`SandboxConfig::with_timetable`), so the demo's
//! catalog — the same DUB⇄LHR flights every day — comes in through the importer, and tomorrow's
//! file carries the window one day on.

use std::fmt::Write as _;

use chrono::{Days, NaiveDate, NaiveTime};

/// One daily departure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub number: String,
    pub origin: String,
    pub destination: String,
    /// Departure time, UTC.
    pub time: NaiveTime,
}

/// A partner's daily timetable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timetable {
    pub departures: Vec<Departure>,
    /// How many days, from the feed's date, each file covers.
    pub days: u32,
    /// Seats on every flight.
    pub capacity: u32,
    /// Fare of every flight, in minor units of `currency`.
    pub fare_minor: u64,
    pub currency: String,
}

impl Timetable {
    /// Appends the file's rows (no header) for the window starting `date` to `buf`.
    pub(super) fn write_rows(&self, date: NaiveDate, buf: &mut String) {
        for day in 0..self.days {
            let Some(day) = date.checked_add_days(Days::new(day.into())) else {
                break;
            };
            for departure in &self.departures {
                // Writing into a String cannot fail.
                let _ = writeln!(
                    buf,
                    "{},{},{},{}T{}Z,{},{},{}",
                    departure.number,
                    departure.origin,
                    departure.destination,
                    day.format("%Y-%m-%d"),
                    departure.time.format("%H:%M:%S"),
                    self.capacity,
                    self.fare_minor,
                    self.currency
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_days_each_with_every_departure() {
        let timetable = Timetable {
            departures: vec![
                Departure {
                    number: "EI154".into(),
                    origin: "DUB".into(),
                    destination: "LHR".into(),
                    time: NaiveTime::from_hms_opt(7, 30, 0).unwrap(),
                },
                Departure {
                    number: "EI155".into(),
                    origin: "LHR".into(),
                    destination: "DUB".into(),
                    time: NaiveTime::from_hms_opt(10, 15, 0).unwrap(),
                },
            ],
            days: 2,
            capacity: 12,
            fare_minor: 9599,
            currency: "EUR".into(),
        };
        let mut rows = String::new();
        timetable.write_rows(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(), &mut rows);
        assert_eq!(
            rows,
            "EI154,DUB,LHR,2026-12-31T07:30:00Z,12,9599,EUR\n\
             EI155,LHR,DUB,2026-12-31T10:15:00Z,12,9599,EUR\n\
             EI154,DUB,LHR,2027-01-01T07:30:00Z,12,9599,EUR\n\
             EI155,LHR,DUB,2027-01-01T10:15:00Z,12,9599,EUR\n"
        );
    }
}
