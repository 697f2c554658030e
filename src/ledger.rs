//! The ledger `computed_dates`: one row per date that runs have written, saying which run
//! wrote it, whether that run finished, and from what it was computed.
//!
//! A run writes its dates' rows twice: `started` (or `partial` for `run --only`) before its
//! first output commit, and `finished` after its last. A date whose row is not `finished` may
//! hold outputs of different runs (a run killed between two table commits, or `--only`): the
//! next run recomputes it (see [`crate::plan`]). A `finished` row records the price version,
//! the teams file's version, the mode, and the version of every input table the date's outputs
//! are current with. A later run that finds no input change for the date advances those
//! versions (and `checked_at`); one that finds a change recomputes the date. Only `finished`
//! rows whose provenance matches the run's are read back as history ([`crate::history`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deltalake::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::config::JobConfig;
use crate::error::{Error, Result};
pub use crate::inputs::InputVersions;
use crate::storage;
use crate::window::{date_of_date32, date32};

/// The ledger's table name (a folder under the output location).
pub const LEDGER: &str = "computed_dates";

/// Where a date's outputs stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateStatus {
    /// A run began committing the date's outputs and has not recorded that it finished: the
    /// outputs may come from different runs.
    Started,
    /// Every output of the date was written by one run, which finished.
    Finished,
    /// `run --only` rewrote some outputs of the date: the others come from earlier runs.
    Partial,
}

impl DateStatus {
    /// The value in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            DateStatus::Started => "started",
            DateStatus::Finished => "finished",
            DateStatus::Partial => "partial",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "started" => Some(DateStatus::Started),
            "finished" => Some(DateStatus::Finished),
            "partial" => Some(DateStatus::Partial),
            _ => None,
        }
    }
}

/// What a date's outputs were computed with, besides the input tables' rows. History is read
/// back only from dates computed with the same provenance as the run's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The price list's version (`prices::price_version`).
    pub price_version: String,
    /// The teams file's version (a content hash, `none` without one).
    pub teams_version: String,
    /// `usage_table` or `payload_only`.
    pub mode: String,
    /// The version of the query definitions (`outputs::definitions_version`).
    pub definitions_version: String,
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// The date.
    pub date: NaiveDate,
    /// Where its outputs stand.
    pub status: DateStatus,
    /// The run that computed its outputs (`<UTC time>-<host>-<pid>`).
    pub run_id: String,
    /// The outputs that run wrote for the date, comma-separated.
    pub outputs: String,
    /// Why the run computed the date (the requested window, late rows, an unfinished run...).
    pub reason: String,
    /// What the outputs were computed with.
    pub provenance: Provenance,
    /// The input versions the date's outputs are current with.
    pub versions: InputVersions,
    /// Whether the run wrote the rate-limit recommendations as of this date (its window's last
    /// date); a recomputation of the date writes them again.
    pub recommendations_as_of: bool,
    /// When its outputs were computed.
    pub computed_at: DateTime<Utc>,
    /// When a run last confirmed that no input row of the date changed (`computed_at` at first).
    pub checked_at: DateTime<Utc>,
}

/// The ledger as read at the start of a run: the newest row of each date.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    entries: BTreeMap<NaiveDate, LedgerEntry>,
    /// The table was written by an earlier version of this tool: the next write replaces it.
    legacy: bool,
    /// The table has no version columns of the new AI Gateway's tables (written before they
    /// were inputs): its rows are read with those versions unknown, and the next write
    /// rewrites the whole table in the current schema, keeping every row.
    narrow: bool,
}

impl Ledger {
    /// A ledger of these entries.
    pub fn of(entries: impl IntoIterator<Item = LedgerEntry>) -> Self {
        Ledger { entries: entries.into_iter().map(|e| (e.date, e)).collect(), legacy: false, narrow: false }
    }

    /// The entry of `date`.
    pub fn get(&self, date: NaiveDate) -> Option<&LedgerEntry> {
        self.entries.get(&date)
    }

    /// Every entry, by date.
    pub fn entries(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.values()
    }

    /// Reads the ledger under the job's output location; empty when there is none yet. A
    /// ledger written by an earlier version of this tool (without `status`) vouches for
    /// nothing: it reads as empty, and the next ledger commit replaces it.
    pub async fn read(job: &JobConfig) -> Result<Self> {
        let location = job.output.child(LEDGER);
        let unreadable =
            |message: String| Error::Output { table: LEDGER.into(), location: location.to_string(), message };
        let table = crate::storage::open_table_for_write(&location, &job.storage_options)
            .await
            .map_err(|e| unreadable(crate::storage::describe_delta_error(&e)))?;
        if table.version().is_none() {
            return Ok(Ledger::default());
        }
        let ctx = SessionContext::new();
        let provider = storage::provider_of(&ctx, LEDGER, &location, &table).await?;
        if provider.schema().field_with_name("definitions_version").is_err() {
            tracing::info!("{location} was written by an earlier version: it vouches for no date");
            return Ok(Ledger { entries: BTreeMap::new(), legacy: true, narrow: false });
        }
        let narrow = provider.schema().field_with_name("gateway_usage_version").is_err();
        ctx.register_table(LEDGER, provider).map_err(|e| Error::query(LEDGER, e))?;
        let batches = ctx
            .sql(&format!("SELECT * FROM {LEDGER}"))
            .await
            .map_err(|e| Error::query(LEDGER, e))?
            .collect()
            .await
            .map_err(|e| Error::query(LEDGER, e))?;
        let mut entries = Vec::new();
        for batch in &batches {
            entries.extend(entries_of(batch).map_err(unreadable)?);
        }
        Ok(Ledger { narrow, ..Ledger::of(entries) })
    }
}

/// Replaces the ledger rows of the `entries`' dates with them, in one commit; returns the
/// version written. A ledger of an earlier version of this tool is replaced whole (one without
/// the new AI Gateway's version columns keeps its rows, rewritten in the current schema).
pub async fn write(job: &JobConfig, ledger: &Ledger, entries: &[LedgerEntry], run_id: &str) -> Result<i64> {
    let location = job.output.child(LEDGER);
    let dates: Vec<NaiveDate> = entries.iter().map(|e| e.date).collect();
    let rows = if ledger.narrow {
        // Every row, in the current schema: the earlier dates' rows and these.
        let mut all = ledger.entries.clone();
        all.extend(entries.iter().map(|e| (e.date, e.clone())));
        vec![batch(&all.into_values().collect::<Vec<_>>())?]
    } else {
        vec![batch(entries)?]
    };
    if !ledger.legacy && !ledger.narrow {
        let options = &job.storage_options;
        let source = MemTable::try_new(schema(), vec![rows]).map_err(|e| Error::Output {
            table: LEDGER.into(),
            location: location.to_string(),
            message: e.to_string(),
        })?;
        return storage::replace_partitions(&location, LEDGER, Arc::new(source), "usage_date", &dates, run_id, options)
            .await;
    }
    let failed = |message: String| Error::Output { table: LEDGER.into(), location: location.to_string(), message };
    let table = crate::storage::open_table_for_write(&location, &job.storage_options)
        .await
        .map_err(|e| failed(crate::storage::describe_delta_error(&e)))?;
    let written = table
        .write(rows)
        .with_save_mode(deltalake::protocol::SaveMode::Overwrite)
        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
        .with_partition_columns(["usage_date"])
        .await
        .map_err(|e| failed(crate::storage::describe_delta_error(&e)))?;
    Ok(written.version().map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)))
}

/// The ledger's Delta schema; `usage_date` is the partition column.
pub fn schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("usage_date", DataType::Date32, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("run_id", DataType::Utf8, false),
        Field::new("outputs", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("price_version", DataType::Utf8, false),
        Field::new("teams_version", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("definitions_version", DataType::Utf8, false),
        Field::new("usage_version", DataType::Int64, true),
        Field::new("payload_version", DataType::Int64, true),
        Field::new("traces_version", DataType::Int64, true),
        Field::new("served_entities_version", DataType::Int64, true),
        Field::new("gateway_usage_version", DataType::Int64, true),
        Field::new("gateway_payload_version", DataType::Int64, true),
        Field::new("recommendations_as_of", DataType::Boolean, false),
        Field::new("computed_at", timestamp.clone(), false),
        Field::new("checked_at", timestamp, false),
    ]))
}

/// The entries as one batch of [`schema`], in date order.
pub fn batch(entries: &[LedgerEntry]) -> Result<RecordBatch> {
    let strings = |f: &dyn Fn(&LedgerEntry) -> &str| -> ArrayRef {
        Arc::new(entries.iter().map(|e| Some(f(e))).collect::<StringArray>())
    };
    let versions = |f: &dyn Fn(&InputVersions) -> Option<i64>| -> ArrayRef {
        Arc::new(entries.iter().map(|e| f(&e.versions)).collect::<Int64Array>())
    };
    let times = |f: &dyn Fn(&LedgerEntry) -> DateTime<Utc>| -> ArrayRef {
        Arc::new(
            entries
                .iter()
                .map(|e| Some(f(e).timestamp_micros()))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(entries.iter().map(|e| Some(date32(e.date))).collect::<Date32Array>()),
        strings(&|e| e.status.as_str()),
        strings(&|e| &e.run_id),
        strings(&|e| &e.outputs),
        strings(&|e| &e.reason),
        strings(&|e| &e.provenance.price_version),
        strings(&|e| &e.provenance.teams_version),
        strings(&|e| &e.provenance.mode),
        strings(&|e| &e.provenance.definitions_version),
        versions(&|v| v.usage),
        versions(&|v| v.payload),
        versions(&|v| v.traces),
        versions(&|v| v.served_entities),
        versions(&|v| v.gateway_usage),
        versions(&|v| v.gateway_payload),
        Arc::new(entries.iter().map(|e| Some(e.recommendations_as_of)).collect::<BooleanArray>()),
        times(&|e| e.computed_at),
        times(&|e| e.checked_at),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::query(LEDGER, e.into()))
}

/// The entries of a batch read back from the ledger table.
fn entries_of(batch: &RecordBatch) -> std::result::Result<Vec<LedgerEntry>, String> {
    let column = |name: &str, data_type: &DataType| -> std::result::Result<ArrayRef, String> {
        let index = batch.schema().index_of(name).map_err(|_| format!("the ledger has no column `{name}`"))?;
        cast(batch.column(index), data_type).map_err(|e| format!("column `{name}`: {e}"))
    };
    let text = |name: &str| -> std::result::Result<Vec<Option<String>>, String> {
        let array = column(name, &DataType::Utf8)?;
        Ok(array.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
    };
    let numbers = |name: &str| -> std::result::Result<Vec<Option<i64>>, String> {
        let array = column(name, &DataType::Int64)?;
        Ok(array.as_primitive::<Int64Type>().iter().collect())
    };
    let micros = |name: &str| -> std::result::Result<Vec<Option<i64>>, String> {
        let array = column(name, &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?;
        Ok(array.as_primitive::<deltalake::arrow::datatypes::TimestampMicrosecondType>().iter().collect())
    };
    let dates: Vec<Option<i32>> =
        column("usage_date", &DataType::Date32)?.as_primitive::<Date32Type>().iter().collect();
    let (status, run_id, outputs, reason) = (text("status")?, text("run_id")?, text("outputs")?, text("reason")?);
    let (price, teams, mode) = (text("price_version")?, text("teams_version")?, text("mode")?);
    let definitions = text("definitions_version")?;
    let (usage, payload, traces, served) = (
        numbers("usage_version")?,
        numbers("payload_version")?,
        numbers("traces_version")?,
        numbers("served_entities_version")?,
    );
    // Absent from a ledger written before the new AI Gateway's tables were inputs.
    let optional_numbers = |name: &str| -> std::result::Result<Vec<Option<i64>>, String> {
        if batch.schema().index_of(name).is_err() {
            return Ok(vec![None; batch.num_rows()]);
        }
        numbers(name)
    };
    let (gateway_usage, gateway_payload) =
        (optional_numbers("gateway_usage_version")?, optional_numbers("gateway_payload_version")?);
    let (computed_at, checked_at) = (micros("computed_at")?, micros("checked_at")?);
    let as_of: Vec<Option<bool>> = column("recommendations_as_of", &DataType::Boolean)?.as_boolean().iter().collect();
    let time = |value: Option<i64>| value.and_then(DateTime::from_timestamp_micros).unwrap_or_default();
    let mut entries = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let Some(date) = dates[row].map(date_of_date32) else { continue };
        let status = status[row].as_deref().and_then(DateStatus::parse).ok_or_else(|| {
            format!("the row of {date} has status {:?}; expected started, finished or partial", status[row])
        })?;
        let owned = |values: &[Option<String>]| values[row].clone().unwrap_or_default();
        entries.push(LedgerEntry {
            date,
            status,
            run_id: owned(&run_id),
            outputs: owned(&outputs),
            reason: owned(&reason),
            provenance: Provenance {
                price_version: owned(&price),
                teams_version: owned(&teams),
                mode: owned(&mode),
                definitions_version: owned(&definitions),
            },
            versions: InputVersions {
                usage: usage[row],
                payload: payload[row],
                traces: traces[row],
                served_entities: served[row],
                gateway_usage: gateway_usage[row],
                gateway_payload: gateway_payload[row],
            },
            recommendations_as_of: as_of[row].unwrap_or(false),
            computed_at: time(computed_at[row]),
            checked_at: time(checked_at[row]),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(date: &str, status: DateStatus) -> LedgerEntry {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        LedgerEntry {
            date: date.parse().unwrap(),
            status,
            run_id: "run".into(),
            outputs: "daily_spend".into(),
            reason: "requested window".into(),
            provenance: Provenance {
                price_version: "sha256:1".into(),
                teams_version: "none".into(),
                mode: "m".into(),
                definitions_version: "sha256:2".into(),
            },
            versions: InputVersions {
                usage: Some(3),
                payload: None,
                traces: Some(0),
                served_entities: Some(1),
                gateway_usage: Some(4),
                gateway_payload: None,
            },
            recommendations_as_of: true,
            computed_at: at,
            checked_at: at,
        }
    }

    #[test]
    fn entries_survive_a_round_trip_through_a_batch() {
        let entries = vec![entry("2026-11-01", DateStatus::Finished), entry("2026-11-02", DateStatus::Started)];
        let batch = batch(&entries).unwrap();
        assert_eq!(entries_of(&batch).unwrap(), entries);
    }

    /// A ledger written before the new AI Gateway's tables were inputs reads with their
    /// versions unknown.
    #[test]
    fn a_ledger_without_the_gateway_version_columns_reads_them_as_unknown() {
        let entries = vec![entry("2026-11-01", DateStatus::Finished)];
        let wide = batch(&entries).unwrap();
        let keep: Vec<usize> =
            (0..wide.num_columns()).filter(|i| !wide.schema().field(*i).name().starts_with("gateway_")).collect();
        let narrow = wide.project(&keep).unwrap();
        let read = entries_of(&narrow).unwrap();
        let mut expected = entries[0].clone();
        expected.versions.gateway_usage = None;
        assert_eq!(read, vec![expected]);
    }

    #[test]
    fn an_unknown_status_is_an_error_naming_the_date() {
        let mut batch = batch(&[entry("2026-11-01", DateStatus::Partial)]).unwrap();
        let mut columns = batch.columns().to_vec();
        columns[1] = Arc::new(StringArray::from(vec!["halfway"]));
        batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
        let message = entries_of(&batch).unwrap_err();
        assert!(message.contains("2026-11-01") && message.contains("halfway"), "{message}");
    }
}
