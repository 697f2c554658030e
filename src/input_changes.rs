//! Which dates' input rows changed since a version of an input table, read from its Delta log.
//!
//! Databricks lands usage, payload and trace rows hours or days after their `request_time`,
//! and privacy deletions remove rows of old dates (deletion vectors on the payload table, a
//! DELETE on the usage copy). Every such change is a commit that adds or removes data files
//! (`dataChange: true`; an OPTIMIZE, which moves rows without changing them, is
//! `dataChange: false` and ignored). A file's rows fall on the UTC dates between the minimum
//! and maximum of its time column, which its statistics record (or, failing those, its
//! `request_date` partition value, with the day of slack the queries allow). A removed file's
//! dates come from the file added at the same path in a replayed commit (a deletion-vector
//! rewrite re-adds its path) or from the table's files at the oldest version compared. Where
//! neither tells (no statistics, a commit file already cleaned up), the change may touch every
//! date, and says so.
//!
//! Requests are matched across tables with a day of slack (payload rows to usage rows, traces
//! to requests), so a change on a date also touches the dates either side of it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime};
use deltalake::DeltaTable;
use deltalake::kernel::{Action, MetadataValue};
use serde_json::Value;

use crate::error::{Error, Result};

/// An input table whose rows fall on dates by a time column.
#[derive(Debug, Clone, Copy)]
pub struct DatedInput {
    /// The input's name in messages and in the ledger (`usage`, `payload`, `traces`,
    /// `gateway_usage`, `gateway_payload`).
    pub name: &'static str,
    /// The UTC timestamp that places a row on a date.
    pub time_column: &'static str,
    /// A date column (partition or clustering key) within a day of the time column, used when
    /// a file has no statistics of the time column.
    pub date_column: Option<&'static str>,
}

/// `system.serving.endpoint_usage` (or its copy).
pub const USAGE: DatedInput = DatedInput { name: "usage", time_column: "request_time", date_column: None };
/// The inference (payload) table, clustered by `request_date`.
pub const PAYLOAD: DatedInput =
    DatedInput { name: "payload", time_column: "request_time", date_column: Some("request_date") };
/// The MLflow traces table.
pub const TRACES: DatedInput = DatedInput { name: "traces", time_column: "request_time", date_column: None };

/// The new AI Gateway's usage table, `system.ai_gateway.usage`: rows fall on `event_time`'s date.
pub const GATEWAY_USAGE: DatedInput =
    DatedInput { name: "gateway_usage", time_column: "event_time", date_column: None };
/// The new AI Gateway's payload table: rows fall on `event_time`'s date.
pub const GATEWAY_PAYLOAD: DatedInput =
    DatedInput { name: "gateway_payload", time_column: "event_time", date_column: None };

/// Days either side of a changed row's date whose outputs it can change (request matching).
const MATCHING_SLACK_DAYS: i64 = 1;

/// A data file of a table's current version.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Size in bytes.
    pub size: u64,
    /// The first and last UTC date of its rows; `None` when its metadata cannot tell.
    pub dates: Option<(NaiveDate, NaiveDate)>,
}

/// How a change touched a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// Rows were added (late rows).
    Added,
    /// Rows were removed (a delete, a deletion vector, a rewrite).
    Removed,
    /// A file the log cannot place on dates changed: every date it could touch is counted.
    Unplaced,
}

/// The versions of one input that changed a date, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateChanges {
    /// Versions per kind of change.
    pub versions: BTreeMap<ChangeKind, Vec<i64>>,
}

impl DateChanges {
    fn add(&mut self, kind: ChangeKind, version: i64) {
        let versions = self.versions.entry(kind).or_default();
        if !versions.contains(&version) {
            versions.push(version);
        }
    }

    /// Why the date is recomputed, one phrase per kind: `late rows in usage v12..v14`.
    pub fn reasons(&self, input: &str) -> Vec<String> {
        self.versions
            .iter()
            .map(|(kind, versions)| {
                let first = versions.iter().min().copied().unwrap_or_default();
                let last = versions.iter().max().copied().unwrap_or_default();
                let span = if first == last { format!("v{first}") } else { format!("v{first}..v{last}") };
                match kind {
                    ChangeKind::Added => format!("late rows in {input} {span}"),
                    ChangeKind::Removed => format!("rows deleted from {input} {span}"),
                    ChangeKind::Unplaced => {
                        format!("{input} {span} changed files without date statistics (every date they could touch)")
                    }
                }
            })
            .collect()
    }
}

/// The physical names (column mapping) of a table's time and date columns.
#[derive(Debug, Clone)]
struct DateColumns {
    time: String,
    date: Option<String>,
}

fn date_columns(table: &DeltaTable, input: &DatedInput) -> Result<DateColumns> {
    let schema = table.snapshot().map_err(|e| read_error(input, table, &e.to_string()))?.schema();
    let physical = |name: &str| -> String {
        schema
            .field(name)
            .and_then(|field| match field.metadata.get("delta.columnMapping.physicalName") {
                Some(MetadataValue::String(physical)) => Some(physical.clone()),
                _ => None,
            })
            .unwrap_or_else(|| name.to_string())
    };
    Ok(DateColumns { time: physical(input.time_column), date: input.date_column.map(physical) })
}

fn read_error(input: &DatedInput, table: &DeltaTable, message: &str) -> Error {
    Error::InputRead {
        input: input.name.to_string(),
        location: crate::location::redact(table.table_url().as_str()),
        message: message.to_string(),
    }
}

/// A statistics or partition value as a UTC date: timestamps (with or without an offset; one
/// without is read as UTC, as Databricks writes) and dates.
fn stat_date(value: &Value) -> Option<NaiveDate> {
    let text = value.as_str()?;
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.naive_utc().date());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.date());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// The dates a file's rows fall on, from its statistics JSON or its partition values.
fn file_dates(
    stats: Option<&str>,
    partition_values: &HashMap<String, Option<String>>,
    columns: &DateColumns,
) -> Option<(NaiveDate, NaiveDate)> {
    let stats: Option<Value> = stats.and_then(|s| serde_json::from_str(s).ok());
    let bound = |side: &str, column: &str| stats.as_ref().and_then(|s| s.get(side)?.get(column)).and_then(stat_date);
    if let (Some(low), Some(high)) = (bound("minValues", &columns.time), bound("maxValues", &columns.time)) {
        return Some((low, high));
    }
    // A date column is within a day of the time column (the queries read it with that slack).
    let date_column = columns.date.as_deref()?;
    let partition = partition_values
        .get(date_column)
        .cloned()
        .flatten()
        .and_then(|v| NaiveDate::parse_from_str(&v, "%Y-%m-%d").ok());
    let (low, high) = match partition {
        Some(date) => (date, date),
        None => (bound("minValues", date_column)?, bound("maxValues", date_column)?),
    };
    Some((low - Duration::days(1), high + Duration::days(1)))
}

/// The data files of the table's loaded version with the dates of their rows.
pub fn current_files(table: &DeltaTable, input: &DatedInput) -> Result<Vec<DataFile>> {
    let columns = date_columns(table, input)?;
    let snapshot = table.snapshot().map_err(|e| read_error(input, table, &e.to_string()))?;
    Ok(snapshot
        .log_data()
        .iter()
        .map(|file| DataFile {
            size: u64::try_from(file.size()).unwrap_or(0),
            dates: file_dates(file.stats().as_deref(), &file.partition_values_map(), &columns),
        })
        .collect())
}

/// For each date of `recorded` (the version its outputs are current with), how the input rows
/// of that date and of the dates beside it changed in the versions after it, up to the
/// table's loaded version. Reads the commits after the oldest recorded version.
pub async fn changed_dates(
    table: &DeltaTable,
    input: &DatedInput,
    recorded: &BTreeMap<NaiveDate, i64>,
) -> Result<BTreeMap<NaiveDate, DateChanges>> {
    let mut changes: BTreeMap<NaiveDate, DateChanges> = BTreeMap::new();
    let current = table.version().and_then(|v| i64::try_from(v).ok()).unwrap_or(-1);
    let Some(oldest) = recorded.values().copied().filter(|v| *v < current).min() else {
        return Ok(changes);
    };
    let columns = date_columns(table, input)?;
    let log_store = table.log_store();
    // Dates of files added in the replayed commits, by path (a removed file looks them up).
    let mut added_dates: HashMap<String, Option<(NaiveDate, NaiveDate)>> = HashMap::new();
    let mut files_at_oldest: Option<HashMap<String, Option<(NaiveDate, NaiveDate)>>> = None;
    let mut touch = |dates: Option<(NaiveDate, NaiveDate)>, kind: ChangeKind, version: i64| {
        for (date, since) in recorded {
            if *since >= version {
                continue;
            }
            let touched = match dates {
                Some((low, high)) => {
                    *date >= low - Duration::days(MATCHING_SLACK_DAYS)
                        && *date <= high + Duration::days(MATCHING_SLACK_DAYS)
                }
                None => true,
            };
            if touched {
                let kind = if dates.is_none() { ChangeKind::Unplaced } else { kind };
                changes.entry(*date).or_default().add(kind, version);
            }
        }
    };
    for version in oldest + 1..=current {
        let read = log_store.read_commit_entry(version as u64).await;
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            // Cleaned up by log retention: every date this commit could touch.
            Ok(None) => {
                tracing::warn!(input = input.name, version, "the commit file is gone (log retention)");
                touch(None, ChangeKind::Unplaced, version);
                continue;
            }
            Err(e) => return Err(read_error(input, table, &crate::storage::describe_delta_error(&e))),
        };
        let actions = deltalake::logstore::get_actions(version as u64, &bytes)
            .map_err(|e| read_error(input, table, &e.to_string()))?;
        // A path removed and added in one commit was rewritten (a deletion vector, an UPDATE):
        // its rows changed but none arrived late; the remove below counts it.
        let removed: std::collections::HashSet<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove(remove) if remove.data_change => Some(decoded(&remove.path)),
                _ => None,
            })
            .collect();
        let mut commit_adds: HashMap<String, Option<(NaiveDate, NaiveDate)>> = HashMap::new();
        for action in &actions {
            if let Action::Add(add) = action {
                let dates = file_dates(add.stats.as_deref(), &add.partition_values, &columns);
                let path = decoded(&add.path);
                if add.data_change && !removed.contains(&path) {
                    touch(dates, ChangeKind::Added, version);
                }
                commit_adds.insert(path, dates);
            }
        }
        for action in &actions {
            let Action::Remove(remove) = action else { continue };
            if !remove.data_change {
                continue;
            }
            let path = decoded(&remove.path);
            let mut dates = commit_adds.get(&path).copied().or_else(|| added_dates.get(&path).copied());
            if dates.is_none() {
                if files_at_oldest.is_none() {
                    files_at_oldest = Some(files_at(table, input, &columns, oldest).await?);
                }
                dates = files_at_oldest.as_ref().and_then(|files| files.get(&path).copied());
            }
            let partition_dates =
                remove.partition_values.as_ref().and_then(|values| file_dates(None, values, &columns).map(Some));
            touch(dates.flatten().or(partition_dates.flatten()), ChangeKind::Removed, version);
        }
        added_dates.extend(commit_adds);
    }
    Ok(changes)
}

/// The files of the table at `version`, by path, with their dates.
async fn files_at(
    table: &DeltaTable,
    input: &DatedInput,
    columns: &DateColumns,
    version: i64,
) -> Result<HashMap<String, Option<(NaiveDate, NaiveDate)>>> {
    let mut old = DeltaTable::new(table.log_store());
    if let Err(e) = old.load_version(version as u64).await {
        // Cleaned up by log retention: removed files of unknown dates touch every date.
        tracing::warn!(input = input.name, version, "cannot load the version: {e}");
        return Ok(HashMap::new());
    }
    let snapshot = old.snapshot().map_err(|e| read_error(input, table, &e.to_string()))?;
    Ok(snapshot
        .log_data()
        .iter()
        .map(|file| {
            let dates = file_dates(file.stats().as_deref(), &file.partition_values_map(), columns);
            (file.path().to_string(), dates)
        })
        .collect())
}

/// A log path with its percent-encoding undone, as the snapshot's file views give it.
fn decoded(path: &str) -> String {
    percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> DateColumns {
        DateColumns { time: "request_time".into(), date: Some("request_date".into()) }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn dates_come_from_time_statistics_first() {
        let stats = r#"{"numRecords":3,"minValues":{"request_time":"2026-11-01T23:59:59.999Z"},
                        "maxValues":{"request_time":"2026-11-02T00:00:01.000+00:00"}}"#;
        assert_eq!(file_dates(Some(stats), &HashMap::new(), &columns()), Some((d("2026-11-01"), d("2026-11-02"))));
        // Without an offset (TIMESTAMP_NTZ statistics) the value is read as UTC.
        let ntz = r#"{"minValues":{"request_time":"2026-11-03T01:00:00.000"},
                      "maxValues":{"request_time":"2026-11-03T02:00:00.000"}}"#;
        assert_eq!(file_dates(Some(ntz), &HashMap::new(), &columns()), Some((d("2026-11-03"), d("2026-11-03"))));
    }

    #[test]
    fn a_date_partition_stands_in_with_a_day_of_slack() {
        let partition = HashMap::from([("request_date".to_string(), Some("2026-11-05".to_string()))]);
        assert_eq!(file_dates(None, &partition, &columns()), Some((d("2026-11-04"), d("2026-11-06"))));
        let no_dates = DateColumns { time: "request_time".into(), date: None };
        assert_eq!(file_dates(Some(r#"{"numRecords":1}"#), &partition, &no_dates), None);
    }

    #[test]
    fn reasons_name_the_input_and_the_versions() {
        let mut changes = DateChanges::default();
        changes.add(ChangeKind::Added, 14);
        changes.add(ChangeKind::Added, 12);
        changes.add(ChangeKind::Removed, 15);
        assert_eq!(changes.reasons("usage"), vec!["late rows in usage v12..v14", "rows deleted from usage v15"]);
    }
}
