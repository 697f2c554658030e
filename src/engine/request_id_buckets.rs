//! Joins and groupings on request ids that stay within the memory budget: run in buckets.
//! (A trace id counts as a request id here: there is about one trace per traced request.)
//!
//! DataFusion's hash join holds its whole build side in memory and cannot spill
//! (apache/datafusion#24768), so a join of two request-id sets (usage against payload or traces,
//! tens of millions of ids) fails a run whose budget it exceeds; a grouping by request id
//! spills, but sorting its groups to disk and merging them back costs several times the
//! grouping. Split into buckets by request id on disk and processed one bucket per lane at a
//! time ([`GraceHashJoinExec`], [`GraceAggregateExec`]), both complete in any budget at about
//! their in-memory speed.
//!
//! This physical optimizer rule runs right after DataFusion's join selection. It estimates each
//! request-id join's build side and each request-id grouping's groups as the rows their scans
//! read times the width of a row it holds ([`bytes_per_row`], from the schema; DataFusion's own
//! size estimates after filters and aggregations are off by far in both directions) and, when
//! one query's request-id hash tables would together pass `[engine] hash_join_limit_mib`
//! (default half the queries' pool, 3/8 of `memory_limit_mib`), runs the largest of them in
//! buckets, enough that their hash tables fit in what the others leave.
//! Joins and groupings on other keys (served entities, prices, teams, hours) are left alone.

use std::sync::Arc;

use deltalake::arrow::datatypes::{Schema, SchemaRef};
use deltalake::datafusion::common::config::ConfigOptions;
use deltalake::datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use deltalake::datafusion::error::Result;
use deltalake::datafusion::physical_expr::PhysicalExprRef;
use deltalake::datafusion::physical_expr::expressions::Column;
use deltalake::datafusion::physical_optimizer::PhysicalOptimizerRule;
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::physical_plan::aggregates::AggregateExec;
use deltalake::datafusion::physical_plan::joins::HashJoinExec;
use deltalake::datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

use crate::engine::grace_aggregate::GraceAggregateExec;
use crate::engine::grace_join::GraceHashJoinExec;

/// The rule; see the module documentation.
#[derive(Debug)]
pub struct RequestIdBuckets {
    limit_bytes: usize,
}

impl RequestIdBuckets {
    /// Keeps a query's request-id joins and groupings in memory while their hash tables
    /// together are estimated at most `limit_bytes`.
    pub fn new(limit_bytes: usize) -> Self {
        RequestIdBuckets { limit_bytes }
    }

    /// How many buckets each estimated build side (in plan order) is split into, `None` for
    /// those that stay hash joins: the largest (and those of unknown size) are split until the
    /// rest fit in the limit together; the split ones share what the rest leave (at least half
    /// the limit), each with `lanes` bucket hash tables in memory at a time.
    fn choose(&self, estimates: &[Option<usize>], lanes: usize) -> Vec<Option<usize>> {
        let mut split: Vec<bool> = estimates.iter().map(Option::is_none).collect();
        let mut kept: usize = estimates.iter().flatten().sum();
        let mut by_size: Vec<usize> = (0..estimates.len()).filter(|&i| estimates[i].is_some()).collect();
        by_size.sort_by_key(|&i| std::cmp::Reverse(estimates[i]));
        for i in by_size {
            if kept <= self.limit_bytes {
                break;
            }
            split[i] = true;
            kept -= estimates[i].unwrap_or(0);
        }
        let count = split.iter().filter(|&&s| s).count().max(1);
        let share = ((self.limit_bytes - kept).max(self.limit_bytes / 2) / count).max(1);
        let lanes = lanes.max(1);
        // Rounded up to a multiple of the lanes, so that the lanes finish together.
        let buckets = |estimate: Option<usize>| match estimate {
            Some(bytes) => bytes.saturating_mul(lanes).div_ceil(share).max(1).next_multiple_of(lanes).min(MAX_BUCKETS),
            None => UNKNOWN_SIZE_BUCKETS,
        };
        estimates.iter().zip(split).map(|(&estimate, split)| split.then(|| buckets(estimate))).collect()
    }
}

/// Buckets for a hash table of unknown size.
const UNKNOWN_SIZE_BUCKETS: usize = 16;

/// At most this many buckets (two open spill files each): past it, a bucket's hash table that
/// still does not fit stops the run with the memory error naming the settings.
const MAX_BUCKETS: usize = 64;

/// An operator this rule may run in buckets.
enum Candidate<'a> {
    /// A hash join matching request ids. (Not a null-aware anti join: it returns nothing when
    /// the build side holds a null anywhere, which no single bucket can know.)
    Join(&'a HashJoinExec),
    /// The final phase of a grouping by (among others) a request id, with the keys that
    /// split its input.
    Grouping(&'a AggregateExec, Vec<PhysicalExprRef>),
}

impl<'a> Candidate<'a> {
    fn of(plan: &'a Arc<dyn ExecutionPlan>) -> Option<Self> {
        if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
            return (!join.null_aware && joins_request_ids(join)).then_some(Candidate::Join(join));
        }
        let grouping = plan.downcast_ref::<AggregateExec>()?;
        let per_request = grouping.group_expr().expr().iter().any(|(_, name)| names_a_request(name));
        let keys = GraceAggregateExec::bucket_keys(grouping).filter(|_| per_request)?;
        Some(Candidate::Grouping(grouping, keys))
    }

    /// The input whose rows the operator's hash table holds.
    fn hashed_input(&self) -> &Arc<dyn ExecutionPlan> {
        match self {
            Candidate::Join(join) => join.left(),
            Candidate::Grouping(grouping, _) => grouping.input(),
        }
    }

    /// The columns of one hash-table row: a join's build side, a grouping's keys and
    /// accumulators (its output).
    fn hashed_schema(&self) -> SchemaRef {
        match self {
            Candidate::Join(join) => join.left().schema(),
            Candidate::Grouping(grouping, _) => grouping.schema(),
        }
    }

    /// The operator run in `buckets` buckets, `lanes` at a time.
    fn bucketed(&self, buckets: usize, lanes: usize) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(match self {
            Candidate::Join(join) => {
                Arc::new(GraceHashJoinExec::new(Arc::new(join.builder().build()?), buckets, lanes))
            }
            Candidate::Grouping(grouping, keys) => {
                let template: Arc<dyn ExecutionPlan> = Arc::new((*grouping).clone());
                Arc::new(GraceAggregateExec::new(template, keys.clone(), buckets, lanes))
            }
        })
    }
}

/// The estimated hash-table bytes of each candidate under `plan`, in post-order (the order of
/// `transform_up`).
fn estimate_hash_tables(plan: &Arc<dyn ExecutionPlan>, estimates: &mut Vec<Option<usize>>) {
    for child in plan.children() {
        estimate_hash_tables(child, estimates);
    }
    if let Some(candidate) = Candidate::of(plan) {
        let rows = rows_read(candidate.hashed_input().as_ref());
        let width = bytes_per_row(&candidate.hashed_schema());
        estimates.push(rows.map(|rows| rows.saturating_mul(width)));
    }
}

/// Rows a plan reads from its sources: the sum of its scans' row counts (an upper bound on what
/// filters, aggregations and windows above them produce). `None` when a scan has no count.
fn rows_read(plan: &dyn ExecutionPlan) -> Option<usize> {
    let children = plan.children();
    if children.is_empty() {
        let statistics = StatisticsContext::new().compute(plan, &StatisticsArgs::new()).ok()?;
        return statistics.num_rows.get_value().copied();
    }
    children.into_iter().try_fold(0usize, |sum, child| Some(sum.saturating_add(rows_read(child.as_ref())?)))
}

/// Whether a join matches requests by id (usage against payload or traces): the joins whose
/// inputs grow with the traffic, unlike those against served entities, prices, teams or
/// per-hour groups.
fn joins_request_ids(join: &HashJoinExec) -> bool {
    let schema = join.left().schema();
    join.on().iter().any(|(left, _)| {
        left.downcast_ref::<Column>().is_some_and(|column| names_a_request(schema.field(column.index()).name()))
    })
}

/// Whether a column holds ids with one value per request or so (request ids and trace ids),
/// whose hash tables grow with the traffic.
fn names_a_request(column: &str) -> bool {
    column.ends_with("request_id") || column.ends_with("trace_id")
}

/// Bytes a hash table holds per row of `schema`: each fixed-width column's width, each other
/// column (strings, their views, nested values) as a request id's 36 characters and view with
/// the batch's share of buffers, and the row's hash and table entries. Calibrated on two
/// measured build sides: 8.7M bare payload ids at 1.06 GB (122 bytes a row, estimated 128) and
/// 3.75M trace rows (trace id, state, experiment id, request id, a date, a time and a duration)
/// at 1.53 GB (408 bytes a row, estimated 388).
fn bytes_per_row(schema: &Schema) -> usize {
    let columns: usize = schema
        .fields()
        .iter()
        .map(|field| field.data_type().primitive_width().unwrap_or(BYTES_PER_VARIABLE_COLUMN))
        .sum();
    BYTES_PER_HASHED_ROW + columns
}

/// A variable-width column's bytes in a hash table's row (see [`bytes_per_row`]).
const BYTES_PER_VARIABLE_COLUMN: usize = 80;

/// A hash table's own bytes per row: its hash, its entry and its chain link, with the
/// allocator's slack (see [`bytes_per_row`]).
const BYTES_PER_HASHED_ROW: usize = 48;

impl PhysicalOptimizerRule for RequestIdBuckets {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        // Both passes visit the candidates in the same (post-)order.
        let mut estimates = Vec::new();
        estimate_hash_tables(&plan, &mut estimates);
        if estimates.is_empty() {
            return Ok(plan);
        }
        let lanes = config.execution.target_partitions;
        let buckets = self.choose(&estimates, lanes);
        tracing::debug!("request-id hash tables: {estimates:?} bytes, limit {}, buckets {buckets:?}", self.limit_bytes);
        let mut next = 0;
        plan.transform_up(|node| {
            let Some(candidate) = Candidate::of(&node) else { return Ok(Transformed::no(node)) };
            next += 1;
            let Some(buckets) = buckets.get(next - 1).copied().flatten() else { return Ok(Transformed::no(node)) };
            Ok(Transformed::yes(candidate.bucketed(buckets, lanes)?))
        })
        .data()
    }

    fn name(&self) -> &str {
        "request_id_buckets"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::util::pretty::pretty_format_batches;
    use deltalake::datafusion::physical_plan::{collect, displayable};

    use super::*;
    use crate::engine::session_within;
    use crate::settings::EngineSettings;

    #[test]
    fn a_row_is_as_wide_as_its_columns_with_strings_as_wide_as_a_request_id() {
        use deltalake::arrow::datatypes::{DataType, Field, TimeUnit};
        let field = |name: &str, data_type: DataType| Field::new(name, data_type, true);
        let bare_id = Schema::new(vec![field("databricks_request_id", DataType::Utf8View)]);
        assert_eq!(bytes_per_row(&bare_id), 128);
        let trace = Schema::new(vec![
            field("trace_id", DataType::Utf8View),
            field("usage_date", DataType::Date32),
            field("request_time", DataType::Timestamp(TimeUnit::Microsecond, None)),
            field("state", DataType::Utf8),
            field("execution_duration_ms", DataType::Int64),
            field("experiment_id", DataType::Utf8View),
            field("client_request_id", DataType::Utf8View),
        ]);
        assert_eq!(bytes_per_row(&trace), 48 + 4 * 80 + 4 + 8 + 8);
    }

    #[test]
    fn request_and_trace_ids_are_per_request_keys_names_and_teams_are_not() {
        assert!(
            ["databricks_request_id", "client_request_id", "request_id", "trace_id"].into_iter().all(names_a_request)
        );
        assert!(!["endpoint_name", "team", "served_entity_id", "session_id"].into_iter().any(names_a_request));
    }

    #[test]
    fn the_largest_and_unknown_joins_split_until_the_rest_fit() {
        let rule = RequestIdBuckets::new(100);
        assert_eq!(rule.choose(&[Some(60), Some(40)], 2), [None, None]);
        // 50 left for the split one: 60 bytes on 2 lanes at a time need 3 buckets, rounded up
        // to a multiple of the lanes.
        assert_eq!(rule.choose(&[Some(60), Some(50)], 2), [Some(4), None]);
        // Two split joins share the 70 the kept one leaves.
        assert_eq!(rule.choose(&[Some(30), None, Some(200)], 2), [None, Some(UNKNOWN_SIZE_BUCKETS), Some(12)]);
        assert_eq!(rule.choose(&[Some(101)], 4), [Some(8)]);
        assert_eq!(rule.choose(&[Some(101), Some(1)], 1), [Some(2), None]);
        assert_eq!(RequestIdBuckets::new(0).choose(&[Some(1 << 40)], 2), [Some(MAX_BUCKETS)]);
    }

    /// The rows of `sql` (sorted, as text) and its plan, in a session with `engine` and the
    /// in-memory tables `a` and `b` (whose sizes are known, so only a limit splits joins).
    async fn rows_and_plan(engine: &EngineSettings, sql: &str) -> (Vec<String>, String) {
        let ctx = session_within(engine).unwrap();
        // Duplicate, missing and NULL ids on both sides, in several input batches.
        for (table, modulo) in [("a", 700), ("b", 1100)] {
            let create = format!(
                "CREATE TABLE {table} AS SELECT CASE WHEN value % 9 = 0 THEN NULL \
                 ELSE CAST(value % {modulo} AS VARCHAR) END AS request_id, value AS {table}_value FROM range(3000)"
            );
            ctx.sql(&create).await.unwrap().collect().await.unwrap();
        }
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let text = displayable(plan.as_ref()).indent(true).to_string();
        let batches = collect(plan, ctx.task_ctx()).await.unwrap();
        let table = pretty_format_batches(&batches).unwrap().to_string();
        let mut rows: Vec<String> =
            table.lines().filter(|line| line.starts_with('|')).skip(1).map(String::from).collect();
        rows.sort();
        (rows, text)
    }

    /// Asserts that `sql` runs `exec` with no room for hash tables (and not by default), with
    /// the rows it gives by default.
    async fn assert_bucketed_gives_the_same_rows(sql: &str, exec: &str) -> Vec<String> {
        let grace = EngineSettings { hash_join_limit_mib: Some(0), ..Default::default() };
        let (expected, default_plan) = rows_and_plan(&EngineSettings::default(), sql).await;
        let (rows, bucketed_plan) = rows_and_plan(&grace, sql).await;
        assert!(!default_plan.contains(exec) && bucketed_plan.contains(exec), "{bucketed_plan}");
        assert_eq!(rows, expected, "{sql}");
        rows
    }

    #[tokio::test]
    async fn bucketed_joins_give_the_rows_of_one_hash_join_for_every_join_type() {
        for join in [
            "JOIN",
            "LEFT JOIN",
            "RIGHT JOIN",
            "FULL JOIN",
            "LEFT SEMI JOIN",
            "LEFT ANTI JOIN",
            "RIGHT SEMI JOIN",
            "RIGHT ANTI JOIN",
        ] {
            for filter in ["", " AND a.a_value % 5 <> b.b_value % 3"] {
                let columns = if join.contains("RIGHT S") || join.contains("RIGHT A") {
                    "b.*"
                } else if join.contains("LEFT S") || join.contains("LEFT A") {
                    "a.*"
                } else {
                    "*"
                };
                let sql = format!("SELECT {columns} FROM a {join} b ON a.request_id = b.request_id{filter}");
                let rows = assert_bucketed_gives_the_same_rows(&sql, "GraceHashJoinExec").await;
                assert!(!rows.is_empty() || join.contains("ANTI"), "{sql}");
            }
        }
    }

    #[tokio::test]
    async fn bucketed_operators_of_one_query_take_turns_to_split_and_finish() {
        // Two that read only scans (the anti join, the inner grouping) and one that reads a
        // bucketed grouping: with turns, none may wait on another forever.
        let sql = "SELECT 'matched' AS what, COUNT(*) AS n FROM \
                   (SELECT request_id, COUNT(*) AS copies FROM a GROUP BY request_id) g \
                   JOIN b ON g.request_id = b.request_id \
                   UNION ALL SELECT 'unmatched', COUNT(*) FROM a LEFT ANTI JOIN b ON a.request_id = b.request_id";
        let bucketed = assert_bucketed_gives_the_same_rows(sql, "GraceHashJoinExec");
        let rows = tokio::time::timeout(std::time::Duration::from_secs(60), bucketed).await.expect("no deadlock");
        assert_eq!(rows.len(), 2, "{rows:?}");
    }

    #[tokio::test]
    async fn a_split_waits_for_its_turn_unless_it_reads_a_bucketed_operator() {
        use crate::engine::grace_buckets::split_turn;
        use futures::FutureExt as _;
        let ctx = session_within(&EngineSettings { hash_join_limit_mib: Some(0), ..Default::default() }).unwrap();
        ctx.sql("CREATE TABLE a AS SELECT CAST(value AS VARCHAR) AS request_id FROM range(10)").await.unwrap();
        let plan = |sql: &'static str| {
            let ctx = ctx.clone();
            async move { ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap() }
        };
        let scan = plan("SELECT request_id FROM a").await;
        let bucketed = plan("SELECT request_id, COUNT(*) FROM a GROUP BY request_id").await;
        assert!(displayable(bucketed.as_ref()).indent(true).to_string().contains("GraceAggregateExec"));
        let task = ctx.task_ctx();
        let turn = split_turn(&task, &[&scan]).await.unwrap();
        assert!(turn.is_some());
        assert!(split_turn(&task, &[&scan]).now_or_never().is_none(), "a second split waits");
        let reader = split_turn(&task, &[&bucketed]).now_or_never();
        assert!(matches!(reader, Some(Ok(None))), "a reader of a bucketed operator does not wait");
        drop(turn);
        assert!(matches!(split_turn(&task, &[&scan]).now_or_never(), Some(Ok(Some(_)))));
    }

    #[tokio::test]
    async fn bucketed_groupings_give_the_groups_of_one_grouping() {
        for sql in [
            "SELECT request_id, COUNT(*), MAX(a_value), SUM(a_value % 7) FROM a GROUP BY request_id",
            "SELECT request_id, a_value % 3 AS k, COUNT(DISTINCT a_value % 11) FROM a GROUP BY request_id, a_value % 3",
            "SELECT n, COUNT(*) FROM (SELECT request_id, COUNT(*) AS n FROM a GROUP BY request_id) GROUP BY n",
        ] {
            assert_bucketed_gives_the_same_rows(sql, "GraceAggregateExec").await;
        }
    }
}
