//! Alerts people can trust, on hand-made rows: no spend or budget alerts without observed
//! history (the first week of a deployment, the days after a logging gap), a team that spent
//! nothing on observed days still alerting, the firing/resolved lifecycle with stable incident
//! ids within a run and across runs, grouping of requester alerts under their endpoint's,
//! muting, and the pipeline events each record sends.

use std::collections::BTreeSet;
use std::path::Path;

use gateway_analytics::alert_events;
use gateway_analytics::alerts::{self, AlertRecord, AlertsFormat};
use gateway_analytics::config::JobConfig;
use gateway_analytics::generate::tables::{served_entities_schema, usage_schema};
use gateway_analytics::summary::RunSummary;
use gateway_analytics::window::RunWindow;

use super::common::{date, query_table, read_table_where, run_job, write_delta};

/// One usage row as JSON (the usage table's columns), on the endpoint `ep-x` whose entity costs
/// $1 per million input tokens, with a request id of its own.
fn row(time: &str, requester: &str, team: &str, status: i32, input_tokens: i64) -> String {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        r#"{{"databricks_request_id":"req-{id}","request_time":"{time}","requester":"{requester}","served_entity_id":"se-x","status_code":{status},"input_token_count":{input_tokens},"output_token_count":0,"usage_context":{{"team":"{team}"}}}}"#
    )
}

/// A team's spend of `usd` on `day` (one row at 10:00).
fn spend(day: &str, team: &str, usd: f64) -> String {
    row(&format!("{day}T10:00:00Z"), &format!("u-{team}"), team, 200, (usd * 1_000_000.0).round() as i64)
}

/// `calls` calls of `requester` in the hour `hour` (`2026-10-08T10`), the first `limited` of
/// them refused with 429.
fn calls(hour: &str, requester: &str, calls: usize, limited: usize) -> Vec<String> {
    (0..calls)
        .map(|i| {
            let status = if i < limited { 429 } else { 200 };
            row(&format!("{hour}:{:02}:{:02}Z", i % 60, i / 60), requester, "web", status, 100)
        })
        .collect()
}

/// Writes the usage table `rows` and the reference files into `root`; returns the job text
/// (with `extra` job-file lines appended) writing into `root/out`.
async fn workspace(root: &Path, rows: &[String], extra: &str) -> String {
    use deltalake::arrow::json::ReaderBuilder;
    let json = rows.join("\n");
    let reader = ReaderBuilder::new(usage_schema()).build(std::io::Cursor::new(json.into_bytes())).unwrap();
    write_delta(&root.join("usage"), reader.collect::<Result<_, _>>().unwrap()).await;
    let served = r#"{"served_entity_id":"se-x","endpoint_name":"ep-x","entity_name":"m-x","change_time":"2026-09-01T00:00:00Z"}"#;
    let reader =
        ReaderBuilder::new(served_entities_schema()).build(std::io::Cursor::new(served.as_bytes().to_vec())).unwrap();
    write_delta(&root.join("served"), reader.collect::<Result<_, _>>().unwrap()).await;
    std::fs::write(
        root.join("prices.csv"),
        "entity_name,effective_from,input_usd_per_million,output_usd_per_million\nm-x,2026-01-01,1,0\n",
    )
    .unwrap();
    format!(
        "[inputs]\nusage = \"usage\"\nserved_entities = \"served\"\nprices = \"prices.csv\"\n[output]\nlocation = \"out\"\n{extra}\n"
    )
}

fn job(root: &Path, text: &str) -> JobConfig {
    JobConfig::parse(text, &root.join("job.toml")).unwrap()
}

fn window(from: &str, to: &str) -> RunWindow {
    RunWindow::new(date(from), date(to)).unwrap()
}

/// Every alert record the output holds, in the table's order.
async fn stored_records(root: &Path) -> Vec<AlertRecord> {
    let sql = "SELECT * FROM t ORDER BY window_start, rule, endpoint_name, scope, scope_value, status";
    alerts::records(&query_table(&root.join("out/alerts"), sql).await).unwrap()
}

/// The rate_limited_share records the output holds, in order.
async fn rate_records(root: &Path) -> Vec<AlertRecord> {
    stored_records(root).await.into_iter().filter(|r| r.rule == "rate_limited_share").collect()
}

/// (rule, scope_value, date, status, severity) of `records`.
fn brief(records: &[AlertRecord]) -> Vec<(String, String, String, String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r.rule.clone(),
                r.scope_value.clone(),
                r.window_start[..10].to_string(),
                r.status.clone(),
                r.severity.clone(),
            )
        })
        .collect()
}

fn lacking(summary: &RunSummary) -> Vec<(String, String, i64, Vec<String>)> {
    summary
        .lacking_history
        .iter()
        .map(|l| (l.date.to_string(), l.rule.clone(), l.observed_days, l.teams.clone()))
        .collect()
}

/// The first week of a deployment (data from 2026-10-05), a team that spent nothing on the
/// logged days, and a 4-day logging gap: spend and budget alerts only where at least 5 of the
/// days they look back on were logged.
#[tokio::test]
async fn no_spend_or_budget_alerts_without_observed_history() {
    let mut rows = Vec::new();
    let week = ["2026-10-05", "2026-10-06", "2026-10-07", "2026-10-08", "2026-10-09", "2026-10-10", "2026-10-11"];
    for day in week {
        rows.push(spend(day, "alpha", 20.0));
        rows.push(spend(day, "beta", 30.0));
    }
    // Day 8: alpha jumps to 5x its median, zed (nothing on the 7 logged days before) spends $25.
    rows.extend([spend("2026-10-12", "alpha", 100.0), spend("2026-10-12", "beta", 30.0)]);
    rows.push(spend("2026-10-12", "zed", 25.0));
    // 2026-10-13..16: nothing logged. 2026-10-17: beta at 1.5x its usual spend.
    rows.extend([spend("2026-10-17", "alpha", 20.0), spend("2026-10-17", "beta", 45.0)]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let budgets = "[alerts]\nbudget_burn = { warning_share = 0.8, monthly_budgets_usd = { alpha = 700 } }\n";
    let text = workspace(root, &rows, budgets).await;

    // The first week, as a new deployment runs it: night by night.
    let mut summaries = Vec::new();
    for day in week {
        summaries.push(run_job(&job(root, &text), window(day, day)).await.unwrap());
    }
    let records = stored_records(root).await;
    // The only alert of the first week: alpha's budget projection, once 5 days were logged
    // (10-09: $100 over 5 days, projected to $620 for October against 80% of $700).
    assert_eq!(
        brief(&records),
        [
            ("budget_burn", "alpha", "2026-10-09", "firing", "warning"),
            ("budget_burn", "alpha", "2026-10-10", "firing", "warning"),
            ("budget_burn", "alpha", "2026-10-11", "firing", "warning"),
        ]
        .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e.into()))
        .to_vec()
    );
    let projection = records.iter().find(|r| r.window_start.starts_with("2026-10-09")).unwrap();
    assert_eq!((projection.observed, projection.threshold), (Some(620.0), Some(560.0)));
    // The summary names the teams each rule could not judge, and why.
    assert_eq!(
        lacking(&summaries[0]),
        [
            ("2026-10-05".into(), "budget_burn".into(), 1, vec!["alpha".to_string()]),
            ("2026-10-05".into(), "spend_spike".into(), 0, vec!["alpha".to_string(), "beta".to_string()]),
        ]
    );
    assert_eq!(
        lacking(&summaries[4]),
        [("2026-10-09".into(), "spend_spike".into(), 4, vec!["alpha".into(), "beta".into()])]
    );
    assert!(lacking(&summaries[5]).is_empty(), "{:?}", lacking(&summaries[5]));

    // Day 8 and the days after the gap, in one run.
    let summary = run_job(&job(root, &text), window("2026-10-12", "2026-10-17")).await.unwrap();
    let later: Vec<AlertRecord> =
        stored_records(root).await.into_iter().filter(|r| r.window_start.as_str() >= "2026-10-12").collect();
    let fired: Vec<_> = brief(&later).into_iter().filter(|r| r.0 != "budget_burn").collect();
    assert_eq!(
        fired,
        [
            ("spend_spike", "alpha", "2026-10-12", "firing", "critical"),
            ("spend_spike", "zed", "2026-10-12", "firing", "critical"),
            ("logging_gap", "usage", "2026-10-13", "firing", "warning"),
            ("spend_spike", "alpha", "2026-10-13", "resolved", "critical"),
            ("spend_spike", "zed", "2026-10-13", "resolved", "critical"),
            ("logging_gap", "usage", "2026-10-14", "firing", "warning"),
            ("logging_gap", "usage", "2026-10-15", "firing", "warning"),
            ("logging_gap", "usage", "2026-10-16", "firing", "warning"),
            ("logging_gap", "usage", "2026-10-17", "resolved", "warning"),
        ]
        .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e.into()))
        .to_vec()
    );
    let alpha = later.iter().find(|r| r.rule == "spend_spike" && r.scope_value == "alpha").unwrap();
    assert_eq!((alpha.observed, alpha.baseline, alpha.threshold), (Some(100.0), Some(20.0), Some(80.0)));
    let zed = later.iter().find(|r| r.rule == "spend_spike" && r.scope_value == "zed").unwrap();
    assert_eq!((zed.observed, zed.baseline, zed.threshold), (Some(25.0), Some(0.0), Some(10.0)));
    let gap: BTreeSet<&str> =
        later.iter().filter(|r| r.rule == "logging_gap").map(|r| r.incident_id.as_str()).collect();
    assert_eq!(gap.len(), 1, "the gap is one incident");
    // 2026-10-17 looks back on 3 logged days of 7: beta's 1.5x is not judged (counting the 4
    // unlogged days as $0 would make its median $0 and fire a critical alert).
    assert!(lacking(&summary).contains(&(
        "2026-10-17".into(),
        "spend_spike".into(),
        3,
        vec!["alpha".into(), "beta".into()]
    )));
}

/// The rows of an hourly 429 burst on ep-x: from `first` for `hours` hours, 40 calls an hour
/// of which svc-a sends 30 with 20 refused, then an hour of 40 calls without 429.
fn burst(day: &str, first: u32, hours: u32) -> Vec<String> {
    let mut rows = Vec::new();
    for hour in first..first + hours {
        let at = format!("{day}T{hour:02}");
        rows.extend(calls(&at, "svc-a", 30, 20));
        rows.extend(calls(&at, "user-b", 10, 0));
    }
    let after = format!("{day}T{:02}", first + hours);
    rows.extend(calls(&after, "svc-a", 40, 0));
    rows
}

#[tokio::test]
async fn a_burst_fires_once_and_resolves_once_with_one_incident_id() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = workspace(root, &burst("2026-10-08", 10, 2), "").await;
    let summary = run_job(&job(root, &text), window("2026-10-08", "2026-10-08")).await.unwrap();
    let records = rate_records(root).await;
    let shown: Vec<(String, String, String, String, Option<String>)> = records
        .iter()
        .map(|r| {
            (
                r.window_start[11..16].to_string(),
                r.scope.clone(),
                r.status.clone(),
                r.incident_id.clone(),
                r.notify.clone(),
            )
        })
        .collect();
    let endpoint_10 = records.iter().find(|r| r.scope == "endpoint" && r.window_start.contains("T10")).unwrap();
    let requester_10 = records.iter().find(|r| r.scope == "requester" && r.window_start.contains("T10")).unwrap();
    let (e, q) = (endpoint_10.alert_id.clone(), requester_10.alert_id.clone());
    let trigger = Some("trigger".to_string());
    let resolve = Some("resolve".to_string());
    assert_eq!(
        shown,
        [
            ("10:00", "endpoint", "firing", &e, trigger.clone()),
            ("10:00", "requester", "firing", &q, None),
            ("11:00", "endpoint", "firing", &e, None),
            ("11:00", "requester", "firing", &q, None),
            ("12:00", "endpoint", "resolved", &e, resolve.clone()),
            ("12:00", "requester", "resolved", &q, None),
        ]
        .map(|(a, b, c, d, f)| (a.to_string(), b.to_string(), c.to_string(), d.clone(), f))
        .to_vec()
    );
    // The requester's records are grouped under the endpoint's, which names it.
    assert_eq!(requester_10.grouped_under.as_deref(), Some(e.as_str()));
    assert_eq!(endpoint_10.top_requesters.as_deref(), Some("svc-a (20 429s)"));
    assert!(endpoint_10.message.ends_with("grouped under this alert: svc-a (20 429s)."), "{}", endpoint_10.message);

    // One page and one resolve, with the incident id as the key.
    for format in [AlertsFormat::Pagerduty, AlertsFormat::Opsgenie] {
        let events = alert_events::events(&records, format, &window("2026-10-08", "2026-10-08"));
        assert_eq!(events.len(), 2, "{format:?}: {events:?}");
        let text = serde_json::to_string(&events).unwrap();
        // The key of both events; the trigger's details also name the record and the incident.
        assert_eq!(text.matches(&e).count(), 4, "{text}");
        assert!(!text.contains(&q), "grouped records send nothing: {text}");
    }
    let pagerduty = alert_events::events(&records, AlertsFormat::Pagerduty, &window("2026-10-08", "2026-10-08"));
    assert_eq!(
        (pagerduty[0]["event_action"].as_str(), pagerduty[1]["event_action"].as_str()),
        (Some("trigger"), Some("resolve"))
    );
    assert_eq!(pagerduty[0]["dedup_key"], pagerduty[1]["dedup_key"]);
    assert_eq!(summary.alert_counts().unwrap(), (4, 0));
}

#[tokio::test]
async fn an_incident_keeps_its_id_across_runs_and_reruns_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // 22:00 and 23:00 on 10-08, 00:00 on 10-09, resolved at 01:00.
    let mut rows = burst("2026-10-08", 22, 2);
    rows.retain(|r| !r.contains("2026-10-08T24"));
    rows.extend(burst("2026-10-09", 0, 1));
    let text = workspace(root, &rows, "").await;
    run_job(&job(root, &text), window("2026-10-08", "2026-10-08")).await.unwrap();
    let first_night = rate_records(root).await;
    let incident =
        first_night.iter().find(|r| r.scope == "endpoint" && r.window_start.contains("T22")).unwrap().alert_id.clone();
    assert!(first_night.iter().all(|r| r.status == "firing"), "still firing at the end of the window");

    run_job(&job(root, &text), window("2026-10-09", "2026-10-09")).await.unwrap();
    let second: Vec<AlertRecord> =
        rate_records(root).await.into_iter().filter(|r| r.usage_date == Some(date("2026-10-09"))).collect();
    let endpoint: Vec<_> = second.iter().filter(|r| r.scope == "endpoint").collect();
    assert_eq!(
        endpoint.iter().map(|r| (r.window_start.as_str(), r.status.as_str())).collect::<Vec<_>>(),
        [("2026-10-09T00:00:00Z", "firing"), ("2026-10-09T01:00:00Z", "resolved")]
    );
    assert!(endpoint.iter().all(|r| r.incident_id == incident && r.incident_start == "2026-10-08T22:00:00Z"));
    // The incident paged on the first night: the second sends only its resolve.
    let events = alert_events::events(&second, AlertsFormat::Pagerduty, &window("2026-10-09", "2026-10-09"));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["event_action"].as_str(), events[0]["dedup_key"].as_str()),
        (Some("resolve"), Some(incident.as_str()))
    );

    // A rerun of the second night, and a run of both nights at once, write the same rows.
    let before = read_table_where(&root.join("out/alerts"), "usage_date = DATE '2026-10-09'").await;
    run_job(&job(root, &text), window("2026-10-09", "2026-10-09")).await.unwrap();
    let after = read_table_where(&root.join("out/alerts"), "usage_date = DATE '2026-10-09'").await;
    assert_eq!(super::common::csv_text(&before), super::common::csv_text(&after));
    let both = tempfile::tempdir().unwrap();
    let text_both = workspace(both.path(), &rows, "").await;
    run_job(&job(both.path(), &text_both), window("2026-10-08", "2026-10-09")).await.unwrap();
    let wide = read_table_where(&both.path().join("out/alerts"), "usage_date = DATE '2026-10-09'").await;
    assert_eq!(super::common::csv_text(&before), super::common::csv_text(&wide));
}

#[tokio::test]
async fn muted_conditions_are_written_marked_and_page_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut rows = burst("2026-10-08", 10, 1);
    rows.extend(burst("2026-10-09", 10, 1));
    let mute = "[alerts]\nmute = [{ rule = \"rate_limited_share\", endpoint = \"ep-x\", until = \"2026-10-08\" }]\n";
    let text = workspace(root, &rows, mute).await;
    let summary = run_job(&job(root, &text), window("2026-10-08", "2026-10-09")).await.unwrap();
    let records = rate_records(root).await;
    let day = |r: &AlertRecord| r.window_start[..10].to_string();
    assert!(records.iter().filter(|r| day(r) == "2026-10-08").all(|r| r.muted && r.notify.is_none()));
    assert!(records.iter().filter(|r| day(r) == "2026-10-09").all(|r| !r.muted));
    // Muted records count as neither critical nor warning (nor for --fail-on).
    assert_eq!(summary.alert_counts().unwrap(), (2, 0));
    assert_eq!(summary.alert_kinds().unwrap().muted, 2);
    let events = alert_events::events(&records, AlertsFormat::Pagerduty, &window("2026-10-08", "2026-10-09"));
    let actions: Vec<&str> = events.iter().map(|e| e["event_action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["trigger", "resolve"], "only the unmuted day pages");
    assert!(events.iter().all(|e| e["dedup_key"].as_str().unwrap() != records[0].incident_id));

    // A rule that does not exist is refused with the rules' names.
    let bad = text.replace("rate_limited_share\", endpoint", "rate_limit_share\", endpoint");
    let error = JobConfig::parse(&bad, &root.join("job.toml")).unwrap_err().to_string();
    assert!(error.contains("alerts.mute[0]") && error.contains("rate_limited_share"), "{error}");
}
