//! Outputs that stay right in operation: each test makes the bad thing happen (late rows, a
//! privacy delete, a backfill, a run killed between two commits, two runs at once, an empty
//! input) and checks the outputs after.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use gateway_analytics::config::JobConfig;
use gateway_analytics::error::{EXIT_BAD_CONFIG_OR_INPUT, EXIT_LEASE_HELD, Error};
use gateway_analytics::outputs::{OUTPUT_TABLES, OutputSelection};
use gateway_analytics::plan::{PlanInputs, RunPlan};
use gateway_analytics::progress::Progress;
use gateway_analytics::run::{self, RunOptions};
use gateway_analytics::window::RunWindow;

use super::common::{
    assert_same_lines, copied_demo, csv_text, date, demo, demo_job, query_table, read_table, read_table_where, run_job,
    write_delta,
};

fn window(from: &str, to: &str) -> RunWindow {
    RunWindow::new(date(from), date(to)).unwrap()
}

fn job_of(text: &str, dir: &Path) -> JobConfig {
    JobConfig::parse(text, &dir.join("job.toml")).unwrap()
}

/// The rows of `table` on the dates `from..=to` (its partition column), as CSV.
async fn rows_between(output: &Path, table: &str, from: &str, to: &str) -> String {
    let column = if table == "rate_limit_recommendations" { "as_of_date" } else { "usage_date" };
    let predicate = format!("{column} BETWEEN DATE '{from}' AND DATE '{to}'");
    csv_text(&read_table_where(&output.join(table), &predicate).await)
}

async fn requests_on(output: &Path, day: &str) -> i64 {
    let sql = format!("SELECT CAST(SUM(requests) AS BIGINT) FROM t WHERE usage_date = DATE '{day}'");
    let batches = query_table(&output.join("daily_spend"), &sql).await;
    let column = cast(batches[0].column(0), &DataType::Int64).unwrap();
    column.as_primitive::<deltalake::arrow::datatypes::Int64Type>().value(0)
}

/// The ledger's (date, status, run_id) rows.
async fn ledger(output: &Path) -> Vec<(String, String, String)> {
    let sql = "SELECT CAST(usage_date AS VARCHAR) AS day, status, run_id FROM t ORDER BY day";
    let batches = query_table(&output.join("computed_dates"), sql).await;
    let mut rows = Vec::new();
    for batch in &batches {
        let text = |i: usize| cast(batch.column(i), &DataType::Utf8).unwrap();
        let (dates, statuses, runs) = (text(0), text(1), text(2));
        for row in 0..batch.num_rows() {
            let value = |a: &std::sync::Arc<dyn Array>| a.as_string::<i32>().value(row).to_string();
            rows.push((value(&dates), value(&statuses), value(&runs)));
        }
    }
    rows
}

fn recomputed_dates(summary: &gateway_analytics::summary::RunSummary) -> Vec<String> {
    summary.plan.recomputed.iter().map(|r| r.date.to_string()).collect()
}

/// Appends copies of `rows` rows of `day` (new request ids) to the usage table, as one new
/// Delta version, as the late-arrival of rows Databricks had not landed yet.
async fn append_late_usage(usage: &Path, day: &str, rows: usize) {
    let sql = format!(
        "SELECT * REPLACE (concat('late-', databricks_request_id) AS databricks_request_id) FROM t \
         WHERE CAST(request_time AS DATE) = DATE '{day}' ORDER BY databricks_request_id LIMIT {rows}"
    );
    let late = query_table(usage, &sql).await;
    let url = url::Url::from_directory_path(usage).unwrap();
    let table = deltalake::open_table(url).await.unwrap();
    table.write(late).with_save_mode(deltalake::protocol::SaveMode::Append).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn late_rows_are_picked_up_by_the_next_nights_run() {
    let dir = tempfile::tempdir().unwrap();
    let (fixtures, text) = copied_demo(dir.path(), "");
    let job = job_of(&text, dir.path());
    let output = dir.path().join("out");
    // A backfill from before the data begins fills the ledger over every history day (back to
    // Oct 7: spend_forecast reads the 28 days ending with each day).
    run_job(&job, window("2026-10-07", "2026-11-02")).await.unwrap();
    let nightly = run_job(&job, window("2026-11-03", "2026-11-03")).await.unwrap();
    assert!(nightly.plan.recomputed.is_empty(), "{:?}", nightly.plan.recomputed);
    let before = requests_on(&output, "2026-11-01").await;

    append_late_usage(&fixtures.join("endpoint_usage"), "2026-11-01", 40).await;
    let late_version = super::common::version(&fixtures.join("endpoint_usage")).await;

    // The plan names the dates the late rows touch (the day and, through request matching,
    // the days either side) and why; the night already computed after them is left alone.
    let plan_of = |job: JobConfig| async move {
        let inputs = PlanInputs::load(&job).await.unwrap();
        RunPlan::build(&job, window("2026-11-04", "2026-11-04"), &OutputSelection::All, "t".into(), inputs)
            .await
            .unwrap()
    };
    let plan = plan_of(job.clone()).await;
    let dates: Vec<String> = plan.recomputed.iter().map(|r| r.date.to_string()).collect();
    assert_eq!(dates, ["2026-10-31", "2026-11-01", "2026-11-02"]);
    let reason = format!("late rows in usage v{late_version}");
    assert!(plan.recomputed.iter().all(|r| r.reasons == [reason.clone()]), "{:?}", plan.recomputed);
    assert_eq!(plan.segments.len(), 2, "{:?}", plan.segments);

    // With a horizon of one day the same dates are reported stale and not recomputed.
    let short = job_of(&format!("{text}\n[engine]\nrecompute_horizon_days = 1\n"), dir.path());
    let short_plan = plan_of(short).await;
    assert!(short_plan.recomputed.is_empty(), "{:?}", short_plan.recomputed);
    let stale: Vec<String> = short_plan.stale.iter().map(|s| s.date.to_string()).collect();
    assert_eq!(stale, ["2026-10-31", "2026-11-01", "2026-11-02"]);

    let next_night = run_job(&job, window("2026-11-04", "2026-11-04")).await.unwrap();
    assert_eq!(recomputed_dates(&next_night), ["2026-10-31", "2026-11-01", "2026-11-02"]);
    assert_eq!(requests_on(&output, "2026-11-01").await, before + 40);
    let rows = ledger(&output).await;
    let run_of = |day: &str| rows.iter().find(|r| r.0 == day).map(|r| r.2.clone()).unwrap();
    assert_eq!(run_of("2026-11-01"), next_night.plan.run_id);
    assert_eq!(run_of("2026-11-03"), nightly.plan.run_id, "2026-11-03 is not recomputed");
    assert!(rows.iter().all(|r| r.1 == "finished"), "{rows:?}");

    // The recomputed dates hold exactly what a fresh run over today's inputs writes.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_job =
        job_of(&text.replace(&output.display().to_string(), &fresh.path().display().to_string()), dir.path());
    run_job(&fresh_job, window("2026-10-31", "2026-11-02")).await.unwrap();
    for table in OUTPUT_TABLES.iter().map(|t| t.name) {
        let expected = rows_between(fresh.path(), table, "2026-10-31", "2026-11-02").await;
        let actual = rows_between(&output, table, "2026-10-31", "2026-11-02").await;
        assert_same_lines(&expected, &actual, table);
    }

    // Every other ledger date (2026-10-07..30 and 2026-11-03) was checked and found unchanged:
    // their ledger versions advanced, so the next night reads only the commits after this one.
    assert_eq!(next_night.plan.checked_dates, 25);
    // The night after, with nothing new, recomputes nothing and takes all history from the
    // outputs: it reads no usage file of an earlier day.
    let quiet = run_job(&job, window("2026-11-05", "2026-11-05")).await.unwrap();
    assert!(quiet.plan.recomputed.is_empty(), "{:?}", quiet.plan.recomputed);
    assert_eq!(quiet.history.inputs_from, date("2026-11-05"));
    let usage_files = quiet.scanned.iter().find(|s| s.table == "usage").map_or(0, |s| s.files);
    assert_eq!(usage_files, 0, "{:?}", quiet.scanned);
}

/// Every string value of every column of every row of the output tables under `output`.
async fn every_string_in_outputs(output: &Path) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    for table in OUTPUT_TABLES.iter().map(|t| t.name).chain(["computed_dates"]) {
        if !output.join(table).exists() {
            continue;
        }
        for batch in read_table(&output.join(table)).await {
            for column in batch.columns() {
                if let Ok(text) = cast(column, &DataType::Utf8) {
                    values.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
                }
            }
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread")]
async fn a_privacy_delete_with_deletion_vectors_removes_the_requester_from_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let (fixtures, text) = copied_demo(dir.path(), "");
    let job = job_of(&text, dir.path());
    let output = dir.path().join("out");
    run_job(&job, window("2026-11-01", "2026-11-03")).await.unwrap();
    // A user (an email) who called on 2026-11-02.
    let batches = query_table(
        &output.join("daily_spend"),
        "SELECT requester FROM t WHERE usage_date = DATE '2026-11-02' AND requester LIKE '%@%' \
         GROUP BY requester ORDER BY SUM(requests) DESC, requester LIMIT 1",
    )
    .await;
    let requester = cast(batches[0].column(0), &DataType::Utf8).unwrap().as_string::<i32>().value(0).to_string();
    let mentions = |values: &BTreeSet<String>| values.iter().filter(|v| v.contains(&requester)).count();
    assert!(mentions(&every_string_in_outputs(&output).await) > 0, "{requester} is in the outputs to begin with");

    // Databricks deletes the user's rows with deletion vectors, in the usage copy and the
    // inference table.
    for table in ["endpoint_usage", "gateway_payload"] {
        let uuid = uuid::Uuid::from_u128(0x5eed_0000 + table.len() as u128);
        gateway_analytics::generate::deletion_vectors::privacy_delete_with_deletion_vectors(
            &fixtures.join(table),
            &requester,
            uuid,
        )
        .await
        .unwrap();
    }
    let next_night = run_job(&job, window("2026-11-04", "2026-11-04")).await.unwrap();
    let recomputed = recomputed_dates(&next_night);
    assert!(recomputed.contains(&"2026-11-02".to_string()), "{recomputed:?}");
    let reasons: Vec<&String> = next_night.plan.recomputed.iter().flat_map(|r| &r.reasons).collect();
    assert!(reasons.iter().any(|r| r.starts_with("rows deleted from usage v")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("rows deleted from payload v")), "{reasons:?}");
    let left: Vec<String> =
        every_string_in_outputs(&output).await.into_iter().filter(|v| v.contains(&requester)).collect();
    assert!(left.is_empty(), "{requester} is still in the outputs: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_leaves_the_latest_patches_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let job = demo_job(dir.path());
    let latest = dir.path().join("recommendations/latest");
    let read_folder = |folder: &Path| -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read_to_string(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    run_job(&job, window("2026-11-03", "2026-11-03")).await.unwrap();
    let nightly = read_folder(&latest);
    assert!(nightly.iter().any(|(name, text)| name == "AS_OF" && text.contains("2026-11-03")), "{nightly:?}");
    assert!(nightly.len() > 1, "the demo proposes changes: {nightly:?}");

    // A backfill of earlier dates writes its own as-of folder and leaves latest alone.
    run_job(&job, window("2026-11-01", "2026-11-02")).await.unwrap();
    assert_eq!(read_folder(&latest), nightly);
    let backfilled = read_folder(&dir.path().join("recommendations/2026-11-02"));
    assert!(!backfilled.is_empty());
    assert_eq!(read_folder(&dir.path().join("recommendations/2026-11-03")), nightly[1..].to_vec());
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
}

/// `run` of `job` with `args`, its temporary folder `temp`, maybe stopped at a `failpoint`
/// (the process exits there without cleaning up, as if killed).
fn run_binary(job: &Path, args: &[&str], temp: &Path, failpoint: Option<&str>) -> Output {
    let mut command = binary();
    command.arg("run").arg("--config").arg(job).args(args).args(["--format", "none"]).env("TMPDIR", temp);
    if let Some(point) = failpoint {
        command.env("GATEWAY_ANALYTICS_FAILPOINT", point);
    }
    command.output().unwrap()
}

/// The run folders (`gateway-analytics-*`) in `temp`.
fn run_folders(temp: &Path) -> Vec<String> {
    let names = std::fs::read_dir(temp).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
    names.filter(|n| n.starts_with("gateway-analytics-")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_between_two_table_commits_is_healed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let job = dir.path().join("job.toml");
    let text = super::common::job_text(Some(&demo().join("gateway_payload")), &output);
    std::fs::write(&job, format!("{text}\n[engine]\nlease_ttl_seconds = 10\n")).unwrap();

    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let killed =
        run_binary(&job, &["--from", "2026-11-01", "--to", "2026-11-03"], &temp, Some("after_commit:hourly_errors"));
    assert_eq!(killed.status.code(), Some(86), "{}", String::from_utf8_lossy(&killed.stderr));
    // The killed run could not remove its folder (scratch views, rows waiting for commits).
    let left = run_folders(&temp).len();
    assert!(left > 0, "the killed run's folders");
    let rows = ledger(&output).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.1 == "started"), "{rows:?}");
    assert!(output.join("hourly_errors").exists() && !output.join("alerts").exists());

    // The next night's plan recomputes the unfinished dates first, and takes no history from
    // them (they come from the recomputing segment instead).
    let planned = binary()
        .args(["plan", "--config"])
        .arg(&job)
        .args(["--from", "2026-11-04", "--format", "json"])
        .output()
        .unwrap();
    assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let recomputed: Vec<&str> =
        plan["recomputed"].as_array().unwrap().iter().map(|r| r["date"].as_str().unwrap()).collect();
    assert_eq!(recomputed, ["2026-11-01", "2026-11-02", "2026-11-03"]);
    assert!(plan["recomputed"][0]["reasons"][0].as_str().unwrap().contains("an unfinished run"), "{plan}");
    assert_eq!(plan["segments"][0]["window"]["to"], "2026-11-03");
    assert_eq!(plan["segments"][1]["stored_history"], serde_json::json!([]));
    // Each input lists the columns the queries read of it (what staged IO copies): never the
    // payload's request text.
    let payload = plan["inputs"].as_array().unwrap().iter().find(|i| i["input"] == "payload").unwrap();
    let columns: Vec<&str> = payload["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(columns.contains(&"response") && columns.contains(&"request_date"), "{columns:?}");
    assert!(!columns.contains(&"request"), "{columns:?}");

    // It waits for the killed run's lease to expire, then heals.
    let healed = run_binary(&job, &["--from", "2026-11-04", "--wait", "60", "-v"], &temp, None);
    assert!(healed.status.success(), "{}", String::from_utf8_lossy(&healed.stderr));
    // ... and removes the killed run's folder, saying so; its own is gone when it ends.
    assert_eq!(run_folders(&temp), Vec::<String>::new());
    let log = String::from_utf8_lossy(&healed.stderr);
    assert!(log.contains(&format!("removed {left} temporary folder(s) of")), "{log}");
    let rows = ledger(&output).await;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.1 == "finished"), "{rows:?}");

    let reference = tempfile::tempdir().unwrap();
    run_job(&demo_job(reference.path()), window("2026-11-01", "2026-11-03")).await.unwrap();
    for table in OUTPUT_TABLES.iter().map(|t| t.name) {
        let expected = rows_between(reference.path(), table, "2026-11-01", "2026-11-03").await;
        let actual = rows_between(&output, table, "2026-11-01", "2026-11-03").await;
        assert_same_lines(&expected, &actual, table);
    }
}

/// The run id in the newest commit of a Delta table.
fn last_writer(table: &Path) -> String {
    let log = table.join("_delta_log");
    let newest = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().contains("checkpoint"))
        .max()
        .unwrap();
    for line in std::fs::read_to_string(&newest).unwrap().lines() {
        let action: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(run) = action.pointer("/commitInfo/gateway_analytics/run_id") {
            return run.as_str().unwrap().to_string();
        }
    }
    panic!("{} has no run id", newest.display());
}

#[test]
fn two_runs_on_one_output_location_never_mix_their_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let text = super::common::job_text(Some(&demo().join("gateway_payload")), &output);
    // The second job prices tokens differently, so its rows differ from the first's.
    let prices = std::fs::read_to_string(demo().join("prices.csv")).unwrap();
    std::fs::write(dir.path().join("prices-b.csv"), prices.replacen(".", "9.", 2)).unwrap();
    let jobs = [dir.path().join("a.toml"), dir.path().join("b.toml")];
    std::fs::write(&jobs[0], &text).unwrap();
    let b_prices = format!("prices = {:?}", dir.path().join("prices-b.csv").display().to_string());
    let b_text: String = text
        .lines()
        .map(|l| if l.starts_with("prices = ") { b_prices.clone() } else { l.to_string() } + "\n")
        .collect();
    std::fs::write(&jobs[1], b_text).unwrap();

    let tables: Vec<&str> = OUTPUT_TABLES.iter().map(|t| t.name).chain(["computed_dates"]).collect();
    for round in 0..4 {
        let wait = if round % 2 == 0 { "0" } else { "120" };
        let children: Vec<_> = jobs
            .iter()
            .map(|job| {
                binary()
                    .arg("run")
                    .arg("--config")
                    .arg(job)
                    .args(["--from", "2026-11-01", "--to", "2026-11-03", "--format", "none", "--wait", wait])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outcomes: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let codes: Vec<Option<i32>> = outcomes.iter().map(|o| o.status.code()).collect();
        for outcome in &outcomes {
            let stderr = String::from_utf8_lossy(&outcome.stderr);
            match outcome.status.code() {
                Some(0) => {}
                Some(code) if code == i32::from(EXIT_LEASE_HELD) && wait == "0" => {
                    assert!(stderr.contains("another run holds the lease") && stderr.contains("pid"), "{stderr}");
                }
                other => panic!("round {round}: exit {other:?}: {stderr}"),
            }
        }
        assert!(codes.contains(&Some(0)), "round {round}: {codes:?}");
        if wait != "0" {
            assert_eq!(codes, [Some(0), Some(0)], "round {round}: with --wait both runs finish");
        }
        // Every table was last written by one run, whose ledger rows say it finished.
        let writers: BTreeSet<String> = tables.iter().map(|t| last_writer(&output.join(t))).collect();
        assert_eq!(writers.len(), 1, "round {round}: tables written by different runs: {writers:?}");
        let writer = writers.into_iter().next().unwrap();
        let rows = tokio::runtime::Runtime::new().unwrap().block_on(ledger(&output));
        assert!(rows.iter().all(|r| r.1 == "finished" && r.2 == writer), "round {round}: {rows:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_inputs_never_replace_good_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    run_job(&demo_job(&output), window("2026-11-01", "2026-11-03")).await.unwrap();
    let before = requests_on(&output, "2026-11-02").await;
    assert!(before > 0);

    // A usage copy whose 2026-11-02 never arrived (a failed copy job).
    let usage = dir.path().join("usage_without_nov_2");
    let rows = query_table(
        &demo().join("endpoint_usage"),
        "SELECT * FROM t WHERE CAST(request_time AS DATE) <> DATE '2026-11-02'",
    )
    .await;
    write_delta(&usage, rows).await;
    let text = super::common::job_text(Some(&demo().join("gateway_payload")), &output).replace(
        &format!("{:?}", demo().join("endpoint_usage").display().to_string()),
        &format!("{:?}", usage.display().to_string()),
    );
    let job = job_of(&text, dir.path());
    let error = run_job(&job, window("2026-11-02", "2026-11-02")).await.unwrap_err();
    assert!(matches!(error, Error::EmptyInputs { .. }), "{error:?}");
    assert_eq!(error.exit_code(), EXIT_BAD_CONFIG_OR_INPUT);
    let message = error.to_string();
    assert!(message.contains("usage table has no rows") && message.contains("2026-11-02"), "{message}");
    assert_eq!(requests_on(&output, "2026-11-02").await, before, "the date's outputs are unchanged");

    // An empty served_entities table is refused the same way.
    let served = dir.path().join("served_entities_empty");
    let schema = gateway_analytics::generate::tables::served_entities_schema();
    write_delta(&served, vec![deltalake::arrow::array::RecordBatch::new_empty(schema)]).await;
    let served_text = super::common::job_text(Some(&demo().join("gateway_payload")), &output).replace(
        &format!("{:?}", demo().join("served_entities").display().to_string()),
        &format!("{:?}", served.display().to_string()),
    );
    let error = run_job(&job_of(&served_text, dir.path()), window("2026-11-03", "2026-11-03")).await.unwrap_err();
    assert!(error.to_string().contains("served_entities is empty"), "{error}");

    // Asked for, the empty day replaces the outputs.
    let options = RunOptions { allow_empty: true, ..RunOptions::default() };
    let window = window("2026-11-02", "2026-11-02");
    run::run(&job, window, &OutputSelection::All, &options, &Progress::hidden()).await.unwrap();
    let left = query_table(&output.join("daily_spend"), "SELECT * FROM t WHERE usage_date = DATE '2026-11-02'").await;
    assert_eq!(left.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
}
