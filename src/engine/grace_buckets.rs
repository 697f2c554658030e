//! Splitting an input into buckets on disk by a hash of some of its columns, and reading the
//! buckets back: the common part of [`crate::engine::grace_join`] and [`crate::engine::grace_aggregate`].
//!
//! Rows with equal keys land in the same bucket, so a join or a grouping on those keys can run
//! bucket by bucket, each bucket small enough for memory. The files are DataFusion spill files
//! (Arrow IPC, the session's spill compression) in the runtime's spill folder; each bucket's
//! files are deleted once that bucket has been read.
//!
//! Several bucketed operators of one query (data_quality has four) would otherwise split their
//! inputs at the same time and hold all their bucket files on disk at once: [`SplitTurns`] lets
//! one operator of a session split at a time, while the others wait or work through the
//! buckets they already split.

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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::grace_aggregate::GraceAggregateExec;
use crate::engine::grace_join::GraceHashJoinExec;

/// The seed of the bucket hash: unlike the hash join's, the grouping's and the repartitioning's
/// own seeds, so that the rows of one bucket still spread over the whole of its hash table.
const BUCKET_HASH: RandomState = RandomState::with_seed(0x6761_7465_7761_7921);

/// The session's turns at splitting an input into buckets (a session config extension): one
/// bucketed operator splits at a time, while those that split before it work through (and
/// delete) their buckets, so that not every operator's bucket files are on disk at once
/// (measured: a five-day 50M-request run's data_quality, four bucketed operators,
/// docs/PERFORMANCE.md, "2026-12-03 (evening)"). Only operators that read no other
/// bucketed operator take turns: their split reads plain scans and always finishes, so no
/// operator holding a turn ever waits for one waiting for it.
#[derive(Debug)]
pub struct SplitTurns(Arc<Semaphore>);

impl Default for SplitTurns {
    fn default() -> Self {
        SplitTurns(Arc::new(Semaphore::new(1)))
    }
}

/// Waits for the session's turn to split the input `children` of a bucketed operator, when it
/// takes turns (see [`SplitTurns`]); the turn lasts until the returned permit drops. No turn
/// (and no wait) in a session without [`SplitTurns`].
pub(crate) async fn split_turn(
    context: &TaskContext,
    children: &[&Arc<dyn ExecutionPlan>],
) -> Result<Option<OwnedSemaphorePermit>> {
    let Some(turns) = context.session_config().get_extension::<SplitTurns>() else { return Ok(None) };
    if children.iter().any(|child| reads_bucketed(child)) {
        return Ok(None);
    }
    let permit = turns.0.clone().acquire_owned().await;
    permit.map(Some).map_err(|e| DataFusionError::Internal(format!("waiting for a turn to split into buckets: {e}")))
}

/// Whether `plan` is or reads a bucketed operator.
fn reads_bucketed(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.downcast_ref::<GraceHashJoinExec>().is_some()
        || plan.downcast_ref::<GraceAggregateExec>().is_some()
        || plan.children().into_iter().any(reads_bucketed)
}

/// One input's rows by bucket, each bucket's file handed out once.
pub(crate) struct SplitInput {
    files: Mutex<Vec<BucketFile>>,
    spill: SpillManager,
}

/// One bucket's rows of one input.
enum BucketFile {
    /// The bucket has no rows.
    Empty,
    /// Its rows, not yet read.
    Written(Arc<dyn SpillFile>),
    /// Handed out to the bucket's operator (and deleted once that is done with it).
    Read,
}

impl fmt::Debug for SplitInput {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SplitInput({} buckets)", self.files.lock().map_or(0, |files| files.len()))
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
            files.push(file.finish()?.map_or(BucketFile::Empty, BucketFile::Written));
        }
        tracing::debug!("input split into {buckets} buckets in {:.1?}", started.elapsed());
        Ok(SplitInput { files: Mutex::new(files), spill })
    }

    /// A one-partition plan reading this input's rows of `bucket`, whose file is deleted when
    /// that plan and its stream drop. A bucket is handed out once: asking again is an error,
    /// not an empty bucket.
    pub(crate) fn bucket_source(&self, bucket: usize) -> Result<Arc<dyn ExecutionPlan>> {
        let taken = {
            let mut files = self.files.lock().map_err(|_| poisoned())?;
            let slot =
                files.get_mut(bucket).ok_or_else(|| DataFusionError::Internal(format!("no grace bucket {bucket}")))?;
            std::mem::replace(slot, BucketFile::Read)
        };
        let files = match taken {
            BucketFile::Empty => Vec::new(),
            BucketFile::Written(file) => vec![file],
            BucketFile::Read => {
                return Err(DataFusionError::Internal(format!("grace bucket {bucket} was read twice")));
            }
        };
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

#[cfg(test)]
mod tests {
    use deltalake::datafusion::physical_expr::expressions::col;
    use deltalake::datafusion::physical_plan::collect;

    use super::*;
    use crate::engine::session;

    #[tokio::test]
    async fn each_bucket_is_handed_out_once_and_its_file_deleted_once_read() {
        let ctx = session().unwrap();
        let sql = "SELECT CAST(value AS VARCHAR) AS request_id FROM range(5000)";
        let input = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let (context, metrics) = (ctx.task_ctx(), ExecutionPlanMetricsSet::new());
        let disk = context.runtime_env().disk_manager.clone();
        let keys = vec![col("request_id", &input.schema()).unwrap()];
        let split = SplitInput::split(&input, keys, 4, &context, &metrics).await.unwrap();
        let mut on_disk = disk.used_disk_space();
        assert!(on_disk > 0);
        let mut rows = 0;
        for bucket in 0..4 {
            let batches = collect(split.bucket_source(bucket).unwrap(), context.clone()).await.unwrap();
            rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            assert!(disk.used_disk_space() < on_disk, "bucket {bucket}'s file is deleted once read");
            on_disk = disk.used_disk_space();
        }
        assert_eq!((rows, on_disk), (5000, 0));
        let again = split.bucket_source(0).unwrap_err().to_string();
        assert!(again.contains("grace bucket 0 was read twice"), "{again}");
    }
}
