//! Earlier outputs as history, so that a nightly run reads one day of input.
//!
//! Spend spikes compare a day with the 7 before it, budget burn sums the month to date and the
//! recommendations read per-minute demand over their lookback. Every run records the dates it
//! wrote in the ledger output `computed_dates`, with the price version it used. A later run
//! takes the history days the ledger covers (at the same price version) from the outputs that
//! hold them: `daily_spend` as `spend_history`, `minute_demand` as `demand_history`. The raw
//! inputs are read from the first history day the ledger lacks, so with a complete ledger only
//! the window's own days (and a day of payload slack) are scanned. Without a usage table, with
//! `[engine] history_from_outputs = false`, or on the Spark path, all history comes from the
//! inputs and the two history tables are empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use deltalake::arrow::array::{Array, Date32Array};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::datafusion::datasource::TableProvider;
use deltalake::datafusion::prelude::SessionContext;

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::inputs::{self, empty_table, register_table};
use crate::sql_params::{SqlParams, history_start};
use crate::window::{RunWindow, date_of_date32};

/// Name of the earlier `daily_spend` rows the queries read.
pub const SPEND_HISTORY: &str = "spend_history";
/// Name of the earlier `minute_demand` rows the queries read.
pub const DEMAND_HISTORY: &str = "demand_history";
/// The ledger output: one row per date a run wrote, with its price version.
pub const LEDGER: &str = "computed_dates";

/// The columns of `daily_spend` that `spend_history` is read for.
pub fn spend_history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("usage_date", DataType::Date32, true),
        Field::new("team", DataType::Utf8, true),
        Field::new("cost_usd", DataType::Decimal128(38, 12), true),
        Field::new("requests", DataType::Int64, true),
    ]))
}

/// The columns of `minute_demand` that `demand_history` is read for.
pub fn demand_history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("usage_date", DataType::Date32, true),
        Field::new("endpoint_name", DataType::Utf8, true),
        Field::new("requester", DataType::Utf8, true),
        Field::new("minute", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("calls", DataType::Int64, true),
        Field::new("tokens", DataType::Int64, true),
        Field::new("rate_limited", DataType::Int64, true),
    ]))
}

/// Where a run's history came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HistorySource {
    /// The first history date the outputs need.
    pub history_from: NaiveDate,
    /// The first date read from the inputs; the days before it came from earlier outputs.
    pub inputs_from: NaiveDate,
}

/// Registers `spend_history` and `demand_history` on `ctx` and sets the first date the inputs
/// are read from in `params` (`${inputs_from}`). `params` must hold the run's price version.
pub async fn register(
    ctx: &SessionContext,
    job: &JobConfig,
    window: &RunWindow,
    params: &mut SqlParams,
) -> Result<HistorySource> {
    let history_from = history_start(window, &job.settings);
    let inputs_from = match reusable_outputs(ctx, job, window, params, history_from).await? {
        Some((inputs_from, spend, demand)) => {
            tracing::info!(
                "history {history_from} to {} from earlier outputs (computed_dates); inputs read from {inputs_from}",
                inputs_from - Duration::days(1)
            );
            register_table(ctx, SPEND_HISTORY, spend)?;
            register_table(ctx, DEMAND_HISTORY, demand)?;
            inputs_from
        }
        None => {
            register_empty(ctx)?;
            history_from
        }
    };
    params.set_inputs_from(inputs_from);
    Ok(HistorySource { history_from, inputs_from })
}

/// Registers empty history tables (everything is read from the inputs).
pub fn register_empty(ctx: &SessionContext) -> Result<()> {
    register_table(ctx, SPEND_HISTORY, Arc::new(empty_table(SPEND_HISTORY, spend_history_schema())?))?;
    register_table(ctx, DEMAND_HISTORY, Arc::new(empty_table(DEMAND_HISTORY, demand_history_schema())?))
}

type Reuse = (NaiveDate, Arc<dyn TableProvider>, Arc<dyn TableProvider>);

/// When earlier outputs cover a prefix of the history: the first date to read from the inputs
/// and the two output tables. `None` when all history comes from the inputs.
async fn reusable_outputs(
    ctx: &SessionContext,
    job: &JobConfig,
    window: &RunWindow,
    params: &SqlParams,
    history_from: NaiveDate,
) -> Result<Option<Reuse>> {
    if job.usage.is_none() || !job.settings.engine.history_from_outputs || history_from >= window.from {
        return Ok(None);
    }
    let Some(ledger) = open_output(ctx, job, LEDGER).await? else {
        return Ok(None);
    };
    let covered = covered_dates(ctx, ledger, params, history_from, window.from).await?;
    let mut inputs_from = history_from;
    while inputs_from < window.from && covered.contains(&inputs_from) {
        inputs_from += Duration::days(1);
    }
    if inputs_from == history_from {
        return Ok(None);
    }
    let (Some(spend), Some(demand)) =
        (open_output(ctx, job, "daily_spend").await?, open_output(ctx, job, "minute_demand").await?)
    else {
        tracing::warn!("computed_dates lists dates but daily_spend or minute_demand is missing: reading all history");
        return Ok(None);
    };
    Ok(Some((inputs_from, spend, demand)))
}

/// The dates in `[from, until)` the ledger lists with the run's price version.
async fn covered_dates(
    ctx: &SessionContext,
    ledger: Arc<dyn TableProvider>,
    params: &SqlParams,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<BTreeSet<NaiveDate>> {
    // Dates outside [from, until) are filtered out by the query.
    let scratch_name = "computed_dates_ledger";
    register_table(ctx, scratch_name, ledger)?;
    let sql = params.render(
        LEDGER,
        &format!(
            "SELECT DISTINCT usage_date FROM {scratch_name} \
             WHERE price_version = ${{price_version}} AND usage_date >= DATE '{from}' AND usage_date < DATE '{until}'"
        ),
    )?;
    let frame = ctx.sql(&sql).await.map_err(|e| Error::query(LEDGER, e))?;
    let batches = crate::queries::execute(ctx, LEDGER, frame).await?;
    ctx.deregister_table(scratch_name).map_err(|e| Error::query(LEDGER, e))?;
    let mut dates = BTreeSet::new();
    for batch in &batches {
        let column = batch.column(0);
        let Some(days) = column.as_any().downcast_ref::<Date32Array>() else {
            return Err(Error::Output {
                table: LEDGER.into(),
                location: String::new(),
                message: format!("usage_date has type {}, expected DATE", column.data_type()),
            });
        };
        dates.extend(days.iter().flatten().map(date_of_date32));
    }
    Ok(dates)
}

/// The output table `name` as a provider; `None` when no such table exists yet.
async fn open_output(ctx: &SessionContext, job: &JobConfig, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
    let location = job.output.child(name);
    let unreadable = |message: String| Error::Output { table: name.into(), location: location.to_string(), message };
    let table = crate::storage::open_table_for_write(&location, &job.storage_options)
        .await
        .map_err(|e| unreadable(crate::storage::describe_delta_error(&e)))?;
    if table.version().is_none() {
        return Ok(None);
    }
    inputs::provider_of(ctx, name, &location, &table).await.map(Some)
}
