//! The FOCUS export: `focus_costs` and `run --focus-csv` on the demo data, checked against the
//! FOCUS 1.2 column rules (focus_rules.rs) and, independently, against daily_spend: the same
//! cost to the picodollar per grain, one row per grain, every non-nullable column set.

use std::collections::BTreeMap;

use deltalake::arrow::array::{Array, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use gateway_analytics::config::JobConfig;
use gateway_analytics::focus;

use super::common::{demo, demo_window, job_text, query_table, repo, run_job};
use super::focus_rules::violations;

/// Decimal text to units of 10^-12 (picodollars for costs).
fn units(text: &str) -> i128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    assert!(fraction.len() <= 12, "more than 12 decimal places: {text}");
    let negative = whole.starts_with('-');
    let magnitude: i128 = format!("{}{fraction:0<12}", whole.trim_start_matches('-')).parse().expect("decimal");
    if negative { -magnitude } else { magnitude }
}

type Grain = (String, String, String, String, String);

#[tokio::test]
async fn focus_csv_follows_the_focus_rules_and_sums_to_daily_spend() {
    let dir = tempfile::tempdir().unwrap();
    let names = "[focus]\nbilling_account_id = \"acct-1234\"\nbilling_account_name = \"Acme Databricks\"\n\
                 provider_name = \"Databricks\"\npublisher_name = \"Acme models\"\n";
    let text = format!("{}\n{names}", job_text(Some(&demo().join("gateway_payload")), dir.path()));
    let job = JobConfig::parse(&text, &repo().join("jobs/test.toml")).unwrap();
    run_job(&job, demo_window()).await.unwrap();
    let path = dir.path().join("focus.csv");
    let written = focus::write_csv(&job, &demo_window(), &path).await.unwrap();
    let csv = std::fs::read_to_string(&path).unwrap();

    // The FOCUS 1.2 column rules hold; and the checker can fail.
    assert_eq!(violations(&csv), Vec::<String>::new());
    for (from, to, rule) in [
        (",Usage,", ",usage,", "ChargeCategory"),
        ("T00:00:00Z,", "T00:00:00,", "YYYY-MM-DDTHH:mm:ssZ"),
        (",USD,", ",usd,", "BillingCurrency"),
        (",Tokens,", ",,", "PricingUnit"),
        (",Generative AI,", ",Chatbots,", "ServiceSubcategory"),
    ] {
        let broken = csv.replacen(from, to, 1);
        assert!(violations(&broken).iter().any(|v| v.contains(rule)), "{rule}: {:?}", violations(&broken));
    }
    let header = csv.lines().next().unwrap();
    assert!(violations(&csv.replacen(header, &header.replace("BilledCost", "Billed_Cost"), 1)).len() > 1);

    // Independently: per grain, the CSV's costs equal daily_spend's cost_usd to the picodollar.
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let mut focus_rows: BTreeMap<Grain, i128> = BTreeMap::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        rows += 1;
        let billed = units(&record[at("BilledCost")]);
        for other in ["EffectiveCost", "ListCost", "ContractedCost"] {
            assert_eq!(units(&record[at(other)]), billed, "{other} differs from BilledCost");
        }
        let quantity = units(&record[at("PricingQuantity")]);
        let tokens = units(&record[at("x_InputTokens")]) + units(&record[at("x_OutputTokens")]);
        assert_eq!(quantity, tokens, "PricingQuantity is the row's input and output tokens");
        assert_eq!(&record[at("BillingAccountId")], "acct-1234");
        assert_eq!(&record[at("PublisherName")], "Acme models");
        assert_eq!(&record[at("ChargeClass")], "");
        let start = &record[at("ChargePeriodStart")];
        let grain = (
            start[..10].to_string(),
            record[at("ResourceId")].to_string(),
            record[at("SkuId")].to_string(),
            record[at("x_Requester")].to_string(),
            record[at("x_Team")].to_string(),
        );
        let team: serde_json::Value = serde_json::from_str(&record[at("Tags")]).unwrap();
        assert_eq!(team["team"], grain.4.as_str());
        assert!(focus_rows.insert(grain.clone(), billed).is_none(), "two rows for {grain:?}");
    }
    assert_eq!(rows, written);
    let sql = "SELECT CAST(usage_date AS STRING), endpoint_name, entity_name, requester, team, CAST(cost_usd AS STRING) FROM t";
    let mut spend: BTreeMap<Grain, i128> = BTreeMap::new();
    for batch in query_table(&dir.path().join("daily_spend"), sql).await {
        let text: Vec<StringArray> = (0..6)
            .map(|i| {
                cast(batch.column(i), &DataType::Utf8).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone()
            })
            .collect();
        for r in 0..batch.num_rows() {
            assert!(text.iter().all(|c| !c.is_null(r)));
            let grain = (0..5).map(|i| text[i].value(r).to_string()).collect::<Vec<_>>();
            let grain = (grain[0].clone(), grain[1].clone(), grain[2].clone(), grain[3].clone(), grain[4].clone());
            spend.insert(grain, units(text[5].value(r)));
        }
    }
    assert!(spend.len() > 100, "the demo has many daily_spend rows");
    assert_eq!(focus_rows, spend);
    let total: i128 = focus_rows.values().sum();
    assert!(total > 0);
}

#[test]
fn focus_names_with_quotes_are_refused_in_the_job_file() {
    let text =
        format!("{}\n[focus]\nbilling_account_name = \"O'Brien\"\n", job_text(None, std::path::Path::new("/tmp/x")));
    let err = JobConfig::parse(&text, &repo().join("jobs/test.toml")).unwrap_err().to_string();
    assert!(err.contains("focus.billing_account_name"), "{err}");
}

#[test]
fn focus_csv_needs_the_focus_costs_output_in_the_run() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
        .args(["run", "--config", "jobs/demo.toml", "--only", "daily_spend", "--focus-csv", "unused.csv"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("add focus_costs to --only"), "{stderr}");
    assert!(!repo().join("unused.csv").exists());
}

/// Usage rows whose `usage_context` values need JSON escaping: a quote, a backslash, a newline
/// and a control character.
const TAGGED_USAGE: &str = r#"
{"request_time":"2026-11-01T01:00:00Z","databricks_request_id":"r1","requester":"alice","served_entity_id":"se-x","status_code":200,"input_token_count":1000000,"output_token_count":0,"usage_context":{"team":"o\"ps","project":"a\"b\\c\nd\u0001e","env":"prod"}}
{"request_time":"2026-11-01T02:00:00Z","databricks_request_id":"r2","requester":"alice","served_entity_id":"se-x","status_code":200,"input_token_count":2000000,"output_token_count":0,"usage_context":{"team":"o\"ps","project":"plain"}}
{"request_time":"2026-11-01T03:00:00Z","databricks_request_id":"r3","requester":"alice","served_entity_id":"se-x","status_code":200,"input_token_count":3000000,"output_token_count":0,"usage_context":{"team":"o\"ps","project":"plain"}}
{"request_time":"2026-11-01T04:00:00Z","databricks_request_id":"r4","requester":"alice","served_entity_id":"se-x","status_code":200,"input_token_count":4000000,"output_token_count":0,"usage_context":{"team":"o\"ps"}}
"#;

#[tokio::test]
async fn focus_tags_carry_the_usage_context_keys_as_escaped_json() {
    use gateway_analytics::generate::tables::{served_entities_schema, usage_schema};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    async fn write(path: std::path::PathBuf, schema: deltalake::arrow::datatypes::SchemaRef, json: &str) {
        let reader = deltalake::arrow::json::ReaderBuilder::new(schema)
            .build(std::io::Cursor::new(json.trim().as_bytes()))
            .unwrap();
        super::common::write_delta(&path, reader.collect::<Result<_, _>>().unwrap()).await;
    }
    write(root.join("usage"), usage_schema(), TAGGED_USAGE).await;
    write(
        root.join("served"),
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
                [ai_gateway]\ntag_keys = [\"project\", \"env\", \"team\"]\n";
    let job = JobConfig::parse(text, &root.join("job.toml")).unwrap();
    let window =
        gateway_analytics::window::RunWindow::new(super::common::date("2026-11-01"), super::common::date("2026-11-01"))
            .unwrap();
    run_job(&job, window).await.unwrap();
    let path = root.join("focus.csv");
    focus::write_csv(&job, &window, &path).await.unwrap();
    let csv = std::fs::read_to_string(&path).unwrap();
    assert_eq!(violations(&csv), Vec::<String>::new());

    // One row per tag combination, each Tags a JSON object whose values come back exactly.
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut found = Vec::new();
    let mut raw = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        let tags: serde_json::Value = serde_json::from_str(&record[at("Tags")]).expect("Tags is JSON");
        found.push((tags, record[at("BilledCost")].to_string()));
        raw.push(record[at("Tags")].to_string());
    }
    found.sort_by_key(|(_, cost)| cost.clone());
    let expected = [
        (serde_json::json!({"team": "o\"ps", "project": "a\"b\\c\nd\u{1}e", "env": "prod"}), "1.000000000000"),
        (serde_json::json!({"team": "o\"ps"}), "4.000000000000"),
        (serde_json::json!({"team": "o\"ps", "project": "plain"}), "5.000000000000"),
    ];
    let expected: Vec<(serde_json::Value, String)> = expected.into_iter().map(|(t, c)| (t, c.to_string())).collect();
    assert_eq!(found, expected);
    // The raw text escapes the newline and the control character, as JSON requires.
    let escaped = r#"{"team":"o\"ps","project":"a\"b\\c\u000ad\u0001e","env":"prod"}"#;
    assert!(raw.iter().any(|t| t == escaped), "{raw:?}");
}
