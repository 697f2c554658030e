//! The output tables on the demo fixtures: reviewed snapshots, identical reruns, per-date
//! replacement, and old outputs kept intact when a run fails.

use std::path::Path;

use super::common::{
    copy_dir, csv_text, date, demo, demo_job, demo_window, job_with_payload, read_table, run_job, table_text, version,
};
use gateway_analytics::progress::Progress;
use gateway_analytics::summary::SummaryFormat;
use gateway_analytics::window::RunWindow;

#[tokio::test]
async fn outputs_match_reviewed_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    for table in ["daily_spend", "hourly_errors", "spend_forecast"] {
        let text = csv_text(&read_table(&dir.path().join(table)).await);
        insta::assert_snapshot!(table, text);
    }
    let mut printed = Vec::new();
    summary.print(SummaryFormat::Table, &mut printed).unwrap();
    // Scratch file sizes depend on how rows were spread over partitions, and the run id on the
    // clock and the process; the rest is stable.
    let run_id = &summary.plan.run_id;
    let printed: Vec<String> = String::from_utf8(printed)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("read  scratch"))
        .map(|line| line.replace(run_id, "<run id>"))
        .collect();
    insta::assert_snapshot!("summary_table", printed.join("\n"));
}

#[tokio::test]
async fn rerunning_a_window_gives_identical_tables() {
    let dir = tempfile::tempdir().unwrap();
    let job = demo_job(dir.path());
    let tables = ["daily_spend", "hourly_errors", "alerts", "rate_limit_recommendations"];
    run_job(&job, demo_window()).await.unwrap();
    let mut first = Vec::new();
    for table in tables {
        first.push(table_text(&dir.path().join(table)).await);
    }
    let patches = std::fs::read_to_string(dir.path().join("recommendations/latest/chat-prod.json")).unwrap();
    let dated = std::fs::read_to_string(dir.path().join("recommendations/2026-11-03/chat-prod.json")).unwrap();
    assert_eq!(patches, dated, "latest holds the patches of the newest as-of date");
    run_job(&job, demo_window()).await.unwrap();
    for (table, before) in tables.iter().zip(&first) {
        assert_eq!(&table_text(&dir.path().join(table)).await, before, "{table}");
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("recommendations/latest/chat-prod.json")).unwrap(), patches);
    assert_eq!(version(&dir.path().join("daily_spend")).await, 1, "each run is one commit per table");
}

#[tokio::test]
async fn a_run_replaces_only_its_own_dates() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let before = csv_text(&read_table(&dir.path().join("hourly_errors")).await);
    // Rerun one day without a payload table: that day's latencies become NULL, others stay.
    let one_day = RunWindow::new(date("2026-11-02"), date("2026-11-02")).unwrap();
    run_job(&job_with_payload(None, dir.path()), one_day).await.unwrap();
    let after = csv_text(&read_table(&dir.path().join("hourly_errors")).await);
    let lines = |text: &str, day: &str| -> Vec<String> {
        text.lines().filter(|l| l.starts_with(day)).map(String::from).collect()
    };
    for day in ["2026-11-01", "2026-11-03"] {
        assert_eq!(lines(&before, day), lines(&after, day), "{day} must be untouched");
    }
    let (old, new) = (lines(&before, "2026-11-02"), lines(&after, "2026-11-02"));
    assert_eq!(old.len(), new.len());
    assert!(new.iter().all(|l| l.ends_with(",,,")), "2026-11-02 latencies must be NULL after the rerun");
    assert!(old.iter().any(|l| !l.ends_with(",,,")));
}

#[tokio::test]
async fn an_empty_window_clears_its_dates() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let quiet = RunWindow::new(date("2026-12-01"), date("2026-12-01")).unwrap();
    let summary = run_job(&demo_job(dir.path()), quiet).await.unwrap();
    for written in &summary.written {
        // The ledger lists the day as computed; every other table has no rows for it.
        let expected = if written.table == "computed_dates" { 1 } else { 0 };
        assert_eq!(written.rows, expected, "{}", written.table);
    }
    assert!(csv_text(&read_table(&dir.path().join("daily_spend")).await).contains("2026-11-03"));
}

#[tokio::test]
async fn a_failed_run_leaves_previous_outputs_intact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_job(&demo_job(&out), demo_window()).await.unwrap();
    let before = [table_text(&out.join("daily_spend")).await, table_text(&out.join("hourly_errors")).await];
    let versions = [version(&out.join("daily_spend")).await, version(&out.join("hourly_errors")).await];

    // A usage table whose data files are truncated: the schema checks pass, the scan fails.
    let broken = dir.path().join("usage_broken");
    copy_dir(&demo().join("endpoint_usage"), &broken);
    for entry in std::fs::read_dir(&broken).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        }
    }
    let text = super::common::job_text(Some(&demo().join("gateway_payload")), &out).replace(
        &format!("{:?}", demo().join("endpoint_usage").display().to_string()),
        &format!("{:?}", broken.display().to_string()),
    );
    let job = gateway_analytics::config::JobConfig::parse(&text, Path::new("/tmp/job.toml")).unwrap();
    let err = run_job(&job, demo_window()).await.unwrap_err();
    assert_eq!(err.exit_code(), gateway_analytics::error::EXIT_RUNTIME, "{err}");

    let after = [table_text(&out.join("daily_spend")).await, table_text(&out.join("hourly_errors")).await];
    assert_eq!(before, after);
    assert_eq!(versions, [version(&out.join("daily_spend")).await, version(&out.join("hourly_errors")).await]);
}

/// The one-line description of every Parquet scan of `plan`.
fn scans(plan: &std::sync::Arc<dyn deltalake::datafusion::physical_plan::ExecutionPlan>) -> Vec<String> {
    use deltalake::datafusion::physical_plan::displayable;
    let mut found = Vec::new();
    if plan.name() == "DataSourceExec" {
        found.push(displayable(plan.as_ref()).one_line().to_string());
    }
    for child in plan.children() {
        found.extend(scans(child));
    }
    found
}

#[tokio::test]
async fn the_payload_is_read_without_its_request_column_and_each_body_parsed_once() {
    use gateway_analytics::{engine::session, queries};

    let dir = tempfile::tempdir().unwrap();
    let ctx = session().unwrap();
    let one_day = RunWindow::new(date("2026-11-02"), date("2026-11-02")).unwrap();
    let job = demo_job(dir.path());
    let selection = gateway_analytics::outputs::OutputSelection::All;
    let inputs = gateway_analytics::plan::PlanInputs::load(&job).await.unwrap();
    let plan = gateway_analytics::plan::RunPlan::build(&job, one_day, &selection, "test".into(), inputs).await.unwrap();
    let prepared = gateway_analytics::segment::prepare_segment(
        &ctx,
        &job,
        &plan,
        &plan.segments[0],
        &[],
        &[],
        &Progress::hidden(),
    )
    .await
    .unwrap();
    // payload_parsed is materialised by prepare_segment; plan its query again to see the payload scan.
    let view = queries::BASE_VIEWS.iter().find(|v| v.name == "payload_parsed").unwrap();
    let sql = prepared.params.render(view.name, view.sql).unwrap();
    let plan = ctx.sql(&sql).await.unwrap().create_physical_plan().await.unwrap();
    let payload_scans: Vec<String> =
        scans(&plan).into_iter().filter(|text| text.contains("/gateway_payload/")).collect();
    assert_eq!(payload_scans.len(), 1, "{payload_scans:?}");
    let projection =
        payload_scans[0].split("projection=[").nth(1).unwrap().split(']').next().unwrap().to_string() + "]";
    assert!(projection.contains("response"), "{projection}");
    assert!(!projection.contains("request,") && !projection.contains("request]"), "{projection}");
    // One parse per body: the eight `body[...]` fields read one `gateway_usage` result. (An
    // optimizer rule that inlines the call into each field access would make it eight.)
    let text = deltalake::datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string();
    assert_eq!(text.matches("gateway_usage(").count(), 1, "{text}");
}

#[tokio::test]
async fn bucketed_joins_and_groupings_give_the_same_outputs_as_in_memory_ones() {
    use gateway_analytics::config::JobConfig;
    use gateway_analytics::outputs::OUTPUT_TABLES;

    // With no room for hash tables every join and grouping on request ids runs in buckets
    // (the plans are checked by the unit tests of request_id_buckets).
    let (in_memory, bucketed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_job(&demo_job(in_memory.path()), demo_window()).await.unwrap();
    let text = super::common::job_text(Some(&demo().join("gateway_payload")), bucketed.path())
        + "\n[engine]\nhash_join_limit_mib = 0\n";
    let job = JobConfig::parse(&text, &super::common::repo().join("jobs/test.toml")).unwrap();
    run_job(&job, demo_window()).await.unwrap();
    for table in OUTPUT_TABLES {
        let (left, right) =
            (table_text(&in_memory.path().join(table.name)).await, table_text(&bucketed.path().join(table.name)).await);
        super::common::assert_same_lines(&left, &right, table.name);
    }
}

#[tokio::test]
async fn a_run_of_named_outputs_writes_only_those_with_the_rows_of_a_full_run() {
    use gateway_analytics::error::EXIT_BAD_CONFIG_OR_INPUT;
    use gateway_analytics::outputs::OutputSelection;

    let names = |list: &str| list.split(',').map(String::from).collect::<Vec<_>>();
    let (full, only) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_job(&demo_job(full.path()), demo_window()).await.unwrap();
    // alerts read data_quality and spend_forecast, which are computed and written with them.
    let selected = OutputSelection::named(&names("daily_spend,alerts")).unwrap();
    let job = demo_job(only.path());
    let options = gateway_analytics::run::RunOptions::default();
    gateway_analytics::run::run(&job, demo_window(), &selected, &options, &Progress::hidden()).await.unwrap();
    let mut written: Vec<String> = std::fs::read_dir(only.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    // No rate-limit patches; the ledger marks the dates partial (below).
    assert_eq!(written, ["_lease", "alerts", "computed_dates", "daily_spend", "data_quality", "spend_forecast"]);
    for table in ["alerts", "daily_spend", "data_quality", "spend_forecast"] {
        let (left, right) = (table_text(&full.path().join(table)).await, table_text(&only.path().join(table)).await);
        super::common::assert_same_lines(&left, &right, table);
    }
    for bad in ["daily_spend,daily_spendd", "computed_dates"] {
        let error = OutputSelection::named(&names(bad)).unwrap_err();
        assert_eq!(error.exit_code(), EXIT_BAD_CONFIG_OR_INPUT, "{error}");
    }
}

/// The column names of the first table in `## <name>` of docs/OUTPUTS.md, in order.
pub(super) fn documented_columns(name: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(super::common::repo().join("docs/OUTPUTS.md")).unwrap();
    let section = doc.split(&format!("\n## {name}\n")).nth(1).unwrap_or_else(|| panic!("no section for {name}"));
    let section = section.split("\n## ").next().unwrap();
    let rows = section.lines().skip_while(|l| !l.starts_with("| column |")).skip(2).take_while(|l| l.starts_with('|'));
    // A row may define several columns at once: `a`, `b`, `c`.
    rows.flat_map(|row| {
        let cell = row.split('|').nth(1).unwrap().to_string();
        cell.split(',').map(|name| name.trim().trim_matches('`').to_string()).collect::<Vec<_>>()
    })
    .collect()
}

#[tokio::test]
async fn every_output_column_is_defined_in_the_docs_in_table_order() {
    use gateway_analytics::outputs::OUTPUT_TABLES;
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    // The new AI Gateway's outputs need its tables: tests/integration/ai_gateway.rs checks them.
    for name in OUTPUT_TABLES.iter().map(|t| t.name).chain(["computed_dates"]) {
        let url = url::Url::from_directory_path(dir.path().join(name)).unwrap();
        let table = deltalake::open_table(url).await.unwrap();
        let schema = table.snapshot().unwrap().schema();
        let columns: Vec<String> = schema.fields().map(|f| f.name().to_string()).collect();
        assert_eq!(documented_columns(name), columns, "docs/OUTPUTS.md ## {name} against the table");
    }
}
