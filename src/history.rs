//! Earlier outputs as history, so that a nightly run reads one day of input.
//!
//! Spend spikes compare a day with the 7 before it, budget burn sums the month to date, the
//! spend forecast reads the 28 days before each window day per team and per endpoint, and the
//! recommendations read per-minute demand over their lookback. The run plan
//! ([`crate::plan`]) decides, for each computation (segment), from which date the raw inputs
//! are read (`${inputs_from}`); the history days before it come from outputs the queries read
//! as `spend_history` (rows of `daily_spend`) and `demand_history` (rows of `minute_demand`):
//! - the stored rows of dates the `computed_dates` ledger vouches for: finished by one run,
//!   with the run's price version, teams file and mode, and no input change since;
//! - the rows an earlier segment of the same run computed (recomputed late dates), which are
//!   not committed yet.
//!
//! Without a usage table, with `[engine] history_from_outputs = false`, or on the Spark path,
//! all history comes from the inputs and the two history tables are empty.
//!
//! The alerts' lifecycle reads a third table, `alert_history`: the alert records of the day
//! before the segment (those an earlier segment of the run computed, or else the stored
//! `alerts` rows of that date), so that an incident firing at the end of the previous window
//! keeps its id, or resolves. It is the record of what was alerted, not a recomputation, so it is
//! read whatever the ledger says of that day (and also without a usage table or with
//! `history_from_outputs = false`); on the Spark path it is empty unless the runner fills it.

use std::sync::Arc;

use chrono::NaiveDate;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::datafusion::logical_expr::cast;
use deltalake::datafusion::prelude::{DataFrame, SessionContext, col, lit};

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::inputs::{empty_table, register_table};
use crate::outputs::{self, ComputedOutput, OutputTable};
use crate::plan::Segment;
use crate::segment::SegmentOutputs;
use crate::window::date_value;

/// Name of the earlier `daily_spend` rows the queries read.
pub const SPEND_HISTORY: &str = "spend_history";
/// Name of the earlier `minute_demand` rows the queries read.
pub const DEMAND_HISTORY: &str = "demand_history";
/// Name of the previous day's `alerts` rows the alerts query reads.
pub const ALERT_HISTORY: &str = "alert_history";

/// The columns of `alerts` that `alert_history` is read for.
pub fn alert_history_schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("usage_date", DataType::Date32, true),
        Field::new("alert_id", DataType::Utf8, true),
        Field::new("rule", DataType::Utf8, true),
        Field::new("severity", DataType::Utf8, true),
        Field::new("endpoint_name", DataType::Utf8, true),
        Field::new("scope", DataType::Utf8, true),
        Field::new("scope_value", DataType::Utf8, true),
        Field::new("window_start", timestamp.clone(), true),
        Field::new("window_end", timestamp.clone(), true),
        Field::new("status", DataType::Utf8, true),
        Field::new("incident_id", DataType::Utf8, true),
        Field::new("incident_start", timestamp, true),
        Field::new("paged", DataType::Boolean, true),
    ]))
}

/// The columns of `daily_spend` that `spend_history` is read for.
pub fn spend_history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("usage_date", DataType::Date32, true),
        Field::new("endpoint_name", DataType::Utf8, true),
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

/// Where a computation's history came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HistorySource {
    /// The first history date the outputs need.
    pub history_from: NaiveDate,
    /// The first date read from the inputs; the days before it came from earlier outputs.
    pub inputs_from: NaiveDate,
}

impl HistorySource {
    /// The history of a segment.
    pub fn of(segment: &Segment) -> Self {
        HistorySource { history_from: segment.history_from, inputs_from: segment.inputs_from }
    }
}

/// Registers `spend_history` and `demand_history` on `ctx` for `segment`: the stored rows of its
/// trusted history dates and the rows `earlier` segments of the run computed; and
/// `alert_history`, the alert records of the day before the segment.
pub async fn register(
    ctx: &SessionContext,
    job: &JobConfig,
    segment: &Segment,
    earlier: &[SegmentOutputs],
) -> Result<()> {
    let previous = segment.window.from - chrono::Duration::days(1);
    let computed_by = earlier.iter().find(|s| s.window.from <= previous && previous <= s.window.to);
    let earlier: Vec<&ComputedOutput> = earlier.iter().flat_map(|s| s.outputs.iter()).collect();
    register_alert_history(ctx, job, previous, computed_by).await?;
    let sources = [
        (SPEND_HISTORY, &outputs::DAILY_SPEND, spend_history_schema()),
        (DEMAND_HISTORY, &outputs::MINUTE_DEMAND, demand_history_schema()),
    ];
    for (name, output, schema) in sources {
        if !segment.reads_history_from_outputs() {
            register_table(ctx, name, Arc::new(empty_table(name, schema)?))?;
            continue;
        }
        let frame = history_rows(ctx, job, segment, output, &schema, &earlier).await?;
        ctx.register_table(name, frame.into_view()).map_err(|e| Error::query(name, e))?;
    }
    Ok(())
}

/// Registers empty history tables (everything is read from the inputs, no earlier alerts).
pub fn register_empty(ctx: &SessionContext) -> Result<()> {
    register_table(ctx, SPEND_HISTORY, Arc::new(empty_table(SPEND_HISTORY, spend_history_schema())?))?;
    register_table(ctx, DEMAND_HISTORY, Arc::new(empty_table(DEMAND_HISTORY, demand_history_schema())?))?;
    register_table(ctx, ALERT_HISTORY, Arc::new(empty_table(ALERT_HISTORY, alert_history_schema())?))
}

/// Registers `alert_history`: the `alerts` rows of `previous`, from the segment of this run that
/// computed that date (`computed_by`), or else from the stored `alerts` table. Empty when
/// neither has them, or when the stored table predates the lifecycle columns (another release).
async fn register_alert_history(
    ctx: &SessionContext,
    job: &JobConfig,
    previous: NaiveDate,
    computed_by: Option<&SegmentOutputs>,
) -> Result<()> {
    let name = ALERT_HISTORY;
    let schema = alert_history_schema();
    let columns: Vec<_> =
        schema.fields().iter().map(|f| cast(col(f.name()), f.data_type().clone()).alias(f.name())).collect();
    let day = lit(date_value(previous));
    if let Some(segment) = computed_by {
        let Some(alerts) = segment.outputs.iter().find(|o| o.table.name == outputs::ALERTS.name) else {
            return register_table(ctx, name, Arc::new(empty_table(name, schema)?));
        };
        let frame = ctx
            .read_table(alerts.rows.table()?)
            .and_then(|f| f.filter(col("usage_date").eq(day)))
            .and_then(|f| f.select(columns))
            .map_err(|e| Error::query(name, e))?;
        return ctx.register_table(name, frame.into_view()).map(|_| ()).map_err(|e| Error::query(name, e));
    }
    let stored = outputs::open_stored(ctx, job, outputs::ALERTS.name).await?;
    let usable = stored.filter(|table| {
        let found = table.schema();
        let complete = schema.fields().iter().all(|f| found.field_with_name(f.name()).is_ok());
        if !complete {
            tracing::info!("the stored alerts table has no lifecycle columns (an earlier release): no alert history");
        }
        complete
    });
    let Some(stored) = usable else {
        return register_table(ctx, name, Arc::new(empty_table(name, schema)?));
    };
    let frame = ctx
        .read_table(stored)
        .and_then(|f| f.filter(col("usage_date").eq(day)))
        .and_then(|f| f.select(columns))
        .map_err(|e| Error::query(name, e))?;
    ctx.register_table(name, frame.into_view()).map(|_| ()).map_err(|e| Error::query(name, e))
}

/// The history rows of one output: stored rows of the segment's trusted dates, then the rows
/// of earlier segments, both narrowed to `schema`'s columns.
async fn history_rows(
    ctx: &SessionContext,
    job: &JobConfig,
    segment: &Segment,
    output: &OutputTable,
    schema: &SchemaRef,
    earlier: &[&ComputedOutput],
) -> Result<DataFrame> {
    let name = output.name;
    let columns: Vec<_> =
        schema.fields().iter().map(|f| cast(col(f.name()), f.data_type().clone()).alias(f.name())).collect();
    let mut frame = {
        let empty = Arc::new(empty_table(name, schema.clone())?);
        ctx.read_table(empty).map_err(|e| Error::query(name, e))?
    };
    if !segment.stored_history.is_empty() {
        let stored = outputs::open_stored(ctx, job, name).await?.ok_or_else(|| Error::Output {
            table: name.into(),
            location: job.output.child(name).to_string(),
            message: "the ledger vouches for dates of this table, but it is gone".into(),
        })?;
        let dates = segment.stored_history.iter().map(|d| lit(date_value(*d))).collect();
        let rows = ctx
            .read_table(stored)
            .and_then(|f| f.filter(col("usage_date").in_list(dates, false)))
            .and_then(|f| f.select(columns.clone()))
            .map_err(|e| Error::query(name, e))?;
        frame = frame.union(rows).map_err(|e| Error::query(name, e))?;
    }
    let mut computed = earlier.iter().filter(|c| c.table.name == name);
    if let Some(first) = computed.next() {
        let mut rows = first.rows.clone();
        computed.for_each(|c| rows.append(c.rows.clone()));
        let rows = ctx.read_table(rows.table()?).and_then(|f| f.select(columns)).map_err(|e| Error::query(name, e))?;
        frame = frame.union(rows).map_err(|e| Error::query(name, e))?;
    }
    Ok(frame)
}
