//! History from earlier outputs: a run whose history days are listed in the computed_dates
//! ledger reads only its own days of input, and writes exactly the rows a run reading all
//! history from the inputs writes.

use std::path::Path;

use super::common::{
    assert_same_lines, csv_text, date, demo, demo_job, job_text, parquet_bytes, read_table_where, run_job,
};
use gateway_analytics::config::JobConfig;
use gateway_analytics::outputs::OUTPUT_TABLES;
use gateway_analytics::summary::RunSummary;
use gateway_analytics::window::RunWindow;

fn window(from: &str, to: &str) -> RunWindow {
    RunWindow::new(date(from), date(to)).unwrap()
}

/// The rows of `table` for 2026-11-03 as CSV.
async fn rows_of_nov_3(output: &Path, table: &str) -> String {
    let column = if table == "rate_limit_recommendations" { "as_of_date" } else { "usage_date" };
    csv_text(&read_table_where(&output.join(table), &format!("{column} = DATE '2026-11-03'")).await)
}

fn files_read(summary: &RunSummary, table: &str) -> (u64, u64) {
    summary.scanned.iter().find(|s| s.table == table).map_or((0, 0), |s| (s.files, s.bytes))
}

#[tokio::test]
async fn a_run_over_a_complete_ledger_reads_one_day_and_writes_the_same_rows() {
    let all_inputs = tempfile::tempdir().unwrap();
    let nightly = tempfile::tempdir().unwrap();
    // The reference: Nov 3 computed with every history day read from the inputs.
    let reference = run_job(&demo_job(all_inputs.path()), window("2026-10-20", "2026-11-03")).await.unwrap();
    assert_eq!(reference.history.inputs_from, reference.history.history_from);

    // A backfill up to Nov 2 fills the ledger; the nightly run for Nov 3 then reads one day.
    // Its history reaches back to Oct 7 (spend_forecast's 28 days ending with Nov 3).
    run_job(&demo_job(nightly.path()), window("2026-10-07", "2026-11-02")).await.unwrap();
    let summary = run_job(&demo_job(nightly.path()), window("2026-11-03", "2026-11-03")).await.unwrap();
    assert_eq!(summary.history.history_from, date("2026-10-07"));
    assert_eq!(summary.history.inputs_from, date("2026-11-03"));

    // The fixtures hold one usage file per day: the run reads one of three, once.
    let (usage_files, usage_bytes) = files_read(&summary, "usage");
    assert_eq!(usage_files, 1, "{:?}", summary.scanned);
    assert!(usage_bytes * 2 < parquet_bytes(&demo().join("endpoint_usage")), "{:?}", summary.scanned);
    // The payload: that day's file and, for rows whose request_date disagrees, the day before.
    let (payload_files, _) = files_read(&summary, "payload");
    assert!((1..=2).contains(&payload_files), "{:?}", summary.scanned);
    assert!(files_read(&summary, "daily_spend (earlier output)").0 > 0, "{:?}", summary.scanned);
    assert!(files_read(&summary, "minute_demand (earlier output)").0 > 0, "{:?}", summary.scanned);

    for table in OUTPUT_TABLES.iter().map(|t| t.name) {
        let expected = rows_of_nov_3(all_inputs.path(), table).await;
        let actual = rows_of_nov_3(nightly.path(), table).await;
        assert!(expected.lines().count() > 1, "{table} has no rows for 2026-11-03");
        assert_same_lines(&expected, &actual, table);
    }
}

#[tokio::test]
async fn history_is_read_from_the_inputs_after_repricing_or_when_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), window("2026-10-07", "2026-11-02")).await.unwrap();
    let nov_3 = || window("2026-11-03", "2026-11-03");

    // Another price list (same prices, another version): the ledger's days do not count.
    let litellm =
        job_text(Some(&demo().join("gateway_payload")), dir.path()).replace("prices.csv", "litellm_prices.json");
    let repriced = JobConfig::parse(&litellm, &super::common::repo().join("jobs/test.toml")).unwrap();
    let summary = run_job(&repriced, nov_3()).await.unwrap();
    assert_eq!(summary.history.inputs_from, summary.history.history_from);

    // Rerun Oct 7 to Nov 2 at the CSV's version, then switch reuse off.
    run_job(&demo_job(dir.path()), window("2026-10-07", "2026-11-02")).await.unwrap();
    let off =
        job_text(Some(&demo().join("gateway_payload")), dir.path()) + "\n[engine]\nhistory_from_outputs = false\n";
    let off = JobConfig::parse(&off, &super::common::repo().join("jobs/test.toml")).unwrap();
    let summary = run_job(&off, nov_3()).await.unwrap();
    assert_eq!(summary.history.inputs_from, summary.history.history_from);
    let summary = run_job(&demo_job(dir.path()), nov_3()).await.unwrap();
    assert_eq!(summary.history.inputs_from, date("2026-11-03"));
}
