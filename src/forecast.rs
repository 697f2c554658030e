//! The month-end spend forecast's reference tables (`queries/spend_forecast.sql` does the
//! arithmetic): the calendar of days each window day looks back and forward on, and the
//! prediction intervals measured by the backtest (`tests/integration/forecast_backtest.rs`).
//! Date arithmetic lives here so the SQL needs no engine-specific date functions.

use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use deltalake::arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::datasource::MemTable;

use crate::alert_tables::days_in_month;
use crate::columns::in_memory_table;
use crate::error::Result;
use crate::sql_params::month_start;
use crate::window::{RunWindow, date32};

/// Days of history the seasonal forecast reads: the 28 days ending with the day it is made on.
pub const HISTORY_DAYS: i64 = 28;

/// The seasonal method needs the scope's first usage row among the 28 days within their first
/// week (so that it has spent through at least 3 weeks of them), counted as `history_days`.
pub const SEASONAL_MIN_HISTORY_DAYS: i64 = 22;

/// `method` of a forecast by day-of-week seasonality and a damped trend.
pub const SEASONAL_TREND: &str = "seasonal_trend";
/// `method` of the fallback: month to date / observed days x days in the month.
pub const LINEAR: &str = "linear";

/// The 90% prediction intervals: for each method and range of days left in the month, the 5%
/// and 95% quantiles of (realised month total / forecast month total) over the backtest's 4
/// scenarios x 40 generated months x every day of the month. The backtest recomputes them and
/// fails when they drift from these.
pub const INTERVALS: [(&str, i32, i32, f64, f64); 8] = [
    (LINEAR, 1, 7, 0.978, 1.069),
    (LINEAR, 8, 14, 0.977, 1.203),
    (LINEAR, 15, 21, 0.961, 1.526),
    (LINEAR, 22, 31, 0.835, 1.927),
    (SEASONAL_TREND, 1, 7, 0.979, 1.015),
    (SEASONAL_TREND, 8, 14, 0.914, 1.036),
    (SEASONAL_TREND, 15, 21, 0.967, 1.490),
    (SEASONAL_TREND, 22, 31, 0.946, 1.543),
];

/// `forecast_intervals`: (method, days_left_from, days_left_to, lower_ratio, upper_ratio), the
/// [`INTERVALS`].
pub fn forecast_intervals() -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("method", DataType::Utf8, false),
        Field::new("days_left_from", DataType::Int32, false),
        Field::new("days_left_to", DataType::Int32, false),
        Field::new("lower_ratio", DataType::Float64, false),
        Field::new("upper_ratio", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(INTERVALS.iter().map(|i| i.0))),
        Arc::new(Int32Array::from_iter_values(INTERVALS.iter().map(|i| i.1))),
        Arc::new(Int32Array::from_iter_values(INTERVALS.iter().map(|i| i.2))),
        Arc::new(Float64Array::from_iter_values(INTERVALS.iter().map(|i| i.3))),
        Arc::new(Float64Array::from_iter_values(INTERVALS.iter().map(|i| i.4))),
    ];
    in_memory_table("forecast_intervals", schema, columns)
}

/// One row of [`forecast_calendar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarDay {
    /// The window day the forecast is made on (its last known day).
    pub as_of: NaiveDate,
    /// A day it looks back or forward on.
    pub day: NaiveDate,
}

impl CalendarDay {
    /// `day - as_of` in days: -27..0 for the history, 1.. for the rest of the month.
    pub fn offset(&self) -> i64 {
        (self.day - self.as_of).num_days()
    }
    /// Whether `day` is in `as_of`'s month up to `as_of`.
    pub fn in_month_to_date(&self) -> bool {
        self.day >= month_start(self.as_of) && self.day <= self.as_of
    }
    /// Whether `day` is one of the [`HISTORY_DAYS`] ending with `as_of`.
    pub fn in_history(&self) -> bool {
        (1 - HISTORY_DAYS..=0).contains(&self.offset())
    }
    /// Whether `day` is after `as_of` in its month (a day to forecast).
    pub fn in_rest_of_month(&self) -> bool {
        self.offset() > 0
    }
}

/// The days each window day looks on: from the earlier of its month's first day and the first
/// of its [`HISTORY_DAYS`], to its month's last day.
pub fn calendar_days(window: &RunWindow) -> Vec<CalendarDay> {
    let mut rows = Vec::new();
    let mut as_of = window.from;
    while as_of <= window.to {
        let month = month_start(as_of);
        let last = month + Duration::days(i64::from(days_in_month(as_of)) - 1);
        let mut day = (as_of - Duration::days(HISTORY_DAYS - 1)).min(month);
        while day <= last {
            rows.push(CalendarDay { as_of, day });
            day += Duration::days(1);
        }
        as_of += Duration::days(1);
    }
    rows
}

/// `forecast_calendar`: one row per (as_of_date, history_date) of [`calendar_days`], with
/// `day_offset` (history_date - as_of_date), `weekday` (of history_date, 0 = Monday), the
/// flags `in_month_to_date`, `in_history` (the 28 days ending with as_of_date), `in_last_14`
/// and `in_rest_of_month`, and as_of_date's `days_elapsed` (day of month) and `days_in_month`.
pub fn forecast_calendar(window: &RunWindow) -> Result<MemTable> {
    let rows = calendar_days(window);
    let schema = Arc::new(Schema::new(vec![
        Field::new("as_of_date", DataType::Date32, false),
        Field::new("history_date", DataType::Date32, false),
        Field::new("day_offset", DataType::Int32, false),
        Field::new("weekday", DataType::Int32, false),
        Field::new("in_month_to_date", DataType::Boolean, false),
        Field::new("in_history", DataType::Boolean, false),
        Field::new("in_last_14", DataType::Boolean, false),
        Field::new("in_rest_of_month", DataType::Boolean, false),
        Field::new("days_elapsed", DataType::Int32, false),
        Field::new("days_in_month", DataType::Int32, false),
    ]));
    let flags = |f: fn(&CalendarDay) -> bool| Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>()));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| date32(r.as_of)))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| date32(r.day)))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.offset() as i32))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.day.weekday().num_days_from_monday() as i32))),
        flags(CalendarDay::in_month_to_date),
        flags(CalendarDay::in_history),
        flags(|r| (-13..=0).contains(&r.offset())),
        flags(CalendarDay::in_rest_of_month),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.as_of.day() as i32))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| days_in_month(r.as_of) as i32))),
    ];
    in_memory_table("forecast_calendar", schema, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_calendar_covers_28_days_back_and_the_rest_of_the_month() {
        let window = RunWindow::new(date("2026-11-03"), date("2026-11-03")).unwrap();
        let days = calendar_days(&window);
        // 2026-10-07 .. 2026-11-30.
        assert_eq!(days.first().map(|d| d.day), Some(date("2026-10-07")));
        assert_eq!(days.last().map(|d| d.day), Some(date("2026-11-30")));
        assert_eq!(days.iter().filter(|d| d.in_history()).count(), 28);
        assert_eq!(days.iter().filter(|d| d.in_month_to_date()).count(), 3);
        assert_eq!(days.iter().filter(|d| d.in_rest_of_month()).count(), 27);
        // Late in a 31-day month the month to date reaches further back than the 28 days.
        let window = RunWindow::new(date("2026-12-31"), date("2026-12-31")).unwrap();
        let days = calendar_days(&window);
        assert_eq!(days.first().map(|d| d.day), Some(date("2026-12-01")));
        assert_eq!(days.iter().filter(|d| d.in_month_to_date()).count(), 31);
        assert_eq!(days.iter().filter(|d| d.in_rest_of_month()).count(), 0);
    }

    #[test]
    fn every_horizon_has_an_interval_around_one() {
        for method in [LINEAR, SEASONAL_TREND] {
            for left in 1..=30 {
                let found: Vec<_> = INTERVALS.iter().filter(|i| i.0 == method && (i.1..=i.2).contains(&left)).collect();
                assert_eq!(found.len(), 1, "{method}, {left} days left");
                assert!(found[0].3 < 1.0 && found[0].4 > 1.0);
            }
        }
    }
}
