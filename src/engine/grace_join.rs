//! A hash join that spills: a grace hash join built around DataFusion's own hash join.
//!
//! DataFusion 55's hash join holds its whole build side in memory and cannot spill
//! (apache/datafusion#24768). [`GraceHashJoinExec`] first reads both inputs to the end, writing
//! each row to one of `buckets` spill files per side, chosen by a hash of its join keys; rows
//! that can match share a bucket. It then joins the buckets one by one (on `lanes` bucket
//! joins at a time, one per output partition) with an ordinary in-memory `HashJoinExec` whose
//! build side is that bucket's share of the left input. Every equi-join type decomposes this
//! way, so each bucket's join gives exactly the rows the whole join gives for its keys.
//!
//! Memory: while splitting, one batch per input partition; while joining, `lanes` hash tables
//! of about a `buckets`-th of the build side each (reserved in the memory pool as usual).
//! Disk: both inputs once, in the runtime's spill folder (deleted when the files drop).

use std::fmt;
use std::sync::Arc;

use deltalake::datafusion::common::tree_node::TreeNodeRecursion;
use deltalake::datafusion::error::Result;
use deltalake::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake::datafusion::physical_expr::PhysicalExpr;
use deltalake::datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use deltalake::datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};
use deltalake::datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use tokio::sync::OnceCell;

use crate::engine::grace_buckets::{SplitInput, lane_batches, lane_properties, split_turn};

/// A hash join whose inputs are split into buckets on disk and joined bucket by bucket; see the
/// module documentation.
#[derive(Debug)]
pub struct GraceHashJoinExec {
    /// The join each bucket runs (its children are the whole inputs; each bucket's copy reads
    /// that bucket's spill files instead).
    join: Arc<HashJoinExec>,
    buckets: usize,
    lanes: usize,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// Both inputs split into buckets, written once by whichever lane starts first.
    split: Arc<OnceCell<Arc<SplitInputs>>>,
}

impl GraceHashJoinExec {
    /// The join `join` does, with its inputs split into `buckets` buckets and `lanes` of them
    /// joined at a time (both at least 1).
    pub fn new(join: Arc<HashJoinExec>, buckets: usize, lanes: usize) -> Self {
        let (buckets, lanes, properties) = lane_properties(join.schema(), buckets, lanes);
        GraceHashJoinExec {
            join,
            buckets,
            lanes,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
            split: Arc::new(OnceCell::new()),
        }
    }
}

impl DisplayAs for GraceHashJoinExec {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GraceHashJoinExec: buckets={}, lanes={}, ", self.buckets, self.lanes)?;
        self.join.fmt_as(format, f)
    }
}

impl ExecutionPlan for GraceHashJoinExec {
    fn name(&self) -> &str {
        "GraceHashJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.join.left(), self.join.right()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.join.apply_expressions(f)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let join = self.join.builder().with_new_children(children)?.reset_state().build()?;
        Ok(Arc::new(GraceHashJoinExec::new(Arc::new(join), self.buckets, self.lanes)))
    }

    fn execute(&self, lane: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let (join, split, metrics) = (self.join.clone(), self.split.clone(), self.metrics.clone());
        let buckets = self.buckets;
        let split_context = context.clone();
        let split = async move {
            let inputs = split.get_or_try_init(|| split_inputs(join.clone(), buckets, split_context, metrics));
            inputs.await.cloned()
        };
        let join = self.join.clone();
        let run_bucket = move |inputs: &SplitInputs, bucket| join_bucket(&join, inputs, bucket, context.clone());
        Ok(lane_batches(self.schema(), lane, self.lanes, buckets, split, run_bucket))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Both inputs' rows by bucket.
#[derive(Debug)]
struct SplitInputs {
    left: SplitInput,
    right: SplitInput,
}

/// Splits both inputs of `join` into buckets by their join keys.
async fn split_inputs(
    join: Arc<HashJoinExec>,
    buckets: usize,
    context: Arc<TaskContext>,
    metrics: ExecutionPlanMetricsSet,
) -> Result<Arc<SplitInputs>> {
    let _turn = split_turn(&context, &[join.left(), join.right()]).await?;
    let (left_keys, right_keys): (Vec<_>, Vec<_>) = join.on().iter().cloned().unzip();
    let left = SplitInput::split(join.left(), left_keys, buckets, &context, &metrics);
    let right = SplitInput::split(join.right(), right_keys, buckets, &context, &metrics);
    let (left, right) = futures::try_join!(left, right)?;
    Ok(Arc::new(SplitInputs { left, right }))
}

/// The join of one bucket: `join` over that bucket's rows of each input, its build side
/// collected into one hash table.
fn join_bucket(
    join: &HashJoinExec,
    inputs: &SplitInputs,
    bucket: usize,
    context: Arc<TaskContext>,
) -> Result<SendableRecordBatchStream> {
    let left = inputs.left.bucket_source(bucket)?;
    let right = inputs.right.bucket_source(bucket)?;
    let join = join
        .builder()
        .with_new_children(vec![left, right])?
        .with_partition_mode(PartitionMode::CollectLeft)
        .reset_state()
        .build()?;
    join.execute(0, context)
}
