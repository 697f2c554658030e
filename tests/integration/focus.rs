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
