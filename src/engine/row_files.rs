//! Computed rows kept on local disk until they are committed.
//!
//! A run computes every output of every segment before its first commit (so that a failure
//! writes nothing). Held in memory, those rows sat outside the memory pool and grew with the
//! window (hundreds of MB for five days of traced traffic); here each output streams into an
//! Arrow IPC file (LZ4) in the session's [`WorkFolder`] as its query runs, and is read back, in
//! the order it was written, by the queries that read it, by the history of later segments and
//! by the commit. A file is deleted when the last [`RowFiles`] naming it is dropped (and keeps
//! its folder alive until then).

use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::ipc::CompressionType;
use deltalake::arrow::ipc::reader::FileReader;
use deltalake::arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::catalog::streaming::StreamingTable;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::TaskContext;
use deltalake::datafusion::physical_plan::SendableRecordBatchStream;
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt as _;
use tempfile::TempPath;

use crate::engine::work_folder::WorkFolder;
use crate::error::{Error, Result};

/// Rows of one schema in Arrow IPC files on local disk, in order.
#[derive(Debug, Clone)]
pub struct RowFiles {
    schema: SchemaRef,
    files: Vec<Arc<RowFile>>,
    rows: usize,
}

/// One file, deleted when dropped; its folder lives at least as long.
#[derive(Debug)]
struct RowFile {
    // Dropped in this order: the file, then (maybe) its folder.
    path: TempPath,
    _folder: Arc<WorkFolder>,
}

impl RowFiles {
    /// No rows.
    pub fn empty(schema: SchemaRef) -> Self {
        RowFiles { schema, files: Vec::new(), rows: 0 }
    }

    /// The rows' schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends `other`'s rows after these (same schema).
    pub fn append(&mut self, other: RowFiles) {
        self.files.extend(other.files);
        self.rows += other.rows;
    }

    /// Every row in memory: for the small outputs the run reads itself (alerts, data quality,
    /// recommendations).
    pub fn read_all(&self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        for file in &self.files {
            for batch in open(&file.path)? {
                batches.push(batch.map_err(|e| read_error(&file.path, e))?);
            }
        }
        Ok(batches)
    }

    /// The rows as a table of one partition, read file by file in order each time it is
    /// scanned.
    pub fn table(&self) -> Result<Arc<dyn TableProvider>> {
        let stream = FilesStream { schema: self.schema.clone(), files: self.files.clone() };
        let table = StreamingTable::try_new(self.schema.clone(), vec![Arc::new(stream)])
            .map_err(|e| Error::query("reading computed rows", e))?;
        Ok(Arc::new(table))
    }
}

/// Writes rows into one new file of a [`RowFiles`].
pub struct RowFileWriter {
    file: RowFile,
    writer: FileWriter<BufWriter<File>>,
    rows: usize,
}

impl fmt::Debug for RowFileWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowFileWriter").field("path", &self.file.path).field("rows", &self.rows).finish()
    }
}

impl RowFileWriter {
    /// A new file in `folder` for rows of `schema`.
    pub fn create(schema: &SchemaRef, folder: Arc<WorkFolder>) -> Result<Self> {
        let io = |source| Error::Io {
            context: format!("creating a file for computed rows in {}", folder.path().display()),
            source,
        };
        let file = tempfile::Builder::new().prefix("rows-").suffix(".arrow").tempfile_in(folder.path()).map_err(io)?;
        let (file, path) = file.into_parts();
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::LZ4_FRAME))
            .map_err(|e| write_error(&path, e))?;
        let writer = FileWriter::try_new_with_options(BufWriter::new(file), schema, options)
            .map_err(|e| write_error(&path, e))?;
        Ok(RowFileWriter { file: RowFile { path, _folder: folder }, writer, rows: 0 })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| write_error(&self.file.path, e))?;
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Closes the file: its rows, readable.
    pub fn finish(mut self) -> Result<RowFiles> {
        self.writer.finish().map_err(|e| write_error(&self.file.path, e))?;
        let schema = self.writer.schema().clone();
        Ok(RowFiles { schema, files: vec![Arc::new(self.file)], rows: self.rows })
    }
}

/// One partition reading the files in order.
#[derive(Debug)]
struct FilesStream {
    schema: SchemaRef,
    files: Vec<Arc<RowFile>>,
}

impl PartitionStream for FilesStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let files = self.files.clone();
        let batches = futures::stream::iter(files).flat_map(|file| {
            let batches: Box<dyn Iterator<Item = std::result::Result<RecordBatch, DataFusionError>> + Send> =
                match open(&file.path) {
                    Ok(reader) => Box::new(reader.map(move |b| b.map_err(|e| external(read_error(&file.path, e))))),
                    Err(e) => Box::new(std::iter::once(Err(external(e)))),
                };
            futures::stream::iter(batches)
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

fn open(path: &Path) -> Result<FileReader<BufReader<File>>> {
    let file = File::open(path)
        .map_err(|source| Error::Io { context: format!("opening computed rows in {}", path.display()), source })?;
    FileReader::try_new(BufReader::new(file), None).map_err(|e| read_error(path, e))
}

fn external(error: Error) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

fn read_error(path: &Path, error: impl fmt::Display) -> Error {
    Error::Io {
        context: format!("reading computed rows from {}", path.display()),
        source: std::io::Error::other(error.to_string()),
    }
}

fn write_error(path: &Path, error: impl fmt::Display) -> Error {
    Error::Io {
        context: format!("writing computed rows to {}", path.display()),
        source: std::io::Error::other(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::Int64Array;
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use deltalake::datafusion::prelude::SessionContext;

    fn batch(schema: &SchemaRef, values: &[i64]) -> RecordBatch {
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect()
    }

    /// Rows come back in the order written, across batches and appended files, from memory
    /// and through a query; the files go when the last copy is dropped.
    #[tokio::test]
    async fn rows_come_back_in_order_and_files_go_with_the_last_copy() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let parent = tempfile::tempdir().unwrap();
        let folder = WorkFolder::create_in(parent.path()).unwrap();
        let mut first = RowFileWriter::create(&schema, folder.clone()).unwrap();
        first.write(&batch(&schema, &[3, 1])).unwrap();
        first.write(&batch(&schema, &[2])).unwrap();
        let mut rows = first.finish().unwrap();
        let mut second = RowFileWriter::create(&schema, folder.clone()).unwrap();
        second.write(&batch(&schema, &[9, 0])).unwrap();
        rows.append(second.finish().unwrap());
        assert_eq!(rows.rows(), 5);
        assert_eq!(values(&rows.read_all().unwrap()), [3, 1, 2, 9, 0]);

        let ctx = SessionContext::new();
        ctx.register_table("t", rows.table().unwrap()).unwrap();
        for _ in 0..2 {
            let scanned = ctx.sql("SELECT n FROM t").await.unwrap().collect().await.unwrap();
            assert_eq!(values(&scanned), [3, 1, 2, 9, 0]);
        }

        let paths: Vec<std::path::PathBuf> = rows.files.iter().map(|f| f.path.to_path_buf()).collect();
        let folder_path = folder.path().to_path_buf();
        drop(folder);
        let copy = rows.clone();
        drop(rows);
        assert!(paths.iter().all(|p| p.exists()), "a copy still names them");
        assert!(folder_path.exists(), "the files keep their folder");
        drop(copy);
        drop(ctx);
        assert!(paths.iter().all(|p| !p.exists()), "the last copy deletes them");
        assert!(!folder_path.exists(), "and then their folder");
        assert_eq!(RowFiles::empty(schema).read_all().unwrap().len(), 0);
    }
}
