//! SQL variables: `${name}` in a query file is replaced with a literal before planning.
//!
//! This is Spark SQL's variable-substitution syntax (`SET name = value` then `${name}`), so the
//! same files run on Spark. Values are produced here from validated dates and numbers, never
//! from free text, so substitution cannot inject SQL.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::window::RunWindow;

/// Named SQL literals for one run.
#[derive(Debug, Clone, Default)]
pub struct SqlParams {
    values: BTreeMap<&'static str, String>,
}

fn timestamp(date: NaiveDate) -> String {
    format!("TIMESTAMP '{date} 00:00:00'")
}

fn date(date: NaiveDate) -> String {
    format!("DATE '{date}'")
}

/// The first day of `date`'s month.
pub fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// The first date an output needs history from: spend_forecast looks back on the 28 days
/// ending with each window day (spend_spike on 7 of them), budget_burn from the first of the
/// month, recommendations over their lookback.
pub fn history_start(window: &RunWindow, settings: &Settings) -> NaiveDate {
    let forecast = window.from - Duration::days(crate::forecast::HISTORY_DAYS - 1);
    let month = month_start(window.from);
    let lookback = lookback_start(window, settings);
    forecast.min(month).min(lookback).min(window.from)
}

/// First date of the recommendations' lookback (inclusive), ending with the window's last date.
pub fn lookback_start(window: &RunWindow, settings: &Settings) -> NaiveDate {
    window.to - Duration::days(i64::from(settings.recommendations.lookback_days) - 1)
}

impl SqlParams {
    /// The variables of one computation over `window` with `settings`, costed with the price
    /// list `price_version`, reading the raw inputs from `inputs_from` (history before it comes
    /// from earlier runs' outputs, see [`crate::history`]; [`history_start`] when none does).
    /// Fixed once made: a run's plan decides every value.
    pub fn new(window: &RunWindow, settings: &Settings, price_version: &str, inputs_from: NaiveDate) -> Self {
        let mut values = BTreeMap::new();
        values.insert("window_start", timestamp(window.from));
        values.insert("window_end", timestamp(window.end_exclusive()));
        values.insert("window_from", date(window.from));
        values.insert("window_to", date(window.to));
        let lookback = lookback_start(window, settings);
        values.insert("lookback_start", timestamp(lookback));
        let history = history_start(window, settings);
        values.insert("history_start", timestamp(history));
        values.insert("history_from", date(history));
        // Per-minute demand covers the lookback and every window day (minute_demand's rows).
        let demand = lookback.min(window.from);
        values.insert("demand_start", timestamp(demand));
        values.insert("demand_from", date(demand));
        values.insert("payload_date_to", date(window.to + Duration::days(1)));
        // Traces are matched to requests with a day of slack either side of the window.
        values.insert("traces_start", timestamp(window.from - Duration::days(1)));
        values.insert("traces_end", timestamp(window.end_exclusive() + Duration::days(1)));
        for (name, value) in settings.sql_values().into_iter().chain(settings.focus.sql_values()) {
            values.insert(name, value);
        }
        values.insert("forecast_history_days", crate::forecast::HISTORY_DAYS.to_string());
        values.insert("forecast_seasonal_min_days", crate::forecast::SEASONAL_MIN_HISTORY_DAYS.to_string());
        let safe: String = price_version.chars().filter(|c| c.is_ascii_alphanumeric() || *c == ':').collect();
        values.insert("price_version", format!("'{safe}'"));
        // The first date read from the raw inputs (`${inputs_start}`, `${inputs_from}`).
        values.insert("inputs_start", timestamp(inputs_from));
        values.insert("inputs_from", date(inputs_from));
        // The payload input view prunes by request_date with a day of slack either side.
        values.insert("payload_date_from", date(inputs_from - Duration::days(1)));
        SqlParams { values }
    }

    /// `sql` with every `${name}` replaced; an unknown name is an error naming it.
    pub fn render(&self, query: &str, sql: &str) -> Result<String> {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| unknown(query, "an unclosed ${"))?;
            let name = &after[..end];
            let value = self.values.get(name).ok_or_else(|| unknown(query, &format!("${{{name}}}")))?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Every variable and its SQL literal, by name.
    pub fn values(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(name, value)| (*name, value.as_str()))
    }
}

fn unknown(query: &str, what: &str) -> Error {
    Error::query(query, deltalake::datafusion::error::DataFusionError::Plan(format!("unknown SQL variable {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> RunWindow {
        RunWindow::new("2026-11-03".parse().unwrap(), "2026-11-04".parse().unwrap()).unwrap()
    }

    #[test]
    fn renders_known_variables_and_rejects_unknown_ones() {
        let params = SqlParams::new(&window(), &Settings::default(), "none", window().from);
        let sql = params.render("q", "WHERE t >= ${window_start} AND t < ${window_end}").unwrap();
        assert_eq!(sql, "WHERE t >= TIMESTAMP '2026-11-03 00:00:00' AND t < TIMESTAMP '2026-11-05 00:00:00'");
        assert!(params.render("q", "${nope}").unwrap_err().to_string().contains("${nope}"));
    }

    #[test]
    fn history_covers_forecast_month_and_lookback() {
        let settings = Settings::default();
        // The forecast's 28 days ending with the window's first day.
        assert_eq!(history_start(&window(), &settings), "2026-10-07".parse().unwrap());
        assert_eq!(lookback_start(&window(), &settings), "2026-10-22".parse().unwrap());
    }
}
