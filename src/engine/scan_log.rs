//! What a run read: files and bytes scanned per table, from DataFusion's scan metrics.
//!
//! The log lives on the session (a config extension), so every plan the run executes (the
//! materialised views, the outputs, the ledger lookup) records into it. The summary prints it:
//! it is how a one-day run shows that it read one day of input, not the history. Plans
//! announced with [`ScanLog::start`] also count while they run ([`ScanLog::so_far`]), for the
//! heartbeat of a long run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

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
    /// Plans started and not recorded yet (weak: a plan holds its hash tables).
    running: Mutex<Vec<Weak<dyn ExecutionPlan>>>,
}

impl ScanLog {
    /// A log that names files whose path starts with `prefix` after `table`, for each
    /// `(table, prefix)`; the longest matching prefix wins. A prefix is an object-store path
    /// (a location's URL path; a leading `/` is ignored).
    pub fn new(tables: Vec<(String, String)>) -> Self {
        let tables =
            tables.into_iter().map(|(name, prefix)| (name, prefix.trim_start_matches('/').to_string())).collect();
        ScanLog { tables, read: Mutex::new(BTreeMap::new()), running: Mutex::new(Vec::new()) }
    }

    /// The log on `ctx`'s session, if the run installed one.
    pub fn of(ctx: &SessionContext) -> Option<Arc<ScanLog>> {
        ctx.state().config().get_extension::<ScanLog>()
    }

    /// Announces a plan about to execute, so that what it reads counts in [`Self::so_far`]
    /// before it finishes.
    pub fn start(&self, plan: &Arc<dyn ExecutionPlan>) {
        if let Ok(mut running) = self.running.lock() {
            running.retain(|p| p.strong_count() > 0);
            running.push(Arc::downgrade(plan));
        }
    }

    /// Adds the scans of an executed plan.
    pub fn record(&self, plan: &Arc<dyn ExecutionPlan>) {
        if let Ok(mut running) = self.running.lock() {
            let done = Arc::downgrade(plan);
            running.retain(|p| p.strong_count() > 0 && !Weak::ptr_eq(p, &done));
        }
        self.add(plan);
    }

    fn add(&self, plan: &Arc<dyn ExecutionPlan>) {
        if let Some((table, files, bytes)) = self.scan_of(plan)
            && let Ok(mut read) = self.read.lock()
        {
            let entry = read.entry(table).or_default();
            entry.0 += files;
            entry.1 += bytes;
        }
        for child in plan.children() {
            self.add(child);
        }
    }

    /// The table, files and bytes read so far by one scan node (`None` for other nodes).
    fn scan_of(&self, plan: &Arc<dyn ExecutionPlan>) -> Option<(String, u64, u64)> {
        let source = plan.downcast_ref::<DataSourceExec>()?;
        let files = source.data_source().downcast_ref::<FileScanConfig>()?;
        // A large file may be split into byte ranges read by different partitions.
        let paths: std::collections::BTreeSet<String> =
            files.file_groups.iter().flat_map(|g| g.files()).map(|f| f.object_meta.location.to_string()).collect();
        let bytes = plan.metrics().and_then(|m| m.sum_by_name("bytes_scanned")).map_or(0, |v| v.as_usize());
        let table = paths.first().map_or_else(|| "(none)".to_string(), |path| self.table_of(path));
        Some((table, paths.len() as u64, bytes as u64))
    }

    /// Bytes read so far: by the plans recorded, and by those started and still running.
    pub fn so_far(&self) -> u64 {
        let recorded: u64 = self.read.lock().map(|r| r.values().map(|(_, bytes)| bytes).sum()).unwrap_or(0);
        let running: Vec<Arc<dyn ExecutionPlan>> =
            self.running.lock().map(|r| r.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default();
        recorded + running.iter().map(|plan| self.running_bytes(plan)).sum::<u64>()
    }

    fn running_bytes(&self, plan: &Arc<dyn ExecutionPlan>) -> u64 {
        self.scan_of(plan).map_or(0, |(_, _, bytes)| bytes)
            + plan.children().into_iter().map(|child| self.running_bytes(child)).sum::<u64>()
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

    #[test]
    fn plans_count_while_they_run_and_once_recorded() {
        use deltalake::datafusion::physical_plan::empty::EmptyExec;
        let log = ScanLog::default();
        let plan: Arc<dyn ExecutionPlan> =
            Arc::new(EmptyExec::new(Arc::new(deltalake::arrow::datatypes::Schema::empty())));
        log.start(&plan);
        assert_eq!(log.running.lock().unwrap().len(), 1);
        assert_eq!(log.so_far(), 0);
        log.record(&plan);
        assert!(log.running.lock().unwrap().is_empty());
        log.start(&plan);
        drop(plan);
        assert_eq!(log.so_far(), 0, "a dropped plan is not kept alive");
    }
}
