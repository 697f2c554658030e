//! A grouping that does not spill its groups: the final phase of an aggregation run bucket by
//! bucket.
//!
//! Grouping tens of millions of request ids (the per-request token categories, the duplicate
//! counts of data_quality) needs more memory than the budget leaves, and DataFusion's grouping
//! then sorts its groups to disk and merges them back, which costs several times the grouping
//! itself. [`GraceAggregateExec`] replaces an aggregation's final phase: it first reads the
//! partial phase's rows to the end, writing each to one of `buckets` spill files by a hash of
//! its group keys (every group lands in one bucket), then runs the original final phase over
//! one bucket per lane at a time, whose groups fit in memory.

use std::fmt;
use std::sync::Arc;

use deltalake::datafusion::common::tree_node::TreeNodeRecursion;
use deltalake::datafusion::error::Result;
use deltalake::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake::datafusion::physical_expr::{Distribution, PhysicalExpr, PhysicalExprRef};
use deltalake::datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use deltalake::datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};
use deltalake::datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use tokio::sync::OnceCell;

use crate::engine::grace_buckets::{SplitInput, lane_batches, lane_properties, split_turn};

/// The final phase of an aggregation, run bucket by bucket; see the module documentation.
#[derive(Debug)]
pub struct GraceAggregateExec {
    /// The final phase each bucket runs (its child is the whole input; each bucket's copy
    /// reads that bucket's spill file instead).
    aggregate: Arc<dyn ExecutionPlan>,
    /// The input's group keys, by which its rows are split.
    keys: Vec<PhysicalExprRef>,
    buckets: usize,
    lanes: usize,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    split: Arc<OnceCell<Arc<SplitInput>>>,
}

impl GraceAggregateExec {
    /// The keys by which `aggregate`'s input rows can be split into buckets: those of the
    /// final phase of a grouping by plain keys (whose input must be hash-partitioned by them);
    /// `None` for any other aggregation.
    pub fn bucket_keys(aggregate: &AggregateExec) -> Option<Vec<PhysicalExprRef>> {
        let final_phase =
            matches!(aggregate.mode(), AggregateMode::FinalPartitioned | AggregateMode::SinglePartitioned);
        if !final_phase || aggregate.group_expr().has_grouping_set() {
            return None;
        }
        match aggregate.input_distribution_requirements().into_per_child().into_iter().next() {
            Some(Distribution::KeyPartitioned(keys)) => Some(keys),
            _ => None,
        }
    }

    /// `aggregate` run in `buckets` buckets split by `keys` (from [`Self::bucket_keys`]),
    /// `lanes` at a time.
    pub fn new(aggregate: Arc<dyn ExecutionPlan>, keys: Vec<PhysicalExprRef>, buckets: usize, lanes: usize) -> Self {
        let (buckets, lanes, properties) = lane_properties(aggregate.schema(), buckets, lanes);
        GraceAggregateExec {
            aggregate,
            keys,
            buckets,
            lanes,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
            split: Arc::new(OnceCell::new()),
        }
    }

    fn input(&self) -> &Arc<dyn ExecutionPlan> {
        self.aggregate.children()[0]
    }
}

impl DisplayAs for GraceAggregateExec {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GraceAggregateExec: buckets={}, lanes={}, ", self.buckets, self.lanes)?;
        self.aggregate.fmt_as(format, f)
    }
}

impl ExecutionPlan for GraceAggregateExec {
    fn name(&self) -> &str {
        "GraceAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.aggregate.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = self.aggregate.clone().with_new_children(children)?;
        Ok(Arc::new(Self::new(aggregate, self.keys.clone(), self.buckets, self.lanes)))
    }

    #[allow(deprecated)]
    fn execute(&self, lane: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let (input, keys, split, metrics) =
            (self.input().clone(), self.keys.clone(), self.split.clone(), self.metrics.clone());
        let buckets = self.buckets;
        let split_context = context.clone();
        let split = async move {
            let split_input = || async {
                let _turn = split_turn(&split_context, &[&input]).await?;
                SplitInput::split(&input, keys, buckets, &split_context, &metrics).await.map(Arc::new)
            };
            split.get_or_try_init(split_input).await.cloned()
        };
        let aggregate = self.aggregate.clone();
        let run_bucket = move |split: &SplitInput, bucket| {
            aggregate.clone().with_new_children(vec![split.bucket_source(bucket)?])?.execute(0, context.clone())
        };
        Ok(lane_batches(self.schema(), lane, self.lanes, buckets, split, run_bucket))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
