//! Turns a plain Delta table into one that carries the table features Databricks enables on
//! inference tables: deletion vectors (written for a privacy delete of one requester's rows)
//! and a v2 checkpoint.
//!
//! delta-rs rewrites files on DELETE instead of writing deletion vectors, so the delete is
//! committed here the way Databricks does it: the file is removed and re-added with a
//! `deletionVector` descriptor pointing at a DV file written with the Delta kernel's writer.

use std::fs;
use std::path::Path;

use buoyant_kernel::actions::deletion_vector_writer::{KernelDeletionVector, StreamingDeletionVectorWriter};
use deltalake::arrow::array::{Array, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use crate::error::{Error, Result};

fn generate_error(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Generate(format!("{context}: {e}"))
}

/// The actions of a table's JSON log, replayed: its live add actions and latest metadata.
struct LogState {
    version: u64,
    metadata: Value,
    adds: Vec<Value>,
}

fn read_log(table: &Path) -> Result<LogState> {
    let log_dir = table.join("_delta_log");
    let mut commits: Vec<(u64, std::path::PathBuf)> = fs::read_dir(&log_dir)
        .map_err(|e| generate_error("reading _delta_log", e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_string();
            let version = name.strip_suffix(".json")?.parse().ok()?;
            Some((version, path))
        })
        .collect();
    commits.sort();
    let mut state = LogState { version: 0, metadata: Value::Null, adds: Vec::new() };
    for (version, path) in commits {
        state.version = version;
        let text = fs::read_to_string(&path).map_err(|e| generate_error("reading a commit", e))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let action: Value = serde_json::from_str(line).map_err(|e| generate_error("parsing a commit", e))?;
            if let Some(metadata) = action.get("metaData") {
                state.metadata = metadata.clone();
            }
            if let Some(add) = action.get("add") {
                state.adds.push(add.clone());
            }
            if let Some(removed) = action.get("remove").and_then(|r| r.get("path")) {
                state.adds.retain(|a| a.get("path") != Some(removed));
            }
        }
    }
    Ok(state)
}

fn write_commit(table: &Path, version: u64, actions: &[Value]) -> Result<()> {
    let path = table.join("_delta_log").join(format!("{version:020}.json"));
    let body: String = actions.iter().map(|a| format!("{a}\n")).collect();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| generate_error("writing a commit", e))?;
    std::io::Write::write_all(&mut file, body.as_bytes()).map_err(|e| generate_error("writing a commit", e))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Upgrades the table's protocol to reader 3 / writer 7 with `deletionVectors` and
/// `v2Checkpoint`, and sets the table properties Databricks sets on inference tables.
fn enable_features(table: &Path, state: &LogState) -> Result<u64> {
    let version = state.version + 1;
    let mut metadata = state.metadata.clone();
    let configuration = metadata
        .get_mut("configuration")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::Generate("table metadata has no configuration".into()))?;
    configuration.insert("delta.enableDeletionVectors".into(), json!("true"));
    configuration.insert("delta.checkpointPolicy".into(), json!("v2"));
    let features = json!(["deletionVectors", "v2Checkpoint"]);
    write_commit(
        table,
        version,
        &[
            json!({ "commitInfo": { "timestamp": now_ms(), "operation": "SET TBLPROPERTIES",
            "operationParameters": { "properties": "{\"delta.enableDeletionVectors\":\"true\",\"delta.checkpointPolicy\":\"v2\"}" } } }),
            json!({ "protocol": { "minReaderVersion": 3, "minWriterVersion": 7,
            "readerFeatures": features, "writerFeatures": features } }),
            json!({ "metaData": metadata }),
        ],
    )?;
    Ok(version)
}

/// Row positions in a Parquet data file whose `column` equals `value`.
fn matching_rows(file: &Path, column: &str, value: &str) -> Result<Vec<u64>> {
    let reader = fs::File::open(file).map_err(|e| generate_error("opening a data file", e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(reader).map_err(|e| generate_error("reading a data file", e))?;
    let index = builder.schema().index_of(column).map_err(|e| generate_error("reading a data file", e))?;
    let mask = deltalake::parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [index]);
    let batches = builder.with_projection(mask).build().map_err(|e| generate_error("reading a data file", e))?;
    let mut rows = Vec::new();
    let mut offset = 0u64;
    for batch in batches {
        let batch = batch.map_err(|e| generate_error("reading a data file", e))?;
        let values = cast(batch.column(0), &DataType::Utf8).map_err(|e| generate_error("reading a data file", e))?;
        let values = values
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Generate(format!("{column} is not a string column")))?;
        for row in 0..values.len() {
            if !values.is_null(row) && values.value(row) == value {
                rows.push(offset + row as u64);
            }
        }
        offset += values.len() as u64;
    }
    Ok(rows)
}

/// Deletes every row whose `requester` is `requester` by writing deletion vectors, then
/// writes a v2 checkpoint. Returns the number of rows deleted.
pub async fn privacy_delete_with_deletion_vectors(table: &Path, requester: &str, dv_uuid: uuid::Uuid) -> Result<u64> {
    let state = read_log(table)?;
    let features_version = enable_features(table, &state)?;

    let dv_file_name = format!("deletion_vector_{dv_uuid}.bin");
    let mut dv_bytes = Vec::new();
    let mut actions = vec![json!({ "commitInfo": { "timestamp": now_ms(), "operation": "DELETE",
        "operationParameters": { "predicate": "[\"(requester = <redacted>)\"]" } } })];
    let mut deleted = 0u64;
    {
        let mut writer = StreamingDeletionVectorWriter::new(&mut dv_bytes);
        for add in &state.adds {
            let path =
                add.get("path").and_then(Value::as_str).ok_or_else(|| Error::Generate("add without path".into()))?;
            let rows = matching_rows(&table.join(path), "requester", requester)?;
            if rows.is_empty() {
                continue;
            }
            deleted += rows.len() as u64;
            let mut dv = KernelDeletionVector::new();
            dv.add_deleted_row_indexes(rows);
            let written =
                writer.write_deletion_vector(dv).map_err(|e| generate_error("writing a deletion vector", e))?;
            let mut remove = json!({
                "path": path, "deletionTimestamp": now_ms(), "dataChange": true, "extendedFileMetadata": true,
                "partitionValues": add.get("partitionValues").cloned().unwrap_or(json!({})),
                "size": add.get("size").cloned().unwrap_or(json!(0)),
            });
            if let Some(stats) = add.get("stats") {
                remove["stats"] = stats.clone();
            }
            let mut new_add = add.clone();
            new_add["dataChange"] = json!(true);
            new_add["modificationTime"] = json!(now_ms());
            new_add["deletionVector"] = json!({
                "storageType": "u",
                "pathOrInlineDv": z85::encode(dv_uuid.as_bytes()),
                "offset": written.offset,
                "sizeInBytes": written.size_in_bytes,
                "cardinality": written.cardinality,
            });
            if let Some(stats) = add.get("stats").and_then(Value::as_str)
                && let Ok(mut parsed) = serde_json::from_str::<Value>(stats)
            {
                parsed["tightBounds"] = json!(false);
                new_add["stats"] = json!(parsed.to_string());
            }
            actions.push(json!({ "remove": remove }));
            actions.push(json!({ "add": new_add }));
        }
        writer.finalize().map_err(|e| generate_error("writing a deletion vector", e))?;
    }
    if deleted == 0 {
        return Err(Error::Generate(format!("the privacy delete found no rows of {requester}")));
    }
    fs::write(table.join(&dv_file_name), &dv_bytes).map_err(|e| generate_error("writing the DV file", e))?;
    write_commit(table, features_version + 1, &actions)?;

    let absolute = std::path::absolute(table).map_err(|e| generate_error("resolving the table path", e))?;
    let url = url::Url::from_directory_path(&absolute).map_err(|_| Error::Generate("bad table path".into()))?;
    let loaded = deltalake::open_table(url).await.map_err(|e| generate_error("reloading the table", e))?;
    deltalake::checkpoints::create_checkpoint(&loaded, None)
        .await
        .map_err(|e| generate_error("writing the v2 checkpoint", e))?;
    Ok(deleted)
}
