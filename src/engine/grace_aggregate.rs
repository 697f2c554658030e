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

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use deltalake::arrow::compute::take;
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::common::tree_node::TreeNodeRecursion;
use deltalake::datafusion::common::utils::memory::get_record_batch_memory_size;
use deltalake::datafusion::error::{DataFusionError, Result};
use deltalake::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake::datafusion::physical_expr::{Distribution, PhysicalExpr, PhysicalExprRef};
use deltalake::datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use deltalake::datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt as _;
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
            let groups =
                aggregate.clone().with_new_children(vec![split.bucket_source(bucket)?])?.execute(0, context.clone())?;
            let schema = groups.schema();
            let owned = groups.map(|batch| batch.and_then(owned_buffers));
            Ok(Box::pin(RecordBatchStreamAdapter::new(schema, owned)) as SendableRecordBatchStream)
        };
        Ok(lane_batches(self.schema(), lane, self.lanes, buckets, split, run_bucket))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// `batch`, copied into buffers of its own when it is a slice of larger ones. A grouping emits
/// all of a bucket's groups as one batch and hands it out in slices of the session's batch
/// size, each holding the whole; the operators after it count a batch by the buffers it holds,
/// so each slice counted as the whole bucket (trace_spend's sort counted 3.65M rows as 2.5 GB
/// and spilled 146 times; docs/PERFORMANCE.md).
fn owned_buffers(batch: RecordBatch) -> Result<RecordBatch> {
    let held = get_record_batch_memory_size(&batch);
    let mut own = 0;
    for column in batch.columns() {
        own += column.to_data().get_slice_memory_size()?;
        // A string view's own size leaves out the strings, which sit in shared data buffers.
        if let Some(views) = column.as_string_view_opt() {
            own += views.total_bytes_len();
        } else if let Some(views) = column.as_binary_view_opt() {
            own += views.total_bytes_len();
        }
    }
    if held <= 2 * own {
        return Ok(batch);
    }
    let rows = u32::try_from(batch.num_rows())
        .map_err(|_| DataFusionError::Internal(format!("a batch of {} rows", batch.num_rows())))?;
    let all = UInt32Array::from_iter_values(0..rows);
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            let copy = take(column, &all, None)?;
            // A string view's copy still points into the old data buffers: copy those too.
            Ok(match copy.data_type() {
                DataType::Utf8View => Arc::new(copy.as_string_view().gc()) as ArrayRef,
                DataType::BinaryView => Arc::new(copy.as_binary_view().gc()) as ArrayRef,
                _ => copy,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{Int64Array, StringArray, StringViewArray};
    use deltalake::arrow::datatypes::{Field, Schema};

    fn groups(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("endpoint_name", DataType::Utf8View, false),
            Field::new("requests", DataType::Int64, false),
        ]));
        let ids: StringArray = (0..rows).map(|i| Some(format!("tr-{i:032}"))).collect();
        let names: StringViewArray = (0..rows).map(|i| Some(format!("endpoint-with-a-long-name-{}", i % 7))).collect();
        let counts = Int64Array::from_iter_values((0..rows).map(|i| i as i64));
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(names), Arc::new(counts)]).unwrap()
    }

    #[test]
    fn a_slice_of_a_bucket_is_copied_into_buffers_of_its_own() {
        let bucket = groups(80_000);
        let slice = bucket.slice(8_192, 8_192);
        let copy = owned_buffers(slice.clone()).unwrap();
        assert_eq!(copy, slice);
        let (held, own) = (get_record_batch_memory_size(&slice), get_record_batch_memory_size(&copy));
        assert!(own * 5 < held, "the copy holds {own} bytes, the slice {held}");
    }

    #[test]
    fn a_whole_batch_is_passed_on_as_it_is() {
        let batch = groups(8_192);
        let passed = owned_buffers(batch.clone()).unwrap();
        assert_eq!(passed.column(0).to_data().buffers()[1].as_ptr(), batch.column(0).to_data().buffers()[1].as_ptr());
    }
}
