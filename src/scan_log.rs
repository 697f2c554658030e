//! What a run read: files and bytes scanned per table, from DataFusion's scan metrics.
//!
//! The log lives on the session (a config extension), so every plan the run executes (the
//! materialised views, the outputs, the ledger lookup) records into it. The summary prints it:
//! it is how a one-day run shows that it read one day of input, not the history.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use deltalake::datafusion::datasource::physical_plan::FileScanConfig;
use deltalake::datafusion::datasource::source::DataSourceExec;
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::prelude::SessionContext;
use serde::Serialize;

/// Files and bytes read from one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableScan {
    /// The table: an input (`usage`, `payload`...), an earlier output read as history, or
    /// `scratch` (the run's materialised views).
    pub table: String,
    /// Data files the scans opened, after skipping files by their statistics (a file read by
    /// two queries counts twice).
    pub files: u64,
    /// Bytes read from those files (DataFusion's `bytes_scanned`).
    pub bytes: u64,
}

/// Where each table's files live, and what was read from them.
#[derive(Debug, Default)]
pub struct ScanLog {
    /// (table name, object-store path prefix of its files).
    tables: Vec<(String, String)>,
    read: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl ScanLog {
    /// A log that names files whose path starts with `prefix` after `table`, for each
    /// `(table, prefix)`; the longest matching prefix wins. A prefix is an object-store path
    /// (a location's URL path; a leading `/` is ignored).
    pub fn new(tables: Vec<(String, String)>) -> Self {
        let tables =
            tables.into_iter().map(|(name, prefix)| (name, prefix.trim_start_matches('/').to_string())).collect();
        ScanLog { tables, read: Mutex::new(BTreeMap::new()) }
    }

    /// The log on `ctx`'s session, if the run installed one.
    pub fn of(ctx: &SessionContext) -> Option<Arc<ScanLog>> {
        ctx.state().config().get_extension::<ScanLog>()
    }

    /// Adds the scans of an executed plan.
    pub fn record(&self, plan: &Arc<dyn ExecutionPlan>) {
        if let Some(source) = plan.downcast_ref::<DataSourceExec>()
            && let Some(files) = source.data_source().downcast_ref::<FileScanConfig>()
        {
            // A large file may be split into byte ranges read by different partitions.
            let paths: std::collections::BTreeSet<String> =
                files.file_groups.iter().flat_map(|g| g.files()).map(|f| f.object_meta.location.to_string()).collect();
            let bytes = plan.metrics().and_then(|m| m.sum_by_name("bytes_scanned")).map_or(0, |v| v.as_usize());
            let table = paths.first().map_or_else(|| "(none)".to_string(), |path| self.table_of(path));
            if let Ok(mut read) = self.read.lock() {
                let entry = read.entry(table).or_default();
                entry.0 += paths.len() as u64;
                entry.1 += bytes as u64;
            }
        }
        for child in plan.children() {
            self.record(child);
        }
    }

    /// Everything read so far, by table name.
    pub fn totals(&self) -> Vec<TableScan> {
        let read = self.read.lock().map(|r| r.clone()).unwrap_or_default();
        read.into_iter().map(|(table, (files, bytes))| TableScan { table, files, bytes }).collect()
    }

    fn table_of(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        self.tables
            .iter()
            .filter(|(_, prefix)| path.starts_with(prefix.as_str()))
            .max_by_key(|(_, prefix)| prefix.len())
            .map_or_else(|| "other".to_string(), |(name, _)| name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_after_the_longest_matching_table_path() {
        let log = ScanLog::new(vec![
            ("output".into(), "/out/".into()),
            ("daily_spend".into(), "/out/daily_spend/".into()),
            ("usage".into(), "data/usage/".into()),
        ]);
        assert_eq!(log.table_of("out/daily_spend/usage_date=2026-11-01/part-0.parquet"), "daily_spend");
        assert_eq!(log.table_of("data/usage/part-0.parquet"), "usage");
        assert_eq!(log.table_of("data/usage_old/part-0.parquet"), "other");
    }
}
