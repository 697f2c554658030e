//! Alerts, rate-limit recommendations and patch files on the demo fixtures.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use gateway_analytics::columns;
use gateway_analytics::error::{EXIT_ALERTS, EXIT_OK};
use gateway_analytics::rate_limits::RateLimitConfig;
use gateway_analytics::window::RunWindow;

use super::common::{csv_text, date, demo_job, demo_window, query_table, read_table, repo, run_job};

async fn column_values(table: &Path, column: &str) -> Vec<String> {
    let mut values = Vec::new();
    for batch in read_table(table).await {
        values.extend(columns::strings(&batch, column).unwrap().into_iter().map(|v| v.unwrap_or_default()));
    }
    values
}

#[tokio::test]
async fn every_rule_its_history_allows_and_every_action_fires_on_the_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let alerts = dir.path().join("alerts");
    let rules = column_values(&alerts, "rule").await;
    let scopes = column_values(&alerts, "scope").await;
    let severities = column_values(&alerts, "severity").await;
    let statuses = column_values(&alerts, "status").await;
    let fired: BTreeSet<String> = (0..rules.len())
        .filter(|&i| statuses[i] == "firing")
        .map(|i| format!("{}/{}/{}", rules[i], scopes[i], severities[i]))
        .collect();
    let expected: BTreeSet<String> = [
        "rate_limited_share/endpoint/critical",
        "rate_limited_share/requester/critical",
        "error_rate/endpoint/critical",
        "budget_burn/team/critical",
        "data_quality/table/warning",
    ]
    .map(String::from)
    .into();
    // The fixtures begin on 2026-11-01: the spend baselines and budget projections have no
    // logged history (the evaluation batch of 11-03 is not judged, the summary says so), and
    // the single 429s and 5xx of quiet hours stay under min_count.
    assert_eq!(fired, expected);
    assert!(statuses.iter().any(|s| s == "resolved"));
    let lacking: Vec<(String, String)> =
        summary.lacking_history.iter().map(|l| (l.date.to_string(), l.rule.clone())).collect();
    assert!(lacking.contains(&("2026-11-03".to_string(), "spend_spike".to_string())), "{lacking:?}");
    let messages = column_values(&alerts, "message").await;
    assert!(messages.iter().any(|m| m.contains("user-defined AI Gateway rate limit")));
    assert!(messages.iter().any(|m| m.contains("from a workspace or provider limit")));

    let recommendations = dir.path().join("rate_limit_recommendations");
    let actions: BTreeSet<String> = column_values(&recommendations, "action").await.into_iter().collect();
    assert_eq!(actions, ["add", "keep", "lower", "raise"].into_iter().map(String::from).collect());
    let rules: BTreeSet<String> = column_values(&recommendations, "current_calls_rule").await.into_iter().collect();
    for rule in ["principal", "default_user", "endpoint"] {
        assert!(rules.contains(rule), "no row limited by a {rule} rule");
    }
    let tokens_actions: BTreeSet<String> = column_values(&recommendations, "tokens_action").await.into_iter().collect();
    assert!(tokens_actions.contains("lower"), "{tokens_actions:?}");
}

#[tokio::test]
async fn alert_ids_are_stable_across_overlapping_windows_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide");
    let narrow = dir.path().join("narrow");
    run_job(&demo_job(&wide), demo_window()).await.unwrap();
    run_job(&demo_job(&wide), demo_window()).await.unwrap();
    let two_days = RunWindow::new(date("2026-11-02"), date("2026-11-03")).unwrap();
    run_job(&demo_job(&narrow), two_days).await.unwrap();

    let ids = column_values(&wide.join("alerts"), "alert_id").await;
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "alert ids must be unique");
    let dates = column_values(&wide.join("alerts"), "usage_date").await;
    let wide_late: BTreeSet<String> =
        ids.iter().zip(&dates).filter(|(_, d)| d.as_str() >= "2026-11-02").map(|(id, _)| id.clone()).collect();
    let narrow_ids: BTreeSet<String> = column_values(&narrow.join("alerts"), "alert_id").await.into_iter().collect();
    assert_eq!(wide_late, narrow_ids);
    assert_eq!(
        csv_text(&read_table(&wide.join("rate_limit_recommendations")).await),
        csv_text(&read_table(&narrow.join("rate_limit_recommendations")).await),
        "recommendations depend only on the as-of date and the lookback"
    );
}

#[tokio::test]
async fn alerts_and_recommendations_match_reviewed_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    insta::assert_snapshot!("alerts", csv_text(&read_table(&dir.path().join("alerts")).await));

    // The rows that change a rule, plus every endpoint-wide row (the full table has a row per
    // requester and endpoint; its definitions are checked row by row in oracle.rs).
    let rows = query_table(
        &dir.path().join("rate_limit_recommendations"),
        "SELECT * FROM t WHERE requester = '(endpoint)' OR action IN ('raise', 'keep') OR current_calls_rule = 'principal' \
         ORDER BY endpoint_name, requester",
    )
    .await;
    insta::assert_snapshot!("rate_limit_recommendations_changes", csv_text(&rows));
    for file in ["chat-prod", "claude-agents", "custom-ranker", "embeddings", "gpt-reasoning"] {
        let text = std::fs::read_to_string(dir.path().join(format!("recommendations/latest/{file}.json"))).unwrap();
        insta::assert_snapshot!(format!("patch_{file}"), text);
    }
}

#[tokio::test]
async fn patch_files_are_complete_valid_api_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("recommendations/latest");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("retired-endpoint.json"), "{}").unwrap();
    // A patch file of the layout before per-date folders.
    std::fs::write(dir.path().join("recommendations/chat-prod.json"), "{}").unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    assert!(!folder.join("retired-endpoint.json").exists(), "a stale patch file must be removed");
    assert!(!dir.path().join("recommendations/chat-prod.json").exists(), "the old layout's files are removed");

    let current =
        RateLimitConfig::parse(&std::fs::read(super::common::demo().join("rate_limits.json")).unwrap(), "current")
            .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    for path in files {
        let endpoint = path.file_stem().unwrap().to_string_lossy().to_string();
        let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for rule in body["rate_limits"].as_array().unwrap() {
            for field in rule.as_object().unwrap().keys() {
                assert!(["key", "principal", "renewal_period", "calls", "tokens"].contains(&field.as_str()), "{field}");
            }
        }
        // It parses back as a valid configuration (keys, periods, no duplicates).
        let wrapped = serde_json::json!({ "endpoints": [{ "name": endpoint, "ai_gateway": body }] });
        let parsed = RateLimitConfig::parse(wrapped.to_string().as_bytes(), "patch").unwrap();
        // Every rule of the current configuration that is not for a changed principal stays.
        if let Some(before) = current.endpoints.get(&endpoint) {
            let after = &parsed.endpoints[&endpoint];
            assert_eq!(before.other_ai_gateway_fields, after.other_ai_gateway_fields, "{endpoint}");
            for rule in before.rules.iter().filter(|r| r.key == gateway_analytics::rate_limits::RateLimitKey::UserGroup)
            {
                assert!(after.rules.contains(rule), "{endpoint}: group rule dropped");
            }
            assert!(after.rules.len() >= before.rules.len(), "{endpoint}: rules lost");
        }
    }
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
}

#[test]
fn json_lines_and_fail_on_for_alerting_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    let demo_text = std::fs::read_to_string(repo().join("jobs/demo.toml")).unwrap();
    let fixtures = repo().join("fixtures/demo").display().to_string();
    let text = demo_text
        .replace("../fixtures/demo", &fixtures)
        .replace("\"../out/demo\"", &format!("{:?}", dir.path().join("out").display().to_string()));
    std::fs::write(&job, text).unwrap();

    let jsonl = dir.path().join("alerts.jsonl");
    let output = binary()
        .args([
            "run",
            "--format",
            "none",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-03",
            "--fail-on",
            "critical",
            "--config",
        ])
        .arg(&job)
        .arg("--alerts-jsonl")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(i32::from(EXIT_ALERTS)), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    let fields = [
        "alert_id",
        "rule",
        "severity",
        "endpoint_name",
        "scope",
        "scope_value",
        "window_start",
        "window_end",
        "observed",
        "threshold",
        "baseline",
        "requests",
        "message",
        "status",
        "incident_id",
        "incident_start",
        "grouped_under",
        "top_requesters",
        "muted",
        "paged",
        "notify",
    ];
    for line in &lines {
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys, fields.iter().collect::<Vec<_>>(), "{line}");
    }
    // The outputs were written before the non-zero exit.
    assert!(dir.path().join("out/alerts/_delta_log").exists());

    // To stdout, with the summary moved to stderr; a quiet day exits 0.
    let output = binary()
        .args(["run", "--from", "2026-12-01", "--fail-on", "warning", "--alerts-jsonl", "-", "--config"])
        .arg(&job)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(i32::from(EXIT_OK)));
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stderr).contains("alerts: 0 critical, 0 warning; 0 muted, 0 resolved"));

    let output = binary().args(["recommend", "--as-of", "2026-11-03", "--config"]).arg(&job).output().unwrap();
    let review = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(review.contains("raise") && review.contains("chat-prod.json"), "{review}");
}
