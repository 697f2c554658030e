//! Bad job files and bad inputs fail before any work, with messages that name the problem,
//! and with the documented exit code.

use std::path::Path;
use std::process::Command;

use gateway_analytics::config::JobConfig;
use gateway_analytics::engine::session;
use gateway_analytics::error::{EXIT_BAD_CONFIG_OR_INPUT, Error};
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;

use super::common::{demo, demo_window, job_text, repo, run_job, write_delta};

fn job_with_usage(usage: &Path, output: &Path) -> JobConfig {
    let text = job_text(None, output).replace(
        &format!("{:?}", demo().join("endpoint_usage").display().to_string()),
        &format!("{:?}", usage.display().to_string()),
    );
    JobConfig::parse(&text, &repo().join("jobs/test.toml")).unwrap()
}

/// Writes the demo usage table through `select` (over table `usage`) to `target`.
async fn derived_usage(target: &Path, select: &str) {
    let ctx = session().unwrap();
    let source = Location::resolve(&demo().join("endpoint_usage").display().to_string(), Path::new("/")).unwrap();
    ctx.register_table("usage", delta_provider(&ctx, "usage", &source, &Default::default()).await.unwrap()).unwrap();
    write_delta(target, ctx.sql(select).await.unwrap().collect().await.unwrap()).await;
}

#[tokio::test]
async fn missing_table_names_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_with_usage(&dir.path().join("nowhere"), &dir.path().join("out"));
    let err = run_job(&job, demo_window()).await.unwrap_err();
    assert!(matches!(err, Error::InputUnavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("input `usage`") && message.contains("nowhere"), "{message}");
    assert_eq!(err.exit_code(), EXIT_BAD_CONFIG_OR_INPUT);
    assert!(!dir.path().join("out").exists(), "nothing may be written when an input is missing");
}

#[tokio::test]
async fn a_folder_that_is_not_a_delta_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let err =
        run_job(&job_with_usage(&dir.path().join("empty"), &dir.path().join("out")), demo_window()).await.unwrap_err();
    assert!(err.to_string().contains("no Delta table here"), "{err}");
}

#[tokio::test]
async fn missing_column_names_table_column_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let usage = dir.path().join("usage_without_requester");
    derived_usage(&usage, "SELECT * EXCLUDE (requester) FROM usage").await;
    let err = run_job(&job_with_usage(&usage, &dir.path().join("out")), demo_window()).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::MissingColumn { .. }), "{err:?}");
    assert!(
        message.contains("input `usage`") && message.contains("`requester`") && message.contains("STRING"),
        "{message}"
    );
    assert_eq!(err.exit_code(), EXIT_BAD_CONFIG_OR_INPUT);
}

#[tokio::test]
async fn wrong_type_names_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let usage = dir.path().join("usage_string_status");
    derived_usage(&usage, "SELECT * REPLACE (CAST(status_code AS VARCHAR) AS status_code) FROM usage").await;
    let err = run_job(&job_with_usage(&usage, &dir.path().join("out")), demo_window()).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::WrongColumnType { .. }), "{err:?}");
    assert!(message.contains("`status_code`") && message.contains("expected INT or BIGINT"), "{message}");
}

#[test]
fn bad_job_files_exit_with_the_configuration_code() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[inputs\nusage = 1", "TOML parse error"),
        (
            "[inputs]\nusage = \"a\"\n[output]\nlocation = \"o\"\n",
            "`inputs.served_entities` (system.serving.served_entities) is required",
        ),
        (
            "[inputs]\nusage = \"a\"\nserved_entities = \"b\"\nteam = \"t.csv\"\n[output]\nlocation = \"o\"\n",
            "unknown field `team`",
        ),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("job.toml");
        std::fs::write(&path, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
            .args(["run", "--config"])
            .arg(&path)
            .args(["--from", "2026-11-01"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(i32::from(EXIT_BAD_CONFIG_OR_INPUT)), "{stderr}");
        assert!(stderr.contains(needle) && stderr.contains("job.toml"), "{needle}: {stderr}");
    }
}

#[test]
fn reversed_window_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
        .args(["run", "--config"])
        .arg(repo().join("jobs/demo.toml"))
        .args(["--from", "2026-11-03", "--to", "2026-11-01"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(i32::from(EXIT_BAD_CONFIG_OR_INPUT)));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is after --to"));
}

/// A memory budget too small for the queries fails the run (nothing written) with a message
/// that names the setting to raise; the exit code is the runtime one.
#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_memory_budget_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let text =
        format!("{}\n[engine]\nmemory_limit_mib = 16\n", job_text(Some(&demo().join("gateway_payload")), &output));
    let job = JobConfig::parse(&text, &repo().join("jobs/test.toml")).expect("job");
    assert_eq!(job.settings.engine.memory_limit_mib, 16);
    let err = run_job(&job, demo_window()).await.expect_err("16 MiB cannot hold the demo's sorts");
    let message = err.to_string();
    assert!(message.contains("Resources exhausted"), "{message}");
    assert!(message.contains("`[engine] memory_limit_mib`"), "{message}");
    assert_eq!(err.exit_code(), gateway_analytics::error::EXIT_RUNTIME);
    assert!(!output.join("daily_spend").exists(), "no output may be written");
}
