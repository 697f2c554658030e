//! Splitting an input into buckets on disk by a hash of some of its columns, and reading the
//! buckets back: the common part of [`crate::engine::grace_join`] and [`crate::engine::grace_aggregate`].
//!
//! Rows with equal keys land in the same bucket, so a join or a grouping on those keys can run
//! bucket by bucket, each bucket small enough for memory. The files are DataFusion spill files
//! (Arrow IPC, the session's spill compression) in the runtime's spill folder, deleted when
//! the last reference to them drops.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use deltalake::arrow::array::UInt32Array;
use deltalake::arrow::compute::BatchCoalescer;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::common::hash_utils::{RandomState, create_hashes};
use deltalake::datafusion::error::{DataFusionError, Result};
use deltalake::datafusion::execution::{SendableRecordBatchStream, SpillFile, TaskContext};
use deltalake::datafusion::physical_expr::{EquivalenceProperties, PhysicalExprRef};
use deltalake::datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use deltalake::datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, SpillMetrics};
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use deltalake::datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties, SpillManager,
};
use futures::{StreamExt, TryStreamExt, stream};

/// The seed of the bucket hash: unlike the hash join's, the grouping's and the repartitioning's
/// own seeds, so that the rows of one bucket still spread over the whole of its hash table.
const BUCKET_HASH: RandomState = RandomState::with_seed(0x6761_7465_7761_7921);

/// One input's rows by bucket: `files[bucket]` (`None` for a bucket without rows).
pub(crate) struct SplitInput {
    files: Vec<Option<Arc<dyn SpillFile>>>,
    spill: SpillManager,
}

impl fmt::Debug for SplitInput {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SplitInput({} buckets)", self.files.len())
    }
}

impl SplitInput {
    /// Reads `input` to the end, every partition on its own task, writing each row to the
    /// spill file of its bucket (by the hash of `keys`, expressions over `input`'s rows). The
    /// partitions share one file per bucket, each behind a lock with a coalescer that gathers
    /// the bucket's rows into full-size batches.
    pub(crate) async fn split(
        input: &Arc<dyn ExecutionPlan>,
        keys: Vec<PhysicalExprRef>,
        buckets: usize,
        context: &Arc<TaskContext>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<SplitInput> {
        let started = std::time::Instant::now();
        let spill = SpillManager::new(context.runtime_env(), SpillMetrics::new(metrics, 0), input.schema())
            .with_compression_type(context.session_config().options().execution.spill_compression);
        let batch_size = context.session_config().batch_size();
        let writers = (0..buckets)
            .map(|_| {
                let file = spill.create_in_progress_file("grace bucket")?;
                Ok(Mutex::new((BatchCoalescer::new(input.schema(), batch_size), file)))
            })
            .collect::<Result<Vec<_>>>()?;
        let (writers, keys) = (Arc::new(writers), Arc::new(keys));
        let mut tasks = tokio::task::JoinSet::new();
        for partition in 0..input.output_partitioning().partition_count() {
            let mut stream = input.execute(partition, context.clone())?;
            let (writers, keys) = (writers.clone(), keys.clone());
            tasks.spawn(async move {
                let mut hashes = Vec::new();
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    for (bucket, rows) in bucket_rows(&batch, &keys, buckets, &mut hashes)?.into_iter().enumerate() {
                        if rows.is_empty() {
                            continue;
                        }
                        let mut writer = writers[bucket].lock().map_err(|_| poisoned())?;
                        let (coalescer, file) = &mut *writer;
                        coalescer.push_batch_with_indices(batch.clone(), &UInt32Array::from(rows))?;
                        while let Some(full) = coalescer.next_completed_batch() {
                            file.append_batch(&full)?;
                        }
                    }
                }
                Ok::<(), DataFusionError>(())
            });
        }
        // The first failure stops the split; dropping the set aborts the other partitions.
        while let Some(split) = tasks.join_next().await {
            split.map_err(|e| DataFusionError::External(Box::new(e)))??;
        }
        let writers = Arc::into_inner(writers).ok_or_else(poisoned)?;
        let mut files = Vec::with_capacity(buckets);
        for writer in writers {
            let (mut coalescer, mut file) = writer.into_inner().map_err(|_| poisoned())?;
            coalescer.finish_buffered_batch()?;
            while let Some(rest) = coalescer.next_completed_batch() {
                file.append_batch(&rest)?;
            }
            files.push(file.finish()?);
        }
        tracing::debug!("input split into {buckets} buckets in {:.1?}", started.elapsed());
        Ok(SplitInput { files, spill })
    }

    /// A one-partition plan reading this input's rows of `bucket`.
    pub(crate) fn bucket_source(&self, bucket: usize) -> Result<Arc<dyn ExecutionPlan>> {
        let files = self.files.get(bucket).cloned().flatten().into_iter().collect();
        let source = BucketSource { files, spill: self.spill.clone() };
        let schema = self.spill.schema().clone();
        Ok(Arc::new(StreamingTableExec::try_new(schema, vec![Arc::new(source)], None, [], false, None)?))
    }
}

/// The bucket and lane counts of a bucketed operator (at least one bucket, at most one lane
/// per bucket) and its plan properties: `lanes` output partitions of `schema`, known only
/// once every bucket ran.
pub(crate) fn lane_properties(schema: SchemaRef, buckets: usize, lanes: usize) -> (usize, usize, Arc<PlanProperties>) {
    let buckets = buckets.max(1);
    let lanes = lanes.clamp(1, buckets);
    let properties = PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(lanes),
        EmissionType::Final,
        Boundedness::Bounded,
    );
    (buckets, lanes, Arc::new(properties))
}

/// The output of one lane (output partition) of a bucketed operator: once `split` (shared by
/// the lanes, so it runs once) has written the buckets, the batches of `run_bucket` for the
/// lane's buckets `lane`, `lane + lanes`, ... one after the other.
pub(crate) fn lane_batches<S, F>(
    schema: SchemaRef,
    lane: usize,
    lanes: usize,
    buckets: usize,
    split: impl Future<Output = Result<Arc<S>>> + Send + 'static,
    run_bucket: F,
) -> SendableRecordBatchStream
where
    S: Send + Sync + 'static,
    F: Fn(&S, usize) -> Result<SendableRecordBatchStream> + Send + 'static,
{
    let batches = stream::once(async move {
        let split = split.await?;
        let bucket_batches = stream::iter((lane..buckets).step_by(lanes.max(1))).map(move |b| run_bucket(&split, b));
        Ok::<_, DataFusionError>(bucket_batches.try_flatten())
    })
    .try_flatten();
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}

/// The row numbers of `batch` that belong to each bucket.
fn bucket_rows(
    batch: &RecordBatch,
    keys: &[PhysicalExprRef],
    buckets: usize,
    hashes: &mut Vec<u64>,
) -> Result<Vec<Vec<u32>>> {
    let rows = batch.num_rows();
    let keys = keys.iter().map(|key| key.evaluate(batch)?.into_array(rows)).collect::<Result<Vec<_>>>()?;
    hashes.clear();
    hashes.resize(rows, 0);
    create_hashes(&keys, &BUCKET_HASH, hashes)?;
    let mut by_bucket = vec![Vec::with_capacity(rows / buckets + 1); buckets];
    for (row, hash) in hashes.iter().enumerate() {
        // The hash scaled to 0..buckets (its high bits, evenly).
        let bucket = ((u128::from(*hash) * buckets as u128) >> 64) as usize;
        by_bucket[bucket].push(row as u32);
    }
    Ok(by_bucket)
}

/// The error for a bucket writer left behind by a failed or panicked partition task.
fn poisoned() -> DataFusionError {
    DataFusionError::Internal("a partition task failed while writing a grace bucket".into())
}

/// The spill files of one bucket of one input, read one after the other.
struct BucketSource {
    files: Vec<Arc<dyn SpillFile>>,
    spill: SpillManager,
}

impl fmt::Debug for BucketSource {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "BucketSource({} files)", self.files.len())
    }
}

impl PartitionStream for BucketSource {
    fn schema(&self) -> &SchemaRef {
        self.spill.schema()
    }

    fn execute(&self, _context: Arc<TaskContext>) -> SendableRecordBatchStream {
        let spill = self.spill.clone();
        let batches =
            stream::iter(self.files.clone()).map(move |file| spill.read_spill_as_stream(file, None)).try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.spill.schema().clone(), batches))
    }
}
