//! `report` and `query` on the demo outputs: the page is self-contained, carries aggregates and
//! never a request or response text; `query` registers the outputs and inputs under their
//! names, refuses writes, names the missing table or column, and prints every format.
//! (The page's numbers are checked against the tables in a real browser by
//! scripts/report-browser-test.sh.)

use std::process::Command;

use deltalake::arrow::array::AsArray;
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use gateway_analytics::error::Error;
use gateway_analytics::query::{QueryFormat, QuerySession};
use gateway_analytics::report;
use gateway_analytics::window::RunWindow;

use crate::common::{date, demo_job, demo_window, run_job};

/// Every string of at least 12 characters with a space in a JSON document: the texts of
/// prompts and completions (and error messages) in a request or response body.
fn texts(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.len() >= 12 && s.contains(' ') => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| texts(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| texts(v, out)),
        _ => {}
    }
}

async fn column_strings(session: &QuerySession, sql: &str) -> Vec<String> {
    let results = session.run(sql).await.expect("query");
    let mut out = Vec::new();
    for batch in &results[0].batches {
        let column = cast(batch.column(0), &DataType::Utf8).expect("cast");
        out.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    out
}

#[tokio::test]
async fn the_report_is_self_contained_carries_aggregates_and_never_a_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = demo_job(&dir.path().join("out"));
    run_job(&job, demo_window()).await.expect("run");

    let path = dir.path().join("report.html");
    let bytes = report::write(&job, demo_window(), &path).await.expect("report");
    let html = std::fs::read_to_string(&path).expect("read report");
    assert_eq!(bytes, html.len());
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
    assert!(!html.to_lowercase().contains("<script"), "the page has a script");
    for pattern in ["src=", "http://", "https://", "<link", "@import", "url(http"] {
        assert!(!html.contains(pattern), "the page refers outside itself: {pattern}");
    }
    for (id, _) in report::html::SECTIONS {
        assert!(html.contains(&format!("<section id='{id}'")), "no section {id}");
    }
    // Aggregates, not rows: the demo's 6,380 usage rows and 1,922 daily_spend rows make a page
    // of a few hundred KiB, most of it the 2 x 18 x 24 heatmap cells and 6 x 72 hourly points.
    assert!(bytes < 600 * 1024, "the report is {bytes} bytes");
    // A labelled total carries its exact value: the window's cost.
    assert!(html.contains("data-key='cost' data-value='87.07526125'"), "no exact window cost");

    // A long window stays small: months instead of days, hours of day summed over the dates,
    // a point per day, and the dates without outputs as two ranges.
    let long = RunWindow::new(date("2026-09-01"), date("2026-12-31")).expect("window");
    let long_html = report::render(&job, long).await.expect("long report");
    assert!(long_html.contains("Cost per month by team"), "no monthly bars");
    assert!(long_html.contains("each hour of day summed over the window"), "heatmap not per hour of day");
    assert!(long_html.contains("slowest hour)"), "latency not per day");
    assert!(long_html.contains("2026-09-01 to 2026-10-31 were <b>never computed</b>"), "no range of missing dates");
    assert!(long_html.len() < bytes, "a 122-day report ({}) is larger than the 3-day one ({bytes})", long_html.len());

    // No request or response text: every text of every logged body (and request) is absent.
    let session = QuerySession::open(&job).await.expect("session");
    let mut bodies = column_strings(&session, "SELECT response FROM payload WHERE response IS NOT NULL").await;
    bodies.extend(column_strings(&session, "SELECT request FROM payload WHERE request IS NOT NULL LIMIT 500").await);
    let mut found = Vec::new();
    for body in &bodies {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
            texts(&value, &mut found);
        }
    }
    found.sort();
    found.dedup();
    assert!(found.len() > 50, "the fixtures' bodies should hold texts to look for ({})", found.len());
    for text in &found {
        assert!(!html.contains(text.as_str()), "the report contains body text {text:?}");
    }

    // query: outputs, ledger, inputs and reference tables under their names; nothing absent.
    let names: Vec<&str> = session.tables.iter().map(|t| t.name.as_str()).collect();
    for name in ["daily_spend", "alerts", "computed_dates", "usage", "payload", "traces", "served_entities", "prices"] {
        assert!(names.contains(&name), "{name} not registered: {names:?}");
    }
    assert!(!names.contains(&"usage_source"), "{names:?}");
    assert!(session.absent.is_empty(), "{:?}", session.absent);
    let results = session
        .run(
            "SELECT COUNT(*) AS n FROM daily_spend; \
             SELECT gateway_usage(response)['kind'] AS kind, COUNT(*) AS n FROM payload GROUP BY 1 ORDER BY 1",
        )
        .await
        .expect("two statements");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].rows(), 1);
    let mut csv = Vec::new();
    results[0].write(QueryFormat::Csv, &mut csv).expect("csv");
    assert_eq!(String::from_utf8(csv).expect("utf8"), "n\n1922\n");
    let mut json = Vec::new();
    session.run("SELECT CAST(SUM(cost_usd) AS DECIMAL(38,12)) AS cost FROM daily_spend").await.expect("sum")[0]
        .write(QueryFormat::Json, &mut json)
        .expect("json");
    assert_eq!(String::from_utf8(json).expect("utf8"), "{\"cost\":87.075261250000}\n");
    let mut parquet = Vec::new();
    results[1].write(QueryFormat::Parquet, &mut parquet).expect("parquet");
    let parquet_file = dir.path().join("result.parquet");
    std::fs::write(&parquet_file, parquet).expect("write parquet");
    let reader = deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&parquet_file).expect("open parquet"),
    )
    .expect("parquet reader");
    assert_eq!(reader.metadata().file_metadata().num_rows(), results[1].rows() as i64);
    let mut table = Vec::new();
    results[1].write(QueryFormat::Table, &mut table).expect("table");
    let table = String::from_utf8(table).expect("utf8");
    assert!(table.contains("| anthropic ") && table.trim_end().ends_with("rows)"), "{table}");

    dashboard_datasets_run_on_the_outputs(&session).await;

    // Errors name the table or the column, and are the user's to fix (exit code 2).
    let error = session.run("SELECT * FROM daily_spnd").await.expect_err("unknown table");
    assert!(matches!(error, Error::Usage(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("daily_spnd") && message.contains("the tables are: daily_spend"), "{message}");
    let message = session.run("SELECT cost FROM daily_spend").await.expect_err("unknown column").to_string();
    assert!(message.contains("No field named cost") && message.contains("cost_usd"), "{message}");
    // It reads: writes are refused.
    let message = session.run("INSERT INTO teams VALUES ('a', 'b')").await.expect_err("insert").to_string();
    assert!(message.contains("only reads"), "{message}");

    // The binary: one-shot SQL to stdout, stdin when not a terminal.
    let config = dir.path().join("job.toml");
    std::fs::write(
        &config,
        crate::common::job_text(Some(&crate::common::demo().join("gateway_payload")), &dir.path().join("out")),
    )
    .expect("job file");
    let output = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
        .args(["query", "--config"])
        .arg(&config)
        .args(["--format", "csv", "SELECT status, COUNT(*) AS dates FROM computed_dates GROUP BY status"])
        .output()
        .expect("query");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "status,dates\nfinished,3\n");
    let output = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
        .args(["query", "--config"])
        .arg(&config)
        .arg("SELECT nope FROM alerts")
        .output()
        .expect("query");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("No field named nope"));
}

#[tokio::test]
async fn without_outputs_the_report_and_query_say_what_is_absent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = demo_job(&dir.path().join("out"));
    let window = RunWindow::new(date("2026-11-02"), date("2026-11-02")).expect("window");
    let html = report::render(&job, window).await.expect("report of nothing");
    assert!(html.contains("2026-11-02 was <b>never computed</b>"), "no banner for a date never computed");
    assert!(html.contains("the output table <code>daily_spend</code> is absent"), "no note on the absent table");

    let session = QuerySession::open(&job).await.expect("session");
    assert!(session.absent.iter().any(|a| a.name == "daily_spend"), "{:?}", session.absent);
    let message = session.run("SELECT * FROM alerts").await.expect_err("absent table").to_string();
    assert!(message.contains("`alerts` is absent: no Delta table at"), "{message}");
    // The inputs are there all the same.
    let rows = session.run("SELECT COUNT(*) FROM usage").await.expect("usage")[0].rows();
    assert_eq!(rows, 1);
}

/// Every dataset of the bundle's dashboard (jobs/dashboards/*.lvdash.json) runs on the demo
/// outputs, its window parameter set to the demo window: the tables and columns it names exist,
/// and it finds rows. (Its SQL keeps to what both Databricks SQL and DataFusion accept.)
async fn dashboard_datasets_run_on_the_outputs(session: &QuerySession) {
    let path = crate::common::repo().join("jobs/dashboards/gateway_analytics.lvdash.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("dashboard JSON");
    let datasets = dashboard["datasets"].as_array().expect("datasets");
    assert!(datasets.len() >= 10, "{} datasets", datasets.len());
    for dataset in datasets {
        let name = dataset["name"].as_str().expect("name");
        let lines = dataset["queryLines"].as_array().expect("queryLines");
        let sql: String = lines.iter().map(|l| l.as_str().expect("line")).collect();
        let sql = sql.replace(":window.min", "DATE '2026-11-01'").replace(":window.max", "DATE '2026-11-03'");
        assert!(!sql.contains(':'), "dataset {name} has a parameter the test does not set: {sql}");
        let results = session.run(&sql).await.unwrap_or_else(|e| panic!("dataset {name}: {e}\n{sql}"));
        assert!(results[0].rows() > 0, "dataset {name} finds no rows on the demo outputs");
        if name == "key_figures" {
            let mut csv = Vec::new();
            results[0].write(QueryFormat::Csv, &mut csv).expect("csv");
            let csv = String::from_utf8(csv).expect("utf8");
            assert!(csv.lines().nth(1).is_some_and(|l| l.starts_with("87.07526125")), "{csv}");
        }
    }
}
