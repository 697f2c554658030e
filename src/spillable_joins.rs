//! Joins that stay within the memory budget: large request-id hash joins become sort-merge joins.
//!
//! DataFusion's hash join holds its whole build side in memory and cannot spill
//! (apache/datafusion#24768), so a join of two request-id sets (usage against payload or traces,
//! tens of millions of ids) fails a run whose budget it exceeds. A sort-merge join sorts both
//! inputs with spilling sorts and streams them, so it completes in any budget, more slowly.
//!
//! This physical optimizer rule runs right after DataFusion's join selection. It estimates each
//! request-id join's build side as the rows its scans read times `BYTES_PER_REQUEST_ID`
//! (DataFusion's own size estimates after filters and aggregations are off by far in both
//! directions) and, when one query's request-id hash tables would together pass
//! `[engine] hash_join_limit_mib` (default half the budget), turns the largest of them into
//! sort-merge joins; the later rules add the partitioning and sorts those need. Joins against
//! small tables (served entities, prices, teams, per-hour groups) stay hash joins.

use std::sync::Arc;

use deltalake::datafusion::arrow::compute::SortOptions;
use deltalake::datafusion::common::config::ConfigOptions;
use deltalake::datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use deltalake::datafusion::error::Result;
use deltalake::datafusion::physical_expr::expressions::Column;
use deltalake::datafusion::physical_optimizer::PhysicalOptimizerRule;
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::physical_plan::joins::{HashJoinExec, SortMergeJoinExec};
use deltalake::datafusion::physical_plan::projection::ProjectionExec;
use deltalake::datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// The rule; see the module documentation.
#[derive(Debug)]
pub struct SpillableJoins {
    limit_bytes: usize,
}

impl SpillableJoins {
    /// Keeps a query's request-id hash joins while their build sides together are estimated
    /// at most `limit_bytes`.
    pub fn new(limit_bytes: usize) -> Self {
        SpillableJoins { limit_bytes }
    }

    /// Which of the estimated build sides (in plan order) become merge joins: the largest (and
    /// those of unknown size) until the rest fit in the limit together.
    fn choose(&self, estimates: &[Option<usize>]) -> Vec<bool> {
        let mut merge: Vec<bool> = estimates.iter().map(Option::is_none).collect();
        let mut kept: usize = estimates.iter().flatten().sum();
        let mut by_size: Vec<usize> = (0..estimates.len()).filter(|&i| estimates[i].is_some()).collect();
        by_size.sort_by_key(|&i| std::cmp::Reverse(estimates[i]));
        for i in by_size {
            if kept <= self.limit_bytes {
                break;
            }
            merge[i] = true;
            kept -= estimates[i].unwrap_or(0);
        }
        merge
    }
}

/// A hash join this rule may replace: one matching request ids on equalities alone. (Null-aware
/// anti joins have no sort-merge form, and DataFusion 55's sort-merge join declares a joined
/// column non-nullable while filling it with nulls for outer joins with a filter: ours is the
/// price-period join, whose build side is the small price list.)
fn candidate(plan: &Arc<dyn ExecutionPlan>) -> Option<&HashJoinExec> {
    let join = plan.downcast_ref::<HashJoinExec>()?;
    (!join.null_aware && join.filter().is_none() && joins_request_ids(join)).then_some(join)
}

/// The sort-merge join doing what `join` does, or `None` for a join type it does not support.
fn merge_join(join: &HashJoinExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Ok(merge) = SortMergeJoinExec::try_new(
        join.left().clone(),
        join.right().clone(),
        join.on().to_vec(),
        None,
        *join.join_type(),
        vec![SortOptions::default(); join.on().len()],
        join.null_equality(),
    ) else {
        return Ok(None);
    };
    let merge: Arc<dyn ExecutionPlan> = Arc::new(merge);
    let Some(projection) = &join.projection else { return Ok(Some(merge)) };
    let schema = merge.schema();
    let columns = projection.iter().map(|&index| {
        let name = schema.field(index).name().clone();
        (Arc::new(Column::new(&name, index)) as _, name)
    });
    Ok(Some(Arc::new(ProjectionExec::try_new(columns, merge)?)))
}

/// The estimated build-side bytes of each candidate join under `plan`, in post-order (the order
/// of `transform_up`).
fn estimate_build_sides(plan: &Arc<dyn ExecutionPlan>, estimates: &mut Vec<Option<usize>>) {
    for child in plan.children() {
        estimate_build_sides(child, estimates);
    }
    if let Some(join) = candidate(plan) {
        estimates.push(rows_read(join.left().as_ref()).map(|rows| rows.saturating_mul(BYTES_PER_REQUEST_ID)));
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
        left.downcast_ref::<Column>().is_some_and(|column| schema.field(column.index()).name().ends_with("request_id"))
    })
}

/// Bytes a hash join's build side holds per request id: 36 characters, their view, hashes and
/// table entries (8.7M payload ids measured at 1.06 GB).
const BYTES_PER_REQUEST_ID: usize = 128;

impl PhysicalOptimizerRule for SpillableJoins {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        // Both passes visit the joins in the same (post-)order.
        let mut estimates = Vec::new();
        estimate_build_sides(&plan, &mut estimates);
        if estimates.is_empty() {
            return Ok(plan);
        }
        let merge = self.choose(&estimates);
        tracing::debug!(
            "request-id joins: build sides {estimates:?} bytes, limit {}, merge {merge:?}",
            self.limit_bytes
        );
        let mut next = 0;
        plan.transform_up(|node| {
            let Some(join) = candidate(&node) else { return Ok(Transformed::no(node)) };
            next += 1;
            if !merge.get(next - 1).copied().unwrap_or(false) {
                return Ok(Transformed::no(node));
            }
            Ok(match merge_join(join)? {
                Some(merged) => Transformed::yes(merged),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "spillable_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_and_unknown_joins_merge_until_the_rest_fit() {
        let rule = SpillableJoins::new(100);
        assert_eq!(rule.choose(&[Some(60), Some(40)]), [false, false]);
        assert_eq!(rule.choose(&[Some(60), Some(50)]), [true, false]);
        assert_eq!(rule.choose(&[Some(30), None, Some(200)]), [false, true, true]);
        assert_eq!(rule.choose(&[Some(101)]), [true]);
    }
}
