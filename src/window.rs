//! The run window: the inclusive range of UTC dates a run recomputes.

use chrono::{Duration, NaiveDate, Utc};

use crate::error::{Error, Result};

/// An inclusive range of UTC dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunWindow {
    /// First date recomputed.
    pub from: NaiveDate,
    /// Last date recomputed (inclusive).
    pub to: NaiveDate,
}

/// The longest window one run accepts; a guard against a typo in a year.
const MAX_WINDOW_DAYS: i64 = 3660;

impl RunWindow {
    /// Builds the window from the command line: both bounds default to yesterday (UTC); a
    /// single bound gives a one-day window.
    pub fn from_args(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Self> {
        let yesterday = Utc::now().date_naive() - Duration::days(1);
        let (from, to) = match (from, to) {
            (None, None) => (yesterday, yesterday),
            (Some(f), None) => (f, f),
            (None, Some(t)) => (t, t),
            (Some(f), Some(t)) => (f, t),
        };
        Self::new(from, to)
    }

    /// Checks the bounds.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self> {
        if from > to {
            return Err(Error::Usage(format!("--from {from} is after --to {to}")));
        }
        if (to - from).num_days() >= MAX_WINDOW_DAYS {
            return Err(Error::Usage(format!(
                "the window {from}..{to} is longer than {MAX_WINDOW_DAYS} days; run it in parts"
            )));
        }
        Ok(RunWindow { from, to })
    }

    /// The first instant after the window (midnight UTC after `to`).
    pub fn end_exclusive(&self) -> NaiveDate {
        self.to + Duration::days(1)
    }

    /// Number of dates in the window.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The window's dates, in order.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let (from, days) = (self.from, self.days());
        (0..days).map(move |offset| from + Duration::days(offset))
    }
}

/// A date as Arrow's Date32: days since 1970-01-01.
pub fn date32(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as i32
}

/// The date of a Date32 value (days since 1970-01-01).
pub fn date_of_date32(days: i32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    epoch + chrono::Duration::days(i64::from(days))
}

/// A date as a SQL DATE literal value.
pub fn date_value(date: NaiveDate) -> deltalake::datafusion::common::ScalarValue {
    deltalake::datafusion::common::ScalarValue::Date32(Some(date32(date)))
}

impl std::fmt::Display for RunWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from == self.to { write!(f, "{}", self.from) } else { write!(f, "{}..{}", self.from, self.to) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn single_bound_is_a_one_day_window() {
        let w = RunWindow::from_args(Some(d("2026-11-01")), None).unwrap();
        assert_eq!((w.from, w.to, w.days()), (d("2026-11-01"), d("2026-11-01"), 1));
        assert_eq!(w.end_exclusive(), d("2026-11-02"));
    }

    #[test]
    fn rejects_reversed_bounds() {
        let err = RunWindow::new(d("2026-11-03"), d("2026-11-01")).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_BAD_CONFIG_OR_INPUT);
    }
}
