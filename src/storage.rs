//! Table and file IO: opening Delta tables and reading small files, local or in an object store.
//!
//! Object-store credentials come from the environment (the standard AWS, Azure and GCP
//! variables and credential chains) through deltalake's storage features.

use std::collections::HashMap;

use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

use std::sync::Arc;

use deltalake::datafusion::common::config::ParquetOptions;
use deltalake::datafusion::datasource::{TableProvider, provider_as_source};
use deltalake::datafusion::logical_expr::LogicalPlanBuilder;
use deltalake::datafusion::prelude::{SessionContext, col, lit};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::SaveMode;

use crate::error::{Error, Result};
use crate::location::Location;
use crate::remote::{UnityCatalogTimeouts, storage_budget};
use crate::unity_catalog::{self, ResolveError};
use crate::window::date_value;

/// Opens an existing Delta table at its latest version. A Unity Catalog name is resolved first
/// ([`unity_catalog::resolve`], with `catalog`'s timeouts), then opened at its storage
/// location with the vended credentials; messages name the `uc://` location in any case.
pub async fn open_table(
    input: &str,
    location: &Location,
    options: &HashMap<String, String>,
    catalog: &UnityCatalogTimeouts,
) -> Result<DeltaTable> {
    let unavailable =
        |message: String| Error::InputUnavailable { input: input.to_string(), location: location.to_string(), message };
    let read_error =
        |message: String| Error::InputRead { input: input.to_string(), location: location.to_string(), message };
    if let Some(path) = location.local_path()
        && !path.exists()
    {
        return Err(unavailable("no such folder".to_string()));
    }
    let builder = match location.unity_catalog_name() {
        Some(name) => {
            let resolved = unity_catalog::resolve(name, options, catalog).await.map_err(|e| match e {
                ResolveError::Refused(message) => unavailable(message),
                ResolveError::Unreachable(message) => read_error(message),
            })?;
            let url = resolved.storage.url().clone();
            DeltaTableBuilder::from_url(url.clone())
                .map_err(|e| unavailable(describe_delta_error(&e)))?
                .with_storage_backend(resolved.store, url)
        }
        None => {
            DeltaTableBuilder::from_url(location.url().clone()).map_err(|e| unavailable(describe_delta_error(&e)))?
        }
    };
    let mut table =
        builder.with_storage_options(options.clone()).build().map_err(|e| unavailable(describe_delta_error(&e)))?;
    table.load().await.map_err(|e| match e {
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_) => {
            unavailable(describe_delta_error(&e))
        }
        // A bucket or container that does not exist is a wrong location, not a passing failure.
        other if is_missing_bucket(&other.to_string()) => unavailable(describe_delta_error(&other)),
        other => read_error(with_budget(describe_delta_error(&other), &other, options)),
    })?;
    Ok(table)
}

/// An opened Delta table as a DataFusion table provider, its object store made known to `ctx`.
pub async fn provider_of(
    ctx: &SessionContext,
    input: &str,
    location: &Location,
    table: &deltalake::DeltaTable,
) -> Result<Arc<dyn TableProvider>> {
    let unavailable =
        |message: String| Error::InputUnavailable { input: input.to_string(), location: location.to_string(), message };
    table.update_datafusion_session(&ctx.state()).map_err(|e| unavailable(describe_delta_error(&e)))?;
    table.table_provider().await.map_err(|e| unavailable(e.to_string()))
}

/// Replaces the partitions `dates` of the Delta table `name` at `location` with the rows of
/// `source` (read once, streamed), in one commit (creating the table if need be); returns the
/// version written.
pub async fn replace_partitions(
    location: &Location,
    name: &str,
    source: Arc<dyn TableProvider>,
    partition_column: &str,
    dates: &[chrono::NaiveDate],
    run_id: &str,
    options: &HashMap<String, String>,
) -> Result<i64> {
    let output_error =
        |message: String| Error::Output { table: name.to_string(), location: location.to_string(), message };
    let table = open_table_for_write(location, options).await.map_err(|e| output_error(describe_delta_error(&e)))?;
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(source), None)
        .and_then(LogicalPlanBuilder::build)
        .map_err(|e| output_error(e.to_string()))?;
    let replaced = col(partition_column).in_list(dates.iter().map(|d| lit(date_value(*d))).collect(), false);
    let first = dates.iter().min().map(ToString::to_string).unwrap_or_default();
    let last = dates.iter().max().map(ToString::to_string).unwrap_or_default();
    let commit_info = CommitProperties::default().with_metadata([(
        "gateway_analytics".to_string(),
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "run_id": run_id,
            "first_date": first,
            "last_date": last,
            "dates": dates.len(),
        }),
    )]);
    let written = table
        .write(Vec::new())
        .with_input_plan(plan)
        .with_writer_properties(output_writer_properties().map_err(output_error)?)
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(replaced)
        .with_partition_columns([partition_column])
        .with_commit_properties(commit_info)
        .await
        .map_err(|e| output_error(describe_delta_error(&e)))?;
    Ok(written.version().map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)))
}

/// The largest Parquet row group of an output file, in encoded bytes. A write keeps one open
/// row group per date partition until its last row, so it holds up to this much per date of the
/// window; DataFusion's default bounds a group by rows only, a million of them
/// (docs/PERFORMANCE.md).
const OUTPUT_ROW_GROUP_BYTES: usize = 16 << 20;

/// How output files are written: DataFusion's Parquet defaults (what deltalake uses when
/// given none), with row groups of at most [`OUTPUT_ROW_GROUP_BYTES`].
fn output_writer_properties() -> std::result::Result<WriterProperties, String> {
    let defaults = ParquetOptions::default().into_writer_properties_builder().map_err(|e| e.to_string())?;
    Ok(defaults.set_max_row_group_bytes(Some(OUTPUT_ROW_GROUP_BYTES)).build())
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
    // A store that did not answer in time may answer on a rerun (exit 1); anything else (no
    // such file, refused credentials) needs a fix (exit 2).
    let failed = |e: deltalake::ObjectStoreError| {
        let message = describe_store_error(&e.to_string());
        if is_transient(&message) {
            let message = with_budget(message, &e, options);
            Error::InputRead { input: input.to_string(), location: location.to_string(), message }
        } else {
            unavailable(message)
        }
    };
    let result = store.get(&deltalake::Path::from(file_name)).await.map_err(failed)?;
    let bytes = result.bytes().await.map_err(failed)?;
    Ok(bytes.to_vec())
}

/// A one-line description of a deltalake error, without the backtrace-like detail, saying what
/// to check when the object store refused the credentials or has no such bucket.
pub fn describe_delta_error(error: &DeltaTableError) -> String {
    match error {
        DeltaTableError::NotATable(_) => "no Delta table here (no _delta_log folder)".to_string(),
        other => describe_store_error(&other.to_string()),
    }
}

/// Error codes of S3, Azure Blob and GCS answers that mean the bucket or container is missing.
const MISSING_BUCKET_CODES: [&str; 3] = ["NoSuchBucket", "ContainerNotFound", "FilesystemNotFound"];
/// Error codes (and object_store's wording of HTTP 401/403) that mean the credentials were
/// refused or lack a permission.
const ACCESS_DENIED_CODES: [&str; 11] = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "InvalidAuthenticationInfo",
    "lacked the necessary privileges",
    "lacked valid authentication credentials",
];

/// Whether an object-store error message says the bucket or container does not exist.
fn is_missing_bucket(message: &str) -> bool {
    MISSING_BUCKET_CODES.iter().any(|code| message.contains(code))
}

/// The first line of an object-store error message (the request and its HTTP status; the URL
/// of a request signed in its query string is already redacted by object_store), preceded by
/// what to check when the store refused the credentials or has no such bucket. The store's
/// answer on the later lines is only searched for its error code, never shown.
pub fn describe_store_error(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let first = first.split_once(": <?xml").map_or(first, |(head, _)| head);
    let code = |codes: &[&'static str]| codes.iter().copied().find(|code| message.contains(code));
    if let Some(code) = code(&MISSING_BUCKET_CODES) {
        format!(
            "the bucket or container does not exist ({code}): check its name in the location and that the \
             endpoint or account the environment points at (AWS_ENDPOINT_URL, AWS_REGION, \
             AZURE_STORAGE_ACCOUNT_NAME) is the one that holds it; the store said: {first}"
        )
    } else if let Some(code) = code(&ACCESS_DENIED_CODES) {
        let code = if code.contains(' ') { "HTTP 401/403" } else { code };
        format!(
            "the object store refused the credentials ({code}): check the credentials in the environment \
             (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile or role for s3://; \
             AZURE_STORAGE_ACCOUNT_KEY, a SAS or an Azure identity for abfss://; \
             GOOGLE_APPLICATION_CREDENTIALS for gs://) and that they may access this location; \
             the store said: {first}"
        )
    } else {
        first.to_string()
    }
}

/// Whether an object-store error message says the store did not answer (in time, or
/// completely) rather than answered no.
fn is_transient(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["timed out", "timeout", " retries", "error sending request", "connection", "decoding response body", "body"]
        .iter()
        .any(|word| lower.contains(word))
}

/// A one-line description of a failed object-store call, with the timeouts and retry budget
/// that bounded it when the store did not answer ([`describe_store_error`], [`with_budget`]).
pub fn describe_store_call(error: &deltalake::ObjectStoreError, options: &HashMap<String, String>) -> String {
    with_budget(describe_store_error(&error.to_string()), error, options)
}

/// `message` (the description of `error`), and when the store did not answer: what happened
/// underneath (timed out, connection closed mid-answer, no connection) and the timeouts and
/// retry budget that bounded the call, with where to set them.
pub fn with_budget(message: String, error: &dyn std::fmt::Debug, options: &HashMap<String, String>) -> String {
    if !is_transient(&message) {
        return message;
    }
    // The error's display stops at object_store's summary (`error sending request`); the
    // kinds of its sources (reqwest, hyper, I/O) say what happened. Only matched, never shown.
    let detail = format!("{error:?}");
    let happened = if detail.contains("TimedOut") || detail.contains("kind: Timeout") {
        "timed out; the store did not answer within"
    } else if ["IncompleteBody", "IncompleteMessage", "UnexpectedEof", "ConnectionReset", "ConnectionAborted"]
        .iter()
        .any(|kind| detail.contains(kind))
    {
        "the connection closed before the answer was complete; the store did not answer within"
    } else if detail.contains("ConnectionRefused") || detail.contains("kind: Connect") {
        "could not connect; the store did not answer within"
    } else {
        "the call gave up within"
    };
    format!("{message} ({happened} {}: `[storage_options]`)", storage_budget(options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::parquet::schema::types::ColumnPath;

    #[test]
    fn output_row_groups_are_bounded_in_bytes_with_datafusion_defaults_otherwise() {
        let written = output_writer_properties().unwrap();
        let defaults = ParquetOptions::default().into_writer_properties_builder().unwrap().build();
        assert_eq!(written.max_row_group_bytes(), Some(OUTPUT_ROW_GROUP_BYTES));
        assert_eq!(written.max_row_group_row_count(), defaults.max_row_group_row_count());
        let column = ColumnPath::from("cost_usd");
        assert_eq!(written.compression(&column), defaults.compression(&column));
        assert_eq!(written.statistics_enabled(&column), defaults.statistics_enabled(&column));
    }

    #[test]
    fn says_what_to_check_when_the_store_refuses() {
        let denied = "The operation lacked the necessary privileges to complete for path t/_delta_log: Error \
                      performing GET http://s3/b/t in 3ms - Server returned non-2xx status code: 403 Forbidden: <?xml?>\n\
                      <Error><Code>SignatureDoesNotMatch</Code></Error>";
        let shown = describe_store_error(denied);
        assert!(shown.starts_with("the object store refused the credentials (SignatureDoesNotMatch)"), "{shown}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY") && !shown.contains("<Error>"), "{shown}");

        let missing = "Generic S3 error: Error performing list request: 404 Not Found: <?xml?>\n\
                       <Error><Code>NoSuchBucket</Code></Error>";
        assert!(is_missing_bucket(missing));
        let shown = describe_store_error(missing);
        assert!(shown.starts_with("the bucket or container does not exist (NoSuchBucket)"), "{shown}");

        assert_eq!(describe_store_error("timed out\nmore"), "timed out");
    }
}
