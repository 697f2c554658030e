//! The new AI Gateway (Beta) tables as inputs: reviewed snapshots of its outputs on the
//! fixtures (fixtures/ai_gateway, jobs/ai_gateway.toml), the input contract's messages, and
//! the generator reproducing the fixtures.

use std::path::Path;

use gateway_analytics::config::JobConfig;
use gateway_analytics::generate::{generate, read_manifest};
use gateway_analytics::progress::Progress;
use gateway_analytics::window::RunWindow;

use super::common::{assert_same_lines, csv_text, date, read_table, repo, run_job, table_text};

fn fixtures() -> std::path::PathBuf {
    repo().join("fixtures/ai_gateway")
}

/// `jobs/ai_gateway.toml` writing into `output`, with `replace` applied to its lines.
fn job(output: &Path, replace: &[(&str, &str)]) -> JobConfig {
    let text = std::fs::read_to_string(repo().join("jobs/ai_gateway.toml")).unwrap();
    let mut text = text.replace("../out/ai_gateway", &output.display().to_string());
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    JobConfig::parse(&text, &repo().join("jobs/ai_gateway.toml")).expect("job")
}

fn window() -> RunWindow {
    RunWindow::new(date("2026-11-01"), date("2026-11-02")).unwrap()
}

#[tokio::test]
async fn ai_gateway_outputs_match_reviewed_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&job(dir.path(), &[]), window()).await.unwrap();
    for table in gateway_analytics::ai_gateway::OUTPUTS.map(|t| t.name) {
        let text = csv_text(&read_table(&dir.path().join(table)).await);
        insta::assert_snapshot!(table, text);
    }
    // A rerun of the same window writes the same rows.
    let first = table_text(&dir.path().join("agent_sessions")).await;
    run_job(&job(dir.path(), &[]), window()).await.unwrap();
    assert_eq!(table_text(&dir.path().join("agent_sessions")).await, first);
}

#[tokio::test]
async fn every_ai_gateway_output_column_is_defined_in_the_docs_in_table_order() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&job(dir.path(), &[]), window()).await.unwrap();
    for table in gateway_analytics::ai_gateway::OUTPUTS {
        let url = url::Url::from_directory_path(dir.path().join(table.name)).unwrap();
        let delta = deltalake::open_table(url).await.unwrap();
        let columns: Vec<String> = delta.snapshot().unwrap().schema().fields().map(|f| f.name().to_string()).collect();
        assert_eq!(super::outputs::documented_columns(table.name), columns, "docs/OUTPUTS.md ## {}", table.name);
    }
}

#[tokio::test]
async fn without_the_beta_tables_their_outputs_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), &[("gateway_usage = ", "# "), ("gateway_payload = ", "# ")]);
    assert!(job.gateway_usage.is_none());
    run_job(&job, window()).await.unwrap();
    assert!(dir.path().join("daily_spend").exists());
    assert!(!dir.path().join("fallbacks").exists());
    // tag_keys with a usage table: tag_spend of the serving-endpoint gateway alone.
    let tags = csv_text(&read_table(&dir.path().join("tag_spend")).await);
    assert!(tags.contains(",serving_endpoint,") && !tags.contains(",ai_gateway,"), "{tags}");
}

#[tokio::test]
async fn a_serving_endpoint_table_named_as_the_beta_usage_table_is_refused_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), &[("fixtures/ai_gateway/ai_gateway_usage", "fixtures/ai_gateway/endpoint_usage")]);
    let err = run_job(&job, window()).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("input `gateway_usage`") && message.contains("`request_id`"), "{message}");
    assert!(message.contains("inputs.usage"), "{message}");
    assert_eq!(err.exit_code(), 2);
    assert!(!dir.path().join("daily_spend").exists(), "nothing written");
}

#[tokio::test]
async fn the_generator_reproduces_the_beta_fixtures() {
    let committed = read_manifest(&fixtures()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("ai_gateway");
    generate(&committed.options, &fresh, &Progress::hidden()).await.unwrap();
    for table in ["ai_gateway_usage", "ai_gateway_payload", "endpoint_usage"] {
        assert_same_lines(&table_text(&fresh.join(table)).await, &table_text(&fixtures().join(table)).await, table);
    }
}
