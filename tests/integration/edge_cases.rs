//! Hand-made rows at the boundaries of every definition, with expected outputs worked out by
//! hand: midnight edges, a price change at the exact request time, served-entity ties, every
//! team source, NULL tokens and statuses, unusable latency samples and quantile ties.

use std::io::Cursor;
use std::path::Path;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::json::ReaderBuilder;
use gateway_analytics::config::JobConfig;
use gateway_analytics::generate::tables::{payload_schema, served_entities_schema, usage_schema};
use gateway_analytics::window::RunWindow;

use super::common::{csv_text, date, query_table, read_table, run_job, write_delta};

const SERVED_ENTITIES: &str = r#"
{"served_entity_id":"se-a","endpoint_name":"ep-a","entity_name":"m-old","change_time":"2026-10-01T00:00:00Z"}
{"served_entity_id":"se-a","endpoint_name":"ep-a","entity_name":"m-a","change_time":"2026-10-05T00:00:00Z"}
{"served_entity_id":"se-b","endpoint_name":"ep-b1","entity_name":"m-b","change_time":"2026-10-01T00:00:00Z"}
{"served_entity_id":"se-b","endpoint_name":"ep-b2","entity_name":"m-b","change_time":"2026-10-01T00:00:00Z"}
{"served_entity_id":"se-c","endpoint_name":"ep-c-old","entity_name":"m-c","change_time":null}
{"served_entity_id":"se-c","endpoint_name":"ep-c","entity_name":"m-c","change_time":"2026-09-01T00:00:00Z"}
"#;

const USAGE: &str = r#"
{"request_time":"2026-11-01T00:00:00Z","requester":"alice","served_entity_id":"se-a","status_code":200,"input_token_count":1000000,"output_token_count":1000000,"usage_context":null}
{"request_time":"2026-11-01T12:00:00Z","requester":"alice","served_entity_id":"se-a","status_code":200,"input_token_count":1000000,"output_token_count":0,"usage_context":{}}
{"request_time":"2026-11-01T23:59:59.999999Z","requester":"bob","served_entity_id":"se-a","status_code":429,"input_token_count":null,"output_token_count":null,"usage_context":{"team":""}}
{"request_time":"2026-11-02T00:00:00Z","requester":"alice","served_entity_id":"se-a","status_code":200,"input_token_count":7,"output_token_count":7,"usage_context":null}
{"request_time":"2026-10-31T23:59:59.999999Z","requester":"alice","served_entity_id":"se-a","status_code":200,"input_token_count":7,"output_token_count":7,"usage_context":null}
{"request_time":"2026-11-01T05:00:00Z","requester":null,"served_entity_id":"se-b","status_code":503,"input_token_count":10,"output_token_count":0,"usage_context":{"team":"ops","project":"x"}}
{"request_time":"2026-11-01T05:30:00Z","requester":"carol","served_entity_id":"se-unknown","status_code":null,"input_token_count":5,"output_token_count":5,"usage_context":{"project":"y"}}
{"request_time":"2026-11-01T05:10:00Z","requester":"carol","served_entity_id":"se-c","status_code":404,"input_token_count":0,"output_token_count":0,"usage_context":{"team":"web"}}
"#;

const PAYLOAD: &str = r#"
{"request_date":"2026-11-01","request_time":"2026-11-01T00:00:01Z","status_code":200,"sampling_fraction":1.0,"execution_duration_ms":10,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T00:00:02Z","status_code":200,"sampling_fraction":1.0,"execution_duration_ms":20,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:01:00Z","status_code":200,"sampling_fraction":0.25,"execution_duration_ms":100,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:02:00Z","status_code":200,"sampling_fraction":1.0,"execution_duration_ms":300,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:03:00Z","status_code":201,"sampling_fraction":1.0,"execution_duration_ms":200,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:04:00Z","status_code":200,"sampling_fraction":0.0,"execution_duration_ms":50,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:05:00Z","status_code":200,"sampling_fraction":null,"execution_duration_ms":60,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:06:00Z","status_code":500,"sampling_fraction":1.0,"execution_duration_ms":1,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:07:00Z","status_code":200,"sampling_fraction":1.0,"execution_duration_ms":null,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T12:08:00Z","status_code":200,"sampling_fraction":1.5,"execution_duration_ms":70,"served_entity_id":"se-a"}
{"request_date":"2026-11-01","request_time":"2026-11-01T07:00:00Z","status_code":200,"sampling_fraction":1.0,"execution_duration_ms":5,"served_entity_id":"se-a"}
{"request_date":"2026-11-02","request_time":"2026-11-01T23:30:00Z","status_code":200,"sampling_fraction":1.0,"execution_duration_ms":42,"served_entity_id":"se-a"}
"#;

const PRICES: &str = "entity_name,effective_from,input_usd_per_million,output_usd_per_million\n\
m-a,2026-11-01T12:00:00Z,1,2\n\
m-a,2026-11-01,0.5,1\n\
m-b,2026-11-01T00:00:00Z,3,0\n";

const TEAMS: &str = "principal,team\nalice,team-csv\nbob,\ncarol,team-carol\n";

async fn write_table(path: &Path, schema: SchemaRef, json: &str) {
    let reader = ReaderBuilder::new(schema).build(Cursor::new(json.trim().as_bytes())).unwrap();
    write_delta(path, reader.collect::<Result<_, _>>().unwrap()).await;
}

#[tokio::test]
async fn boundary_rows_give_the_hand_computed_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_table(&root.join("usage"), usage_schema(), USAGE).await;
    write_table(&root.join("served"), served_entities_schema(), SERVED_ENTITIES).await;
    write_table(&root.join("payload"), payload_schema(), PAYLOAD).await;
    std::fs::write(root.join("prices.csv"), PRICES).unwrap();
    std::fs::write(root.join("teams.csv"), TEAMS).unwrap();
    let text = "[inputs]\nusage = \"usage\"\nserved_entities = \"served\"\npayload = \"payload\"\n\
                prices = \"prices.csv\"\nteams = \"teams.csv\"\n[output]\nlocation = \"out\"\n";
    let job = JobConfig::parse(text, &root.join("job.toml")).unwrap();
    let window = RunWindow::new(date("2026-11-01"), date("2026-11-01")).unwrap();
    let summary = run_job(&job, window).await.unwrap();

    let daily = csv_text(&read_table(&root.join("out/daily_spend")).await);
    assert_eq!(
        daily,
        "usage_date,endpoint_name,entity_name,requester,team,requests,succeeded,rate_limited,failed,input_tokens,output_tokens,\
         cache_read_tokens,cache_write_tokens,reasoning_tokens,requests_with_categories,cost_usd,unpriced_requests,price_version,estimated\n\
         2026-11-01,(unknown),(unknown),carol,team-carol,1,0,0,0,5,5,0,0,0,0,0.000000000000,1,sha256:5b90605077adb7d5,false\n\
         2026-11-01,ep-a,m-a,alice,team-csv,2,2,0,0,2000000,1000000,0,0,0,0,2.500000000000,0,sha256:5b90605077adb7d5,false\n\
         2026-11-01,ep-a,m-a,bob,unattributed,1,0,1,0,0,0,0,0,0,0,0.000000000000,0,sha256:5b90605077adb7d5,false\n\
         2026-11-01,ep-b2,m-b,(unknown),ops,1,0,0,1,10,0,0,0,0,0,0.000030000000,0,sha256:5b90605077adb7d5,false\n\
         2026-11-01,ep-c,m-c,carol,web,1,0,0,1,0,0,0,0,0,0,0.000000000000,0,sha256:5b90605077adb7d5,false\n"
    );

    let hourly = csv_text(&read_table(&root.join("out/hourly_errors")).await);
    assert_eq!(
        hourly,
        "usage_date,hour,endpoint_name,entity_name,requests,http_4xx,http_429,http_5xx,guardrail_blocked_input,\
         guardrail_blocked_output,error_rate,p50_latency_ms,p95_latency_ms,p99_latency_ms\n\
         2026-11-01,2026-11-01T00:00:00Z,ep-a,m-a,1,0,0,0,0,0,0.0,10,20,20\n\
         2026-11-01,2026-11-01T05:00:00Z,(unknown),(unknown),1,0,0,0,0,0,0.0,,,\n\
         2026-11-01,2026-11-01T05:00:00Z,ep-b2,m-b,1,0,0,1,0,0,1.0,,,\n\
         2026-11-01,2026-11-01T05:00:00Z,ep-c,m-c,1,1,0,0,0,0,1.0,,,\n\
         2026-11-01,2026-11-01T12:00:00Z,ep-a,m-a,1,0,0,0,0,0,0.0,100,300,300\n\
         2026-11-01,2026-11-01T23:00:00Z,ep-a,m-a,1,0,1,0,0,0,1.0,42,42,42\n"
    );

    let checks: Vec<(String, i64)> = summary.checks.iter().map(|c| (c.check.clone(), c.rows)).collect();
    assert_eq!(
        checks,
        [
            ("payload.duplicate_request_id", 0),
            ("payload.invalid_sampling_fraction", 3),
            ("payload.missing_request_id", 12),
            ("payload.not_a_latency_sample", 4),
            ("payload.not_logged_for_size", 0),
            ("payload.null_request_time", 0),
            ("payload.null_status_code", 0),
            ("payload.outside_usage_groups", 1),
            ("payload.unparseable_response", 0),
            ("payload.without_usage_row", 0),
            ("usage.duplicate_request_id", 0),
            ("usage.missing_request_id", 6),
            ("usage.negative_tokens", 0),
            ("usage.null_request_time", 0),
            ("usage.null_requester", 1),
            ("usage.null_status_code", 1),
            ("usage.unknown_served_entity", 1),
            ("usage.unpriced_tokens", 1),
            ("usage.without_payload_row", 0),
        ]
        .map(|(check, rows)| (check.to_string(), rows))
        .to_vec()
    );
}

/// One usage row per (team, day, cost in whole USD) on an entity priced at $1 per million
/// input tokens, so a row's cost is its input tokens / 1e6.
fn spend_rows(days: &[(&str, &str, f64)]) -> String {
    days.iter()
        .map(|(team, day, cost)| {
            format!(
                r#"{{"request_time":"{day}T10:00:00Z","requester":"u-{team}","served_entity_id":"se-x","status_code":200,"input_token_count":{},"output_token_count":0,"usage_context":{{"team":"{team}"}}}}"#,
                (cost * 1_000_000.0).round() as i64
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn spend_spikes_and_budgets_give_the_hand_computed_alerts() {
    let mut days = Vec::new();
    let history = ["2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08", "2026-11-09"];
    for (i, day) in history.iter().enumerate() {
        days.push(("alpha", *day, (i + 1) as f64)); // median of 1..7 = 4
        days.push(("beta", *day, 5.0)); // median 5
        if i < 4 {
            days.push(("delta", *day, 1.0)); // 1,1,1,1 and three logged days of 0: median 1
        }
    }
    days.extend([
        ("alpha", "2026-11-10", 20.0),
        ("beta", "2026-11-10", 12.0),
        ("gamma", "2026-11-10", 9.99),
        ("delta", "2026-11-10", 11.0),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_table(&root.join("usage"), usage_schema(), &spend_rows(&days)).await;
    write_table(
        &root.join("served"),
        served_entities_schema(),
        r#"{"served_entity_id":"se-x","endpoint_name":"ep-x","entity_name":"m-x","change_time":"2026-10-01T00:00:00Z"}"#,
    )
    .await;
    std::fs::write(
        root.join("prices.csv"),
        "entity_name,effective_from,input_usd_per_million,output_usd_per_million\nm-x,2026-01-01,1,0\n",
    )
    .unwrap();
    let text = "[inputs]\nusage = \"usage\"\nserved_entities = \"served\"\nprices = \"prices.csv\"\n[output]\nlocation = \"out\"\n\
                [alerts]\nbudget_burn = { warning_share = 0.8, monthly_budgets_usd = { alpha = 50, beta = 40, gamma = 1000 } }\n";
    let job = JobConfig::parse(text, &root.join("job.toml")).unwrap();
    run_job(&job, RunWindow::new(date("2026-11-10"), date("2026-11-10")).unwrap()).await.unwrap();

    let rows = query_table(
        &root.join("out/alerts"),
        "SELECT rule, scope_value, severity, window_start, observed, threshold, baseline, requests FROM t ORDER BY rule, scope_value",
    )
    .await;
    // alpha's projection: $48 over the 8 logged days of November (from the 3rd) x 30 days.
    assert_eq!(
        csv_text(&rows),
        "rule,scope_value,severity,window_start,observed,threshold,baseline,requests\n\
         budget_burn,alpha,warning,2026-11-10T00:00:00Z,180.0,40.0,50.0,8\n\
         budget_burn,beta,critical,2026-11-10T00:00:00Z,47.0,40.0,40.0,8\n\
         spend_spike,alpha,critical,2026-11-10T00:00:00Z,20.0,16.0,4.0,1\n\
         spend_spike,beta,warning,2026-11-10T00:00:00Z,12.0,10.0,5.0,1\n\
         spend_spike,delta,critical,2026-11-10T00:00:00Z,11.0,10.0,1.0,1\n"
    );
    // The projection is spend_forecast's, and the message says which method made it: 8 days
    // of history are too few for the weekday forecast, so it is linear ($48 / 8 x 30), with the
    // backtest's interval for 20 days left (x 0.961 .. x 1.526).
    let message = query_table(
        &root.join("out/alerts"),
        "SELECT message FROM t WHERE rule = 'budget_burn' AND scope_value = 'alpha'",
    )
    .await;
    let message = csv_text(&message);
    assert!(message.contains("on track to spend $180.0 this month (linear projection: 8 days of history"), "{message}");
    assert!(message.contains("90% prediction interval $172.98 to $274.68"), "{message}");
}
