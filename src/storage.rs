//! Table and file IO: opening Delta tables and reading small files, local or in an object store.
//!
//! Object-store credentials come from the environment (the standard AWS, Azure and GCP
//! variables and credential chains) through deltalake's storage features.

use std::collections::HashMap;

use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

use crate::error::{Error, Result};
use crate::location::Location;

/// Opens an existing Delta table at its latest version.
pub async fn open_table(input: &str, location: &Location, options: &HashMap<String, String>) -> Result<DeltaTable> {
    let unavailable =
        |message: String| Error::InputUnavailable { input: input.to_string(), location: location.to_string(), message };
    if let Some(path) = location.local_path()
        && !path.exists()
    {
        return Err(unavailable("no such folder".to_string()));
    }
    let mut table = DeltaTableBuilder::from_url(location.url().clone())
        .map_err(|e| unavailable(describe_delta_error(&e)))?
        .with_storage_options(options.clone())
        .build()
        .map_err(|e| unavailable(describe_delta_error(&e)))?;
    table.load().await.map_err(|e| match e {
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_) => {
            unavailable(describe_delta_error(&e))
        }
        other => Error::InputRead {
            input: input.to_string(),
            location: location.to_string(),
            message: describe_delta_error(&other),
        },
    })?;
    Ok(table)
}

/// Opens the Delta table at `location` for writing; `None` when no table exists there yet.
pub async fn open_table_for_write(
    location: &Location,
    options: &HashMap<String, String>,
) -> Result<DeltaTable, DeltaTableError> {
    let mut table =
        DeltaTableBuilder::from_url(location.url().clone())?.with_storage_options(options.clone()).build()?;
    // Checking first keeps deltalake from logging an error for a table not created yet.
    if table.verify_deltatable_existence().await? {
        table.load().await?;
    }
    Ok(table)
}

/// Reads a whole small file (a CSV) from a local path or an object store.
pub async fn read_file(location: &Location, options: &HashMap<String, String>, input: &str) -> Result<Vec<u8>> {
    let unavailable =
        |message: String| Error::InputUnavailable { input: input.to_string(), location: location.to_string(), message };
    if let Some(path) = location.local_path() {
        let path = std::path::PathBuf::from(path.to_string_lossy().trim_end_matches('/'));
        return std::fs::read(&path).map_err(|e| unavailable(e.to_string()));
    }
    let url = location.url();
    let (parent, file_name) =
        url.as_str().trim_end_matches('/').rsplit_once('/').ok_or_else(|| unavailable("not a file URI".to_string()))?;
    let parent_url = url::Url::parse(parent).map_err(|e| unavailable(e.to_string()))?;
    let store = DeltaTableBuilder::from_url(parent_url)
        .and_then(|b| b.with_storage_options(options.clone()).build_storage())
        .map_err(|e| unavailable(describe_delta_error(&e)))?
        .object_store(None);
    let result = store.get(&deltalake::Path::from(file_name)).await.map_err(|e| unavailable(e.to_string()))?;
    let bytes = result.bytes().await.map_err(|e| unavailable(e.to_string()))?;
    Ok(bytes.to_vec())
}

/// A one-line description of a deltalake error, without the backtrace-like detail.
pub fn describe_delta_error(error: &DeltaTableError) -> String {
    match error {
        DeltaTableError::NotATable(_) => "no Delta table here (no _delta_log folder)".to_string(),
        other => other.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

/// Makes `folder` under `root` hold exactly `files` (name, content) among its `.json` files:
/// writes each one and deletes `.json` files from earlier runs that are not in `files`.
pub async fn replace_json_files(
    root: &Location,
    folder: &str,
    files: &[(String, Vec<u8>)],
    options: &HashMap<String, String>,
) -> Result<(), String> {
    use futures::TryStreamExt;
    let store = DeltaTableBuilder::from_url(root.url().clone())
        .and_then(|b| b.with_storage_options(options.clone()).build_storage())
        .map_err(|e| describe_delta_error(&e))?
        .object_store(None);
    let prefix = deltalake::Path::from(folder);
    let existing: Vec<deltalake::ObjectMeta> =
        store.list(Some(&prefix)).try_collect().await.map_err(|e| e.to_string())?;
    let wanted: std::collections::HashSet<String> = files.iter().map(|(name, _)| format!("{folder}/{name}")).collect();
    for meta in existing {
        let path = meta.location.to_string();
        if path.ends_with(".json") && !wanted.contains(&path) {
            store.delete(&meta.location).await.map_err(|e| e.to_string())?;
        }
    }
    for (name, bytes) in files {
        let path = deltalake::Path::from(format!("{folder}/{name}"));
        store.put(&path, bytes.clone().into()).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
