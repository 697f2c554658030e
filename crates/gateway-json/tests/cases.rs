//! `cases.jsonl`: bodies with the results both implementations of these readers must give,
//! this crate and its Spark SQL built-in expressions (`jobs/src/gateway_functions.py`, tested
//! against the same file on local pyspark by `jobs/src/test_gateway_functions.py`). Counts are shown as the SQL
//! functions return them: BIGINT, saturating at i64::MAX.

use gateway_json::{parse_body, parse_trace_token_usage};
use serde_json::{Value, json};

fn bigint(value: u64) -> Value {
    json!(i64::try_from(value).unwrap_or(i64::MAX))
}

#[test]
fn every_case_gives_its_expected_result() {
    let cases = include_str!("cases.jsonl");
    let mut checked = 0;
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).expect("a JSON line");
        let input = case["input"].as_str().expect("input");
        let got = match case["function"].as_str() {
            Some("gateway_usage") => {
                let parsed = parse_body(input);
                let usage = parsed.usage;
                let count = |pick: fn(&gateway_json::TokenUsage) -> u64| usage.as_ref().map(|u| bigint(pick(u)));
                json!([
                    parsed.kind.as_str(),
                    count(|u| u.input_tokens),
                    count(|u| u.output_tokens),
                    count(|u| u.cache_read_tokens),
                    count(|u| u.cache_write_tokens),
                    count(|u| u.reasoning_tokens),
                    parsed.error_code,
                    parsed.limit_source.map(|s| s.as_str()),
                ])
            }
            Some("trace_token_usage") => parse_trace_token_usage(input)
                .map_or(Value::Null, |u| json!([bigint(u.input_tokens), bigint(u.output_tokens)])),
            other => panic!("unknown function {other:?}"),
        };
        assert_eq!(got, case["expected"], "{input:?}");
        checked += 1;
    }
    assert!(checked > 50, "only {checked} cases");
}
