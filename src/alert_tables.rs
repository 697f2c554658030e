//! Small in-memory tables the alert query joins: the calendar of days each window day looks
//! back on, the teams' monthly budgets and the data-quality checks' own thresholds. Date
//! arithmetic lives here, in one tested place, so the SQL needs no engine-specific date
//! functions.

use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use deltalake::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::datasource::MemTable;

use crate::columns::in_memory_table;
use crate::error::Result;
use crate::settings::{Settings, to_millionths};
use crate::sql_params::month_start;
use crate::window::{RunWindow, date32};

/// Number of days in `date`'s month.
pub fn days_in_month(date: NaiveDate) -> u32 {
    let first = month_start(date);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.map_or(31, |n| (n - first).num_days() as u32)
}

/// `alert_calendar`: for each window day (`evaluated_date`), one row per day it looks back on:
/// the 7 previous days (`in_previous_7`) and the days of its month up to itself
/// (`in_month_to_date`), with `days_elapsed` (its day of month) and `days_in_month`.
pub fn alert_calendar(window: &RunWindow) -> Result<MemTable> {
    let mut rows: Vec<(NaiveDate, NaiveDate, bool, bool, u32, u32)> = Vec::new();
    let mut day = window.from;
    while day <= window.to {
        let month = month_start(day);
        let first = (day - Duration::days(7)).min(month);
        let mut history = first;
        while history <= day {
            let previous_7 = history < day && history >= day - Duration::days(7);
            let month_to_date = history >= month;
            if previous_7 || month_to_date {
                rows.push((day, history, previous_7, month_to_date, day.day(), days_in_month(day)));
            }
            history += Duration::days(1);
        }
        day += Duration::days(1);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("evaluated_date", DataType::Date32, false),
        Field::new("history_date", DataType::Date32, false),
        Field::new("in_previous_7", DataType::Boolean, false),
        Field::new("in_month_to_date", DataType::Boolean, false),
        Field::new("days_elapsed", DataType::Int32, false),
        Field::new("days_in_month", DataType::Int32, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| date32(r.0)))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| date32(r.1)))),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.4 as i32))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.5 as i32))),
    ];
    in_memory_table("alert_calendar", schema, columns)
}

/// `team_budgets`: (team, monthly_budget_usd DECIMAL(18,6)) from `[alerts.budget_burn]`.
pub fn team_budgets(settings: &Settings) -> Result<MemTable> {
    let budgets = &settings.alerts.budget_burn.monthly_budgets_usd;
    let money = DataType::Decimal128(18, 6);
    let schema = Arc::new(Schema::new(vec![
        Field::new("team", DataType::Utf8, false),
        Field::new("monthly_budget_usd", money.clone(), false),
    ]));
    let amounts: Vec<i128> = budgets.values().map(|v| i128::from(to_millionths(*v).unwrap_or_default())).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(budgets.keys())),
        Arc::new(Decimal128Array::from(amounts).with_data_type(money)),
    ];
    in_memory_table("team_budgets", schema, columns)
}

/// `data_quality_thresholds`: (check_name `table.check`, min_rows, warning_ppm, critical_ppm,
/// warning, critical) for each check with thresholds of its own (built in, or from
/// `[alerts.data_quality] checks`); `queries/alerts.sql` uses the rule's for the others. Shares
/// in millionths for the comparisons, as DOUBLE for display.
pub fn data_quality_thresholds(settings: &Settings) -> Result<MemTable> {
    let checks = settings.alerts.data_quality.check_thresholds();
    let ppm = |share: f64| to_millionths(share).unwrap_or_default();
    let schema = Arc::new(Schema::new(vec![
        Field::new("check_name", DataType::Utf8, false),
        Field::new("min_rows", DataType::Int64, false),
        Field::new("warning_ppm", DataType::Int64, false),
        Field::new("critical_ppm", DataType::Int64, false),
        Field::new("warning", DataType::Float64, false),
        Field::new("critical", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(checks.keys())),
        Arc::new(Int64Array::from_iter_values(checks.values().map(|t| i64::try_from(t.min_rows).unwrap_or(i64::MAX)))),
        Arc::new(Int64Array::from_iter_values(checks.values().map(|t| ppm(t.warning)))),
        Arc::new(Int64Array::from_iter_values(checks.values().map(|t| ppm(t.critical)))),
        Arc::new(Float64Array::from_iter_values(checks.values().map(|t| t.warning))),
        Arc::new(Float64Array::from_iter_values(checks.values().map(|t| t.critical))),
    ];
    in_memory_table("data_quality_thresholds", schema, columns)
}

/// `alert_mutes`: (rule, endpoint_name, scope_value, until DATE) from `[alerts] mute`; a NULL
/// endpoint or scope value matches any.
pub fn alert_mutes(settings: &Settings) -> Result<MemTable> {
    let mutes = &settings.alerts.mute;
    let schema = Arc::new(Schema::new(vec![
        Field::new("rule", DataType::Utf8, false),
        Field::new("endpoint_name", DataType::Utf8, true),
        Field::new("scope_value", DataType::Utf8, true),
        Field::new("until", DataType::Date32, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(mutes.iter().map(|m| m.rule.as_str()))),
        Arc::new(StringArray::from_iter(mutes.iter().map(|m| m.endpoint.as_deref()))),
        Arc::new(StringArray::from_iter(mutes.iter().map(|m| m.scope_value.as_deref()))),
        Arc::new(Date32Array::from_iter_values(mutes.iter().map(|m| date32(m.until)))),
    ];
    in_memory_table("alert_mutes", schema, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_lengths() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(days_in_month(d("2026-02-10")), 28);
        assert_eq!(days_in_month(d("2028-02-10")), 29);
        assert_eq!(days_in_month(d("2026-12-31")), 31);
        assert_eq!(days_in_month(d("2026-11-01")), 30);
    }
}
