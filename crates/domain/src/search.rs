//! What a flight search may ask for.

use std::fmt;

use chrono::{Days, Months, NaiveDate};

use crate::error::ParseError;

/// A UTC departure day that a search may ask for: `YYYY-MM-DD`, from the day before `today` to two years after
/// it.
///
/// It starts the day before because search days are in UTC. West of Greenwich (as far as UTC−12), a
/// traveller's local today can still be yesterday in UTC. It ends two years ahead: airlines sell about a
/// year ahead, so that finds every bookable flight. The bound also matters for safety: a day such as
/// `+262142-12-31` is valid for chrono, but its end overflowed the search's date arithmetic (a 500), and
/// it lies outside what SQLite's text timestamps sort correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SearchDate(NaiveDate);

impl SearchDate {
    /// How far past today a search may look.
    const AHEAD: Months = Months::new(24);

    /// Parses exactly `YYYY-MM-DD` (four-digit year, no sign: chrono's `%Y` alone would take `+262142`) for a
    /// day within [`SearchDate::window`] of `today`. The message names the window, so whoever typed the date
    /// can see which days are allowed.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, ParseError> {
        let (earliest, latest) = Self::window(today);
        let invalid = || {
            ParseError::new(format!(
                "must be a date from {earliest} to {latest}, as YYYY-MM-DD"
            ))
        };
        let shaped = raw.len() == 10
            && raw.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shaped {
            return Err(invalid());
        }
        let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| invalid())?;
        if !(earliest..=latest).contains(&day) {
            return Err(invalid());
        }
        Ok(Self(day))
    }

    /// The first and last day that a search on `today` may ask for. At the ends of chrono's range the window
    /// stops at the range's limit rather than overflow, so any `today` is safe.
    pub fn window(today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let earliest = today
            .checked_sub_days(Days::new(1))
            .unwrap_or(NaiveDate::MIN);
        let latest = today
            .checked_add_months(Self::AHEAD)
            .unwrap_or(NaiveDate::MAX);
        (earliest, latest)
    }

    pub fn day(self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for SearchDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(raw: &str) -> NaiveDate {
        raw.parse().unwrap()
    }

    #[test]
    fn days_from_yesterday_to_two_years_ahead_are_searchable() {
        let today = day("2026-11-30");
        for ok in ["2026-11-29", "2026-11-30", "2027-06-01", "2028-11-30"] {
            assert_eq!(
                SearchDate::parse(ok, today).map(SearchDate::day),
                Ok(day(ok))
            );
        }
        for bad in [
            "2026-11-28",
            "2028-12-01",
            "+262142-12-31",
            "9999-12-31",
            "1900-01-01",
            "2026-02-30",
            "2026-1-05",
            "26-11-30",
            "2026/11/30",
            "",
        ] {
            let err = SearchDate::parse(bad, today).unwrap_err();
            assert_eq!(
                err.message(),
                "must be a date from 2026-11-29 to 2028-11-30, as YYYY-MM-DD",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_window_never_overflows() {
        assert_eq!(
            SearchDate::window(NaiveDate::MAX),
            (NaiveDate::MAX.pred_opt().unwrap(), NaiveDate::MAX)
        );
        assert_eq!(SearchDate::window(NaiveDate::MIN).0, NaiveDate::MIN);
        // Two years after a leap day: no 29 February then, so the window ends on the 28th.
        assert_eq!(SearchDate::window(day("2028-02-29")).1, day("2030-02-28"));
    }
}
