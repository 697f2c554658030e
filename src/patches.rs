//! The rate-limit patch files: `PUT .../ai-gateway` bodies, one per endpoint that needs a
//! change, kept per as-of date so that a backfill never replaces the latest night's patches.
//!
//! Layout under the output location:
//! - `recommendations/<as_of_date>/<endpoint>.json`: the patches of the run whose last date is
//!   `as_of_date` (the folder holds exactly that run's patches);
//! - `recommendations/latest/<endpoint>.json` and `recommendations/latest/AS_OF` (the as-of
//!   date and run of its patches): replaced only by a run whose as-of date is at least the one
//!   in `AS_OF`, so a backfill of October leaves the patches of last night in place.
//!
//! Each file is written atomically (the object store's put; a rename on local disks). A run
//! killed while replacing `latest/` leaves `AS_OF` naming the earlier run; the next run with
//! an as-of date at least as late rewrites the folder whole.

use std::collections::HashMap;

use chrono::NaiveDate;
use deltalake::DeltaTableBuilder;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::rate_limits::{self, EndpointPatch, RateLimitConfig};
use crate::storage::describe_store_call;

/// The folder under the output location that holds the patch files.
pub const PATCH_FOLDER: &str = "recommendations";
/// The folder under the output location that holds the new AI Gateway's patch files
/// (`PATCH .../model-services/{name}?update_mask=config.rate_limits`), in the same layout.
pub const AI_GATEWAY_PATCH_FOLDER: &str = "ai_gateway_recommendations";
/// The folder of the latest as-of date's patches.
pub const LATEST: &str = "latest";
/// The file in `latest/` naming its as-of date.
const AS_OF_FILE: &str = "AS_OF";

#[derive(Debug, Serialize, Deserialize)]
struct AsOf {
    as_of_date: NaiveDate,
}

/// The folder (under the output location) of the patches as of `date`.
pub fn folder_of(date: NaiveDate) -> String {
    format!("{PATCH_FOLDER}/{date}")
}

/// The folder (under the output location) of the new AI Gateway's patches as of `date`.
pub fn ai_gateway_folder_of(date: NaiveDate) -> String {
    format!("{AI_GATEWAY_PATCH_FOLDER}/{date}")
}

/// Writes the patches as of `as_of` into their folder and, unless `latest/` holds a later
/// as-of date, into `latest/`. Returns whether `latest/` was replaced.
pub async fn write(
    job: &JobConfig,
    as_of: NaiveDate,
    config: &RateLimitConfig,
    patches: &[EndpointPatch],
) -> Result<bool> {
    let mut files = Vec::with_capacity(patches.len());
    for patch in patches {
        let body = serde_json::to_vec_pretty(&patch.body(config))
            .map_err(|e| write_error(job, PATCH_FOLDER, e.to_string()))?;
        files.push((rate_limits::patch_file_name(&patch.endpoint_name), body));
    }
    write_files(job, PATCH_FOLDER, as_of, &files).await
}

/// Writes the new AI Gateway's patch files (name, content) as of `as_of` under
/// [`AI_GATEWAY_PATCH_FOLDER`], in the same layout as [`write`]'s. Returns whether `latest/`
/// was replaced.
pub async fn write_ai_gateway(job: &JobConfig, as_of: NaiveDate, files: &[(String, Vec<u8>)]) -> Result<bool> {
    write_files(job, AI_GATEWAY_PATCH_FOLDER, as_of, files).await
}

fn write_error(job: &JobConfig, root: &str, message: String) -> Error {
    Error::Output { table: root.into(), location: job.output.child(root).to_string(), message }
}

/// Writes `files` into `<root>/<as_of>/` and, unless `<root>/latest/AS_OF` names a later
/// date, into `<root>/latest/`.
async fn write_files(job: &JobConfig, root: &str, as_of: NaiveDate, files: &[(String, Vec<u8>)]) -> Result<bool> {
    let failed = |message: String| write_error(job, root, message);
    let store = DeltaTableBuilder::from_url(job.output.url().clone())
        .and_then(|b| b.with_storage_options(job.storage_options.clone()).build_storage())
        .map_err(|e| failed(crate::storage::describe_delta_error(&e)))?
        .object_store(None);
    let options = &job.storage_options;
    replace_json_files(store.as_ref(), &format!("{root}/{as_of}"), files, options).await.map_err(failed)?;
    let marker = deltalake::Path::from(format!("{root}/{LATEST}/{AS_OF_FILE}"));
    let current = match store.get(&marker).await {
        Ok(found) => {
            let bytes = found.bytes().await.map_err(|e| failed(describe_store_call(&e, options)))?;
            serde_json::from_slice::<AsOf>(&bytes).ok().map(|a| a.as_of_date)
        }
        Err(deltalake::ObjectStoreError::NotFound { .. }) => None,
        Err(e) => return Err(failed(describe_store_call(&e, options))),
    };
    if current.is_some_and(|latest| latest > as_of) {
        tracing::info!("{root}/{LATEST} holds the patches as of {current:?}, later than {as_of}: left as is");
        return Ok(false);
    }
    replace_json_files(store.as_ref(), &format!("{root}/{LATEST}"), files, options).await.map_err(failed)?;
    let body = serde_json::to_vec_pretty(&AsOf { as_of_date: as_of }).map_err(|e| failed(e.to_string()))?;
    store.put(&marker, body.into()).await.map_err(|e| failed(describe_store_call(&e, options)))?;
    if root == PATCH_FOLDER {
        remove_top_level_patches(store.as_ref(), options).await.map_err(failed)?;
    }
    Ok(true)
}

/// Makes `folder` hold exactly `files` (name, content) among its `.json` files: writes each one
/// and then deletes `.json` files of earlier runs that are not among them.
async fn replace_json_files(
    store: &dyn ObjectStore,
    folder: &str,
    files: &[(String, Vec<u8>)],
    options: &HashMap<String, String>,
) -> std::result::Result<(), String> {
    let described = |e: deltalake::ObjectStoreError| describe_store_call(&e, options);
    for (name, bytes) in files {
        let path = deltalake::Path::from(format!("{folder}/{name}"));
        store.put(&path, bytes.clone().into()).await.map_err(described)?;
    }
    let prefix = deltalake::Path::from(folder);
    let existing = store.list_with_delimiter(Some(&prefix)).await.map_err(described)?.objects;
    let wanted: std::collections::HashSet<String> = files.iter().map(|(name, _)| format!("{folder}/{name}")).collect();
    for meta in existing {
        let path = meta.location.to_string();
        if path.ends_with(".json") && !wanted.contains(&path) {
            store.delete(&meta.location).await.map_err(described)?;
        }
    }
    Ok(())
}

/// Deletes `recommendations/<endpoint>.json` files of the layout before per-date folders.
async fn remove_top_level_patches(
    store: &dyn ObjectStore,
    options: &HashMap<String, String>,
) -> std::result::Result<(), String> {
    let described = |e: deltalake::ObjectStoreError| describe_store_call(&e, options);
    let listed = store.list_with_delimiter(Some(&deltalake::Path::from(PATCH_FOLDER))).await.map_err(described)?;
    for meta in listed.objects.into_iter().filter(|m| m.location.as_ref().ends_with(".json")) {
        store.delete(&meta.location).await.map_err(described)?;
    }
    Ok(())
}
