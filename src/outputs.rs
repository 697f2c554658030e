//! The output tables: computing each one in full, then replacing the window's dates in one
//! Delta commit per table.
//!
//! Every output is computed before anything is written, so a failure while reading or
//! computing leaves all outputs at their previous version. Each table's commit is atomic:
//! readers see either the old or the new rows of the window, never a mix.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::SessionContext;

use crate::config::JobConfig;
use crate::engine::row_files::{RowFileWriter, RowFiles};
use crate::engine::work_folder::WorkFolder;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::queries::{self, Query};
use crate::sql_params::SqlParams;
use crate::storage;

/// Which partitions of an output a run replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// Partitioned by `usage_date`; a run replaces every date of its window.
    WindowDates,
    /// Partitioned by `as_of_date`; a run replaces the partition of its last date.
    AsOfDate,
}

impl Partitioning {
    /// The partition column.
    pub fn column(self) -> &'static str {
        match self {
            Partitioning::WindowDates => "usage_date",
            Partitioning::AsOfDate => "as_of_date",
        }
    }
}

/// An output table: its one definition, which `run`, `history`, `spark-sql` and the bundle's
/// registration step (`jobs/sql/register_outputs.sql`, checked by a test) all read.
#[derive(Debug)]
pub struct OutputTable {
    /// Table name (the folder under the output location), also the file stem of its query.
    pub name: &'static str,
    /// The query computing the window's rows.
    pub query: &'static Query,
    /// Partition column and replaced range.
    pub partitioning: Partitioning,
    /// Written only when the job has a traces table.
    pub needs_traces: bool,
    /// Outputs its query reads: computed first, in the same run; one the run does not write
    /// (the job lacks its input) is computed over the empty input and only read.
    pub reads: &'static [&'static OutputTable],
}

/// The daily spend table.
pub const DAILY_SPEND: OutputTable = OutputTable {
    name: "daily_spend",
    query: &queries::DAILY_SPEND,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The hourly error and latency table.
pub const HOURLY_ERRORS: OutputTable = OutputTable {
    name: "hourly_errors",
    query: &queries::HOURLY_ERRORS,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The month-end spend forecast per team and per endpoint (budget_burn reads it).
pub const SPEND_FORECAST: OutputTable = OutputTable {
    name: "spend_forecast",
    query: &queries::SPEND_FORECAST,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The alerts table (both gateways' rules).
pub const ALERTS: OutputTable = OutputTable {
    name: "alerts",
    query: &queries::ALERTS,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[
        &DATA_QUALITY,
        &SPEND_FORECAST,
        &crate::ai_gateway::AI_GATEWAY_HOURLY_ERRORS,
        &crate::ai_gateway::FALLBACKS,
    ],
};
/// The rate-limit recommendations table.
pub const RATE_LIMIT_RECOMMENDATIONS: OutputTable = OutputTable {
    name: "rate_limit_recommendations",
    query: &queries::RATE_LIMIT_RECOMMENDATIONS,
    partitioning: Partitioning::AsOfDate,
    needs_traces: false,
    reads: &[],
};

/// The data-quality table.
pub const DATA_QUALITY: OutputTable = OutputTable {
    name: "data_quality",
    query: &queries::DATA_QUALITY,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};

/// The trace coverage table.
pub const TRACE_COVERAGE: OutputTable = OutputTable {
    name: "trace_coverage",
    query: &queries::TRACE_COVERAGE,
    partitioning: Partitioning::WindowDates,
    needs_traces: true,
    reads: &[],
};
/// The per-trace cost table.
pub const TRACE_SPEND: OutputTable = OutputTable {
    name: "trace_spend",
    query: &queries::TRACE_SPEND,
    partitioning: Partitioning::WindowDates,
    needs_traces: true,
    reads: &[],
};
/// The token reconciliation table.
pub const RECONCILIATION: OutputTable = OutputTable {
    name: "reconciliation",
    query: &queries::RECONCILIATION,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};

/// The per-minute demand table (the recommendations' input, read back as history).
pub const MINUTE_DEMAND: OutputTable = OutputTable {
    name: "minute_demand",
    query: &queries::MINUTE_DEMAND,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The FinOps FOCUS 1.2 cost and usage rows (daily_spend in FOCUS columns, split by tags).
pub const FOCUS_COSTS: OutputTable = OutputTable {
    name: "focus_costs",
    query: &queries::FOCUS_COSTS,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};

/// What each entity's tokens would have cost priced as another entity or a second price list.
pub const PRICING_WHAT_IF: OutputTable = OutputTable {
    name: "pricing_what_if",
    query: &queries::PRICING_WHAT_IF,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// What prompt caching saved, net of the cache-write premium.
pub const CACHE_SAVINGS: OutputTable = OutputTable {
    name: "cache_savings",
    query: &queries::CACHE_SAVINGS,
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};

/// The serving-endpoint gateway's outputs a run writes, in order (then [`all_tables`]).
pub const OUTPUT_TABLES: [&OutputTable; 13] = [
    &DAILY_SPEND,
    &HOURLY_ERRORS,
    &RECONCILIATION,
    &DATA_QUALITY,
    &TRACE_COVERAGE,
    &TRACE_SPEND,
    &SPEND_FORECAST,
    &ALERTS,
    &MINUTE_DEMAND,
    &RATE_LIMIT_RECOMMENDATIONS,
    &FOCUS_COSTS,
    &PRICING_WHAT_IF,
    &CACHE_SAVINGS,
];

/// Every output a run can write, in run order: [`OUTPUT_TABLES`] (the serving-endpoint
/// gateway's), then the new AI Gateway's ([`crate::ai_gateway::OUTPUTS`]).
pub fn all_tables() -> impl Iterator<Item = &'static OutputTable> {
    OUTPUT_TABLES.into_iter().chain(crate::ai_gateway::OUTPUTS)
}

/// The version of the query definitions: `sha256:` and 16 hex digits over every view and
/// output query of both modes. Outputs computed by other definitions (another release) are
/// never read back as history.
pub fn definitions_version() -> String {
    let mut text = String::new();
    let views = queries::view_order(true).into_iter().chain(queries::view_order(false));
    let views = views.chain([&crate::ai_gateway::GATEWAY_USAGE_VIEW]).chain(queries::RECOMMENDATION_VIEWS.iter());
    for query in views.chain(all_tables().map(|t| t.query)) {
        text.push_str(query.name);
        text.push('\n');
        text.push_str(query.sql);
        text.push('\n');
    }
    crate::prices::price_version(text.as_bytes())
}

/// Which outputs a run computes and writes.
#[derive(Debug, Clone, Default)]
pub enum OutputSelection {
    /// Every output: the nightly run, and the only run that marks dates `finished` in the
    /// `computed_dates` ledger.
    #[default]
    All,
    /// The named outputs and the outputs they read (alerts read data_quality and spend_forecast), in run order.
    Only(Vec<&'static OutputTable>),
}

impl OutputSelection {
    /// The selection `run --only` names; an empty list selects every output. The ledger
    /// `computed_dates` cannot be named: every run writes it.
    pub fn named(names: &[String]) -> Result<Self> {
        if names.is_empty() {
            return Ok(OutputSelection::All);
        }
        let mut named: Vec<&'static OutputTable> = Vec::with_capacity(names.len() + 1);
        for name in names {
            let table = all_tables().find(|table| table.name == name.as_str()).ok_or_else(|| {
                let known: Vec<&str> = all_tables().map(|table| table.name).collect();
                let hint = if name == crate::ledger::LEDGER {
                    " (computed_dates is the ledger: every run writes it)"
                } else {
                    ""
                };
                Error::Usage(format!("--only: there is no output table `{name}`{hint} (outputs: {})", known.join(", ")))
            })?;
            named.push(table);
            named.extend(table.reads.iter().copied());
        }
        let only = all_tables().filter(|table| named.iter().any(|n| n.name == table.name)).collect();
        Ok(OutputSelection::Only(only))
    }

    /// Whether the run computes and writes `table`.
    pub fn includes(&self, table: &OutputTable) -> bool {
        match self {
            OutputSelection::All => true,
            // By name: a constant's address may differ between the places that name it.
            OutputSelection::Only(tables) => tables.iter().any(|t| t.name == table.name),
        }
    }
}

/// An output of the selection that a run of the job does not write, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedOutput {
    /// The output's name.
    pub table: &'static str,
    /// Why the job cannot write it (the input it lacks).
    pub reason: String,
}

/// Why a run of `job` does not write `table`; `None` when it does. The serving-endpoint
/// gateway's outputs need its usage or payload table, the trace outputs a traces table, the new
/// AI Gateway's outputs its usage table.
pub fn skip_reason(job: &JobConfig, table: &OutputTable) -> Option<String> {
    let beta = crate::ai_gateway::needs_gateway_usage(table);
    // alerts also has the new gateway's rules.
    if !beta && !job.has_serving_endpoint_tables() && table.name != ALERTS.name {
        return Some(
            "the job names no serving-endpoint gateway table (inputs.usage or inputs.payload): it reads only the \
             new AI Gateway's tables"
                .into(),
        );
    }
    if table.needs_traces && job.traces.is_none() {
        return Some("the job has no traces table (inputs.traces)".into());
    }
    if beta && !crate::ai_gateway::is_written(job, table) {
        return Some("the job has no new AI Gateway usage table (inputs.gateway_usage)".into());
    }
    None
}

/// The outputs a run of `selection` computes for `job`, in run order: those without a
/// [`skip_reason`].
pub fn selected(job: &JobConfig, selection: &OutputSelection) -> Vec<&'static OutputTable> {
    all_tables().filter(|t| selection.includes(t) && skip_reason(job, t).is_none()).collect()
}

/// The outputs of `selection` a run of `job` does not write, with the reasons, in run order;
/// the new AI Gateway's outputs are no part of a job without its usage table and not listed.
pub fn skipped(job: &JobConfig, selection: &OutputSelection) -> Vec<SkippedOutput> {
    all_tables()
        .filter(|t| selection.includes(t))
        .filter(|t| job.gateway_usage.is_some() || !crate::ai_gateway::needs_gateway_usage(t))
        .filter_map(|t| skip_reason(job, t).map(|reason| SkippedOutput { table: t.name, reason }))
        .collect()
}

/// The names of [`selected`].
pub fn selected_names(job: &JobConfig, selection: &OutputSelection) -> Vec<&'static str> {
    selected(job, selection).into_iter().map(|t| t.name).collect()
}

/// The outputs read back as history.
pub const HISTORY_TABLES: [&OutputTable; 2] = [&DAILY_SPEND, &MINUTE_DEMAND];

/// Whether every output read back as history exists under the job's output location.
pub async fn history_tables_exist(job: &JobConfig) -> Result<bool> {
    let ctx = SessionContext::new();
    for table in HISTORY_TABLES {
        if open_stored(&ctx, job, table.name).await?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The dates among `among` for which stored rate-limit recommendations exist (as of them).
pub async fn stored_as_of_dates(
    job: &JobConfig,
    among: &[chrono::NaiveDate],
) -> Result<std::collections::BTreeSet<chrono::NaiveDate>> {
    let ctx = SessionContext::new();
    let table = &RATE_LIMIT_RECOMMENDATIONS;
    if among.is_empty() {
        return Ok(Default::default());
    }
    let Some(stored) = open_stored(&ctx, job, table.name).await? else {
        return Ok(Default::default());
    };
    let dates = crate::columns::distinct_dates(&ctx, stored, table.partitioning.column(), among).await?;
    Ok(dates.into_iter().collect())
}

/// The stored output table `name` as a provider on `ctx`; `None` when no such table exists yet.
pub async fn open_stored(
    ctx: &SessionContext,
    job: &JobConfig,
    name: &str,
) -> Result<Option<Arc<dyn deltalake::datafusion::datasource::TableProvider>>> {
    let location = job.output.child(name);
    let unreadable = |message: String| Error::Output { table: name.into(), location: location.to_string(), message };
    let table = storage::open_table_for_write(&location, &job.storage_options)
        .await
        .map_err(|e| unreadable(storage::describe_delta_error(&e)))?;
    if table.version().is_none() {
        return Ok(None);
    }
    storage::provider_of(ctx, name, &location, &table).await.map(Some)
}

/// An output's rows for the window, computed but not yet written: in files on local disk
/// ([`RowFiles`]), outside the memory the run's queries hold.
#[derive(Debug, Clone)]
pub struct ComputedOutput {
    /// Which output.
    pub table: &'static OutputTable,
    /// Its rows, in the query's order, with Delta-friendly types.
    pub rows: RowFiles,
}

impl ComputedOutput {
    /// Makes the rows readable by later queries of the run as the table `<output name>`.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        let name = self.table.name;
        ctx.register_table(name, self.rows.table()?).map(|_| ()).map_err(|e| Error::query(name, e))
    }
}

/// What one commit did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WrittenOutput {
    /// Table name.
    pub table: String,
    /// Rows written for the window.
    pub rows: usize,
    /// The Delta version created.
    pub version: i64,
}

/// Runs an output's query and normalises its column types for Delta, streaming its rows to a
/// file as they come.
pub async fn compute(ctx: &SessionContext, table: &'static OutputTable, params: &SqlParams) -> Result<ComputedOutput> {
    let folder = WorkFolder::of(ctx)?;
    let mut file: Option<(SchemaRef, RowFileWriter)> = None;
    let query_schema = queries::for_each_batch(ctx, table.query, params, |query_schema, batch| {
        let (schema, mut writer) = match file.take() {
            Some(open) => open,
            None => {
                let schema = delta_schema(query_schema);
                let writer = RowFileWriter::create(&schema, folder.clone())?;
                (schema, writer)
            }
        };
        let conformed = conform(&batch, &schema).map_err(|e| Error::query(table.name, e.into()))?;
        writer.write(&conformed)?;
        file = Some((schema, writer));
        Ok(())
    })
    .await?;
    let rows = match file {
        Some((_, writer)) => writer.finish()?,
        None => RowFiles::empty(delta_schema(&query_schema)),
    };
    Ok(ComputedOutput { table, rows })
}

/// Replaces the `dates` partitions of the output table with `computed` (the rows of every
/// computation of the run), in one commit, streaming them from their files. Dates without
/// rows end up empty; other dates are untouched. The commit's metadata names the run.
pub async fn commit(
    computed: ComputedOutput,
    output_root: &Location,
    dates: &[chrono::NaiveDate],
    run_id: &str,
    options: &HashMap<String, String>,
) -> Result<WrittenOutput> {
    let name = computed.table.name;
    let rows = computed.rows.rows();
    let version = storage::replace_partitions(
        &output_root.child(name),
        name,
        computed.rows.table()?,
        computed.table.partitioning.column(),
        dates,
        run_id,
        options,
    )
    .await?;
    Ok(WrittenOutput { table: name.to_string(), rows, version })
}

/// The schema written to Delta: plain Utf8 strings (DataFusion may produce views) and
/// microsecond UTC timestamps (Delta's TIMESTAMP).
fn delta_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 => field.as_ref().clone().with_data_type(DataType::Utf8),
            DataType::Timestamp(_, _) => field.as_ref().clone().with_data_type(DataType::Timestamp(
                deltalake::arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into()),
            )),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Casts a batch's columns to `schema`'s types.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, deltalake::arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| cast(column, field.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundle's registration step registers exactly the serving-endpoint outputs and the
    /// ledger (not yet the new AI Gateway's: the bundle does not read its tables).
    #[test]
    fn the_bundle_registers_every_output_table() {
        let sql = include_str!("../jobs/sql/register_outputs.sql");
        let mut registered: Vec<&str> =
            sql.split("'{table}', '").skip(1).filter_map(|rest| rest.split('\'').next()).collect();
        registered.sort_unstable();
        let mut defined: Vec<&str> = OUTPUT_TABLES.iter().map(|t| t.name).chain([crate::ledger::LEDGER]).collect();
        defined.sort_unstable();
        assert_eq!(registered, defined);
    }
}
