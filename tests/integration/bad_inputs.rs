//! Bad input rows: each kind is counted in data_quality and in the run summary, raises its
//! documented default alert, never bills negative and never drops out of spend silently
//! (docs/OUTPUTS.md#bad-input-rows). Every bad table is a real Delta table derived from the
//! demo fixtures; TIMESTAMP_NTZ inputs are read as UTC.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gateway_analytics::config::JobConfig;
use gateway_analytics::engine::session;
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;
use gateway_analytics::outputs::OUTPUT_TABLES;
use gateway_analytics::settings::DATA_QUALITY_CHECKS;
use gateway_analytics::summary::{RunSummary, SummaryFormat};
use gateway_analytics::window::RunWindow;

use super::common::{
    assert_same_lines, csv_text, date, demo, demo_job, demo_window, job_text, query_table, read_table_where, repo,
    run_job, run_only, table_text, write_delta,
};

/// Writes the demo table `table` through `select` (a query over a table of the same name) as a
/// new Delta table at `target` (or appends to it).
async fn derived(table: &str, target: &Path, select: &str) {
    let ctx = session().unwrap();
    let source = Location::resolve(&demo().join(table).display().to_string(), Path::new("/")).unwrap();
    ctx.register_table(table, delta_provider(&ctx, table, &source, &Default::default()).await.unwrap()).unwrap();
    let batches = ctx.sql(select).await.unwrap().collect().await.unwrap();
    write_delta(target, batches).await;
}

/// The demo job (payload table `payload`, or none) with some demo tables replaced.
fn job_text_with(replaced: &[(&str, &Path)], payload: Option<&Path>, output: &Path) -> String {
    let mut text = job_text(payload, output);
    for (table, path) in replaced {
        text = text.replace(
            &format!("{:?}", demo().join(table).display().to_string()),
            &format!("{:?}", path.display().to_string()),
        );
    }
    text
}

fn job(text: &str) -> JobConfig {
    JobConfig::parse(text, &repo().join("jobs/test.toml")).unwrap()
}

fn window(from: &str, to: &str) -> RunWindow {
    RunWindow::new(date(from), date(to)).unwrap()
}

/// One SQL value of an output (the first column of the first row).
async fn scalar(table: &Path, sql: &str) -> String {
    let rows = query_table(table, sql).await;
    let text = csv_text(&rows);
    text.lines().nth(1).unwrap_or_default().to_string()
}

async fn int(table: &Path, sql: &str) -> i64 {
    let value = scalar(table, sql).await;
    value.parse().unwrap_or_else(|_| panic!("{sql}: `{value}` is not an integer"))
}

/// data_quality as (usage_date, table.check) -> (failed_rows, table_rows).
async fn quality(output: &Path) -> BTreeMap<(String, String), (i64, i64)> {
    let rows = query_table(
        &output.join("data_quality"),
        "SELECT CAST(usage_date AS VARCHAR) AS d, concat(table_name, '.', check_name) AS c, failed_rows, table_rows \
         FROM t ORDER BY 1, 2",
    )
    .await;
    csv_text(&rows)
        .lines()
        .skip(1)
        .map(|line| {
            let parts: Vec<&str> = line.split(',').collect();
            ((parts[0].to_string(), parts[1].to_string()), (parts[2].parse().unwrap(), parts[3].parse().unwrap()))
        })
        .collect()
}

/// The data_quality alerts fired as (scope_value, usage_date, severity, threshold).
async fn quality_alerts(output: &Path) -> BTreeSet<(String, String, String, String)> {
    let rows = query_table(
        &output.join("alerts"),
        "SELECT scope_value, CAST(usage_date AS VARCHAR) AS d, severity, CAST(threshold AS VARCHAR) AS threshold \
         FROM t WHERE rule = 'data_quality' AND status = 'firing'",
    )
    .await;
    csv_text(&rows)
        .lines()
        .skip(1)
        .map(|line| {
            let p: Vec<&str> = line.split(',').collect();
            (p[0].to_string(), p[1].to_string(), p[2].to_string(), p[3].to_string())
        })
        .collect()
}

fn checks(summary: &RunSummary) -> BTreeMap<String, i64> {
    summary.checks.iter().map(|c| (c.check.clone(), c.rows)).collect()
}

fn printed(summary: &RunSummary) -> String {
    let mut out = Vec::new();
    summary.print(SummaryFormat::Table, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Window totals of daily_spend: requests, succeeded + rate_limited + failed, succeeded, input
/// and output tokens, and the smallest token count and cost of any row.
async fn spend_totals(output: &Path) -> (i64, i64, i64, i64, i64, String) {
    let t = output.join("daily_spend");
    let requests = int(&t, "SELECT SUM(requests) FROM t").await;
    let classified = int(&t, "SELECT SUM(succeeded + rate_limited + failed) FROM t").await;
    let succeeded = int(&t, "SELECT SUM(succeeded) FROM t").await;
    let input = int(&t, "SELECT SUM(input_tokens) FROM t").await;
    let output_tokens = int(&t, "SELECT SUM(output_tokens) FROM t").await;
    let smallest = scalar(
        &t,
        "SELECT concat(CAST(LEAST(MIN(input_tokens), MIN(output_tokens), MIN(cache_read_tokens), \
         MIN(cache_write_tokens), MIN(reasoning_tokens)) AS VARCHAR), ' ', CAST(MIN(cost_usd) AS VARCHAR)) FROM t",
    )
    .await;
    (requests, classified, succeeded, input, output_tokens, smallest)
}

/// The usage rows of 2026-11-02 with status 200 and both token counts positive, numbered by
/// request id: the rows the bad usage tables change (`n`, 0 for every other row).
const USAGE_NUMBERED: &str = "\
WITH picked AS (
  SELECT databricks_request_id AS id, ROW_NUMBER() OVER (ORDER BY databricks_request_id) AS n
  FROM endpoint_usage
  WHERE request_time >= TIMESTAMP '2026-11-02 00:00:00' AND request_time < TIMESTAMP '2026-11-03 00:00:00'
    AND status_code = 200 AND input_token_count > 0 AND output_token_count > 0
    AND databricks_request_id IS NOT NULL
)
SELECT u.*, COALESCE(p.n, 0) AS n FROM endpoint_usage u LEFT JOIN picked p ON p.id = u.databricks_request_id";

/// The bad usage table: rows 1-5 with a negative input count and 6-8 with a negative output
/// count (`negative` gives the count they get: `-x` for the bad table, `0` for the table the
/// documented definition bills), 9-12 with a NULL status, 13-15 with a NULL request_time
/// (left out when `drop_undated`) and 16-18 twice.
fn bad_usage_sql(negative: &str, drop_undated: bool) -> String {
    let input = negative.replace('x', "input_token_count");
    let output = negative.replace('x', "output_token_count");
    let undated = if drop_undated { "WHERE n NOT BETWEEN 13 AND 15" } else { "" };
    format!(
        "WITH numbered AS ({USAGE_NUMBERED}),
        changed AS (
          SELECT * REPLACE (
            CASE WHEN n BETWEEN 1 AND 5 THEN {input} ELSE input_token_count END AS input_token_count,
            CASE WHEN n BETWEEN 6 AND 8 THEN {output} ELSE output_token_count END AS output_token_count,
            CASE WHEN n BETWEEN 9 AND 12 THEN NULL ELSE status_code END AS status_code,
            CASE WHEN n BETWEEN 13 AND 15 THEN NULL ELSE request_time END AS request_time)
          FROM numbered
        )
        SELECT * EXCLUDE (n) FROM changed {undated}
        UNION ALL
        SELECT * EXCLUDE (n) FROM changed WHERE n BETWEEN 16 AND 18"
    )
}

#[tokio::test]
async fn bad_usage_rows_are_counted_alerted_and_never_billed_negative() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, billed) = (dir.path().join("usage_bad"), dir.path().join("usage_as_billed"));
    derived("endpoint_usage", &bad, &bad_usage_sql("-x", false)).await;
    derived("endpoint_usage", &billed, &bad_usage_sql("0", true)).await;
    assert_eq!(int(&bad, "SELECT COUNT(*) FROM t WHERE input_token_count < 0").await, 5);
    assert_eq!(int(&bad, "SELECT COUNT(*) FROM t WHERE output_token_count < 0").await, 3);

    let payload = demo().join("gateway_payload");
    let (reference, out_bad, out_billed) = (dir.path().join("ref"), dir.path().join("bad"), dir.path().join("billed"));
    run_job(&demo_job(&reference), demo_window()).await.unwrap();
    let summary = run_job(&job(&job_text_with(&[("endpoint_usage", &bad)], Some(&payload), &out_bad)), demo_window())
        .await
        .unwrap();
    run_job(&job(&job_text_with(&[("endpoint_usage", &billed)], Some(&payload), &out_billed)), demo_window())
        .await
        .unwrap();

    // Negative counts bill 0 tokens, NULL-time rows are in no output: every output but the
    // checks equals that of the table holding exactly what the definitions bill.
    for table in OUTPUT_TABLES.iter().map(|t| t.name).filter(|t| !["data_quality", "alerts"].contains(t)) {
        assert_same_lines(&table_text(&out_billed.join(table)).await, &table_text(&out_bad.join(table)).await, table);
    }
    // The independent implementation of the definitions agrees, bad rows included.
    super::oracle::spend_and_errors_agree(&bad, &out_bad).await;
    let (requests, classified, succeeded, input, _, smallest) = spend_totals(&out_bad).await;
    let (ref_requests, ref_classified, ref_succeeded, ref_input, _, _) = spend_totals(&reference).await;
    assert!(!smallest.contains('-'), "a negative token count or cost in daily_spend: {smallest}");
    // 3 undated rows left out, 3 duplicates billed as rows of their own.
    assert_eq!(requests, ref_requests);
    // The 4 NULL statuses are requests with no outcome class.
    assert_eq!(succeeded, ref_succeeded - 4);
    assert_eq!(requests - classified, ref_requests - ref_classified + 4);
    let numbered = |filter: &str| {
        format!("WITH numbered AS ({USAGE_NUMBERED}) SELECT SUM(input_token_count) FROM numbered WHERE {filter}")
    };
    let ctx = session().unwrap();
    let source = Location::resolve(&demo().join("endpoint_usage").display().to_string(), Path::new("/")).unwrap();
    ctx.register_table("endpoint_usage", delta_provider(&ctx, "usage", &source, &Default::default()).await.unwrap())
        .unwrap();
    let sum = async |filter: &str| -> i64 {
        let rows = ctx.sql(&numbered(filter)).await.unwrap().collect().await.unwrap();
        csv_text(&rows).lines().nth(1).unwrap().parse().unwrap()
    };
    let negative_input = sum("n BETWEEN 1 AND 5").await;
    let undated_input = sum("n BETWEEN 13 AND 15").await;
    let duplicated_input = sum("n BETWEEN 16 AND 18").await;
    assert_eq!(input, ref_input - negative_input - undated_input + duplicated_input);

    // Each bad row is counted once, on its day; the undated ones on the window's last date,
    // against that day's rows plus themselves.
    let q = quality(&out_bad).await;
    let reference_q = quality(&reference).await;
    let rows_of = |day: &str| reference_q[&(day.to_string(), "usage.null_requester".to_string())].1;
    let at = |day: &str, check: &str| q.get(&(day.to_string(), check.to_string())).copied();
    assert_eq!(at("2026-11-02", "usage.negative_tokens"), Some((8, rows_of("2026-11-02"))));
    assert_eq!(at("2026-11-02", "usage.null_status_code"), Some((4, rows_of("2026-11-02"))));
    assert_eq!(at("2026-11-02", "usage.duplicate_request_id"), Some((3, rows_of("2026-11-02"))));
    assert_eq!(at("2026-11-03", "usage.null_request_time"), Some((3, rows_of("2026-11-03") + 3)));
    for day in ["2026-11-01", "2026-11-02"] {
        assert_eq!(at(day, "usage.null_request_time"), Some((0, rows_of(day))));
    }
    for check in ["usage.negative_tokens", "usage.null_status_code", "usage.duplicate_request_id"] {
        assert_eq!(at("2026-11-01", check).map(|c| c.0), Some(0), "{check}");
        assert_eq!(at("2026-11-03", check).map(|c| c.0), Some(0), "{check}");
    }

    // The summary lists each check with its window total, the undated one with a note.
    let totals = checks(&summary);
    assert_eq!(totals.keys().map(String::as_str).collect::<Vec<_>>(), DATA_QUALITY_CHECKS.to_vec());
    for (check, rows) in [
        ("usage.negative_tokens", 8),
        ("usage.null_status_code", 4),
        ("usage.duplicate_request_id", 3),
        ("usage.null_request_time", 3),
    ] {
        assert_eq!(totals[check], rows, "{check}");
    }
    let text = printed(&summary);
    assert!(text.contains(&format!("check {:<34} {:>7} rows\n", "usage.negative_tokens", 8)), "{text}");
    let undated_line = text.lines().find(|l| l.starts_with("check usage.null_request_time")).unwrap_or_default();
    assert!(undated_line.contains("3 rows (NULL request_time: in no other output"), "{text}");

    // The strict default: any such row is a warning (threshold 0), 1% of the day's rows critical.
    let fired = quality_alerts(&out_bad).await;
    let new: BTreeSet<_> = fired.difference(&quality_alerts(&reference).await).cloned().collect();
    let warning = |check: &str, day: &str| (check.to_string(), day.to_string(), "warning".into(), "0.0".into());
    assert_eq!(
        new,
        BTreeSet::from([
            warning("usage.duplicate_request_id", "2026-11-02"),
            warning("usage.negative_tokens", "2026-11-02"),
            warning("usage.null_request_time", "2026-11-03"),
            warning("usage.null_status_code", "2026-11-02"),
        ])
    );

    // The job file replaces a check's thresholds (and keeps the other built-in ones).
    let relaxed = format!(
        "{}\n[alerts.data_quality]\nchecks = {{ \"usage.negative_tokens\" = {{ min_rows = 1, warning = 0.01, critical = 0.5 }}, \
         \"usage.null_status_code\" = {{ min_rows = 1, warning = 0.0001, critical = 0.001 }} }}\n",
        job_text_with(&[("endpoint_usage", &bad)], Some(&payload), &out_bad)
    );
    run_only(&job(&relaxed), demo_window(), &["alerts"]).await.unwrap();
    let fired = quality_alerts(&out_bad).await;
    assert!(!fired.iter().any(|a| a.0 == "usage.negative_tokens"), "{fired:?}");
    assert!(fired.contains(&(
        "usage.null_status_code".to_string(),
        "2026-11-02".to_string(),
        "critical".to_string(),
        "0.001".to_string()
    )));
    assert!(fired.contains(&warning("usage.null_request_time", "2026-11-03")), "{fired:?}");
}

/// The payload rows of 2026-11-02 with status 200 and sampling fraction 1, numbered by request
/// id (`n`, 0 for every other row).
const PAYLOAD_NUMBERED: &str = "\
WITH picked AS (
  SELECT databricks_request_id AS id, ROW_NUMBER() OVER (ORDER BY databricks_request_id) AS n
  FROM gateway_payload
  WHERE request_time >= TIMESTAMP '2026-11-02 00:00:00' AND request_time < TIMESTAMP '2026-11-03 00:00:00'
    AND status_code = 200 AND sampling_fraction = 1.0 AND databricks_request_id IS NOT NULL
    AND gateway_usage(response)['input_tokens'] > 0
)
SELECT g.*, COALESCE(p.n, 0) AS n FROM gateway_payload g LEFT JOIN picked p ON p.id = g.databricks_request_id";

/// Sampling fractions no weight can be taken from (rows 7-13 of the bad payload table), and a
/// valid one that gives the largest weight, 1e9 (row 14).
const BAD_FRACTIONS: [&str; 7] = ["NULL", "0.0", "-1.0", "1.5", "'NaN'", "'1e-300'", "'1e-10'"];

/// The bad payload table: rows 1-2 with a NULL request_time, 3 with a NULL request_time and
/// request_date, 4 with a NULL request_time and a request_date before the window, 5-6 with a
/// NULL status, 7-13 with the [`BAD_FRACTIONS`], 14 with sampling fraction 1e-9 and 15 with a
/// body whose prompt token count is negative.
fn bad_payload_sql() -> String {
    let fractions: String = BAD_FRACTIONS
        .iter()
        .enumerate()
        .map(|(i, f)| format!("WHEN n = {} THEN CAST({f} AS DOUBLE) ", i + 7))
        .collect();
    format!(
        "WITH numbered AS ({PAYLOAD_NUMBERED})
        SELECT * EXCLUDE (n) FROM (
          SELECT * REPLACE (
            CASE WHEN n BETWEEN 1 AND 4 THEN NULL ELSE request_time END AS request_time,
            CASE WHEN n = 3 THEN NULL WHEN n = 4 THEN DATE '2026-10-15' ELSE request_date END AS request_date,
            CASE WHEN n BETWEEN 5 AND 6 THEN NULL ELSE status_code END AS status_code,
            CASE {fractions} WHEN n = 14 THEN CAST('1e-9' AS DOUBLE) ELSE sampling_fraction END AS sampling_fraction,
            CASE WHEN n = 15 THEN '{{\"object\":\"chat.completion\",\"usage\":{{\"prompt_tokens\":-5,\"completion_tokens\":3}}}}'
                 ELSE response END AS response)
          FROM numbered
        ) AS changed"
    )
}

/// The job over the demo without its usage table: spend estimated from the payload.
fn payload_only(payload: &Path, output: &Path) -> JobConfig {
    let text: String =
        job_text(Some(payload), output).lines().filter(|l| !l.starts_with("usage =")).collect::<Vec<_>>().join("\n");
    job(&text)
}

async fn bad_payload(dir: &Path) -> PathBuf {
    let bad = dir.join("payload_bad");
    derived("gateway_payload", &bad, &bad_payload_sql()).await;
    assert_eq!(int(&bad, "SELECT COUNT(*) FROM t WHERE request_time IS NULL").await, 4);
    assert_eq!(
        int(&bad, "SELECT COUNT(*) FROM t WHERE sampling_fraction IS NULL OR NOT sampling_fraction > 0").await,
        3
    );
    bad
}

/// Input tokens of the numbered payload rows in `numbers`, from their bodies.
async fn payload_input_tokens(numbers: &str) -> i64 {
    let ctx = session().unwrap();
    let source = Location::resolve(&demo().join("gateway_payload").display().to_string(), Path::new("/")).unwrap();
    ctx.register_table("gateway_payload", delta_provider(&ctx, "payload", &source, &Default::default()).await.unwrap())
        .unwrap();
    let sql = format!(
        "WITH numbered AS ({PAYLOAD_NUMBERED}) \
         SELECT SUM(gateway_usage(response)['input_tokens']) AS s FROM numbered WHERE n IN ({numbers})"
    );
    let rows = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    csv_text(&rows).lines().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn bad_payload_rows_are_counted_and_alerted() {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_payload(dir.path()).await;
    let (reference, out) = (dir.path().join("ref"), dir.path().join("bad"));
    run_job(&demo_job(&reference), demo_window()).await.unwrap();
    let summary = run_job(&job(&job_text(Some(&bad), &out)), demo_window()).await.unwrap();

    let (q, reference_q) = (quality(&out).await, quality(&reference).await);
    let rows_of = |day: &str| reference_q[&(day.to_string(), "payload.missing_request_id".to_string())].1;
    let at = |day: &str, check: &str| q.get(&(day.to_string(), check.to_string())).copied();
    let nov_2 = rows_of("2026-11-02") - 4;
    // Undated rows: on their request_date, on the last date without one, not at all when their
    // request_date is outside the window (that date's runs count them).
    assert_eq!(at("2026-11-02", "payload.null_request_time"), Some((2, nov_2 + 2)));
    assert_eq!(at("2026-11-03", "payload.null_request_time"), Some((1, rows_of("2026-11-03") + 1)));
    assert_eq!(at("2026-11-01", "payload.null_request_time"), Some((0, rows_of("2026-11-01"))));
    assert_eq!(at("2026-11-02", "payload.null_status_code"), Some((2, nov_2)));
    assert_eq!(at("2026-11-02", "payload.invalid_sampling_fraction"), Some((7, nov_2)));
    let latency = |q: &BTreeMap<(String, String), (i64, i64)>| {
        q[&("2026-11-02".to_string(), "payload.not_a_latency_sample".to_string())].0
    };
    assert_eq!(latency(&q), latency(&reference_q) + 7);
    let totals = checks(&summary);
    assert_eq!(totals["payload.null_request_time"], 3);
    assert_eq!(totals["payload.null_status_code"], 2);
    assert_eq!(totals["payload.invalid_sampling_fraction"], 7);
    assert!(printed(&summary).contains("check payload.null_request_time"));

    let new: BTreeSet<_> = quality_alerts(&out).await.difference(&quality_alerts(&reference).await).cloned().collect();
    let warning = |check: &str, day: &str| (check.to_string(), day.to_string(), "warning".into(), "0.0".into());
    assert_eq!(
        new,
        BTreeSet::from([
            warning("payload.invalid_sampling_fraction", "2026-11-02"),
            warning("payload.null_request_time", "2026-11-02"),
            warning("payload.null_request_time", "2026-11-03"),
            warning("payload.null_status_code", "2026-11-02"),
        ])
    );

    // The payload's own estimate: a row without a usable fraction counts as itself (1), the
    // 1e-9 row as 1e9 requests; the undated rows are in no estimate.
    let estimate = async |output: &Path| -> f64 {
        scalar(
            &output.join("reconciliation"),
            "SELECT SUM(payload_estimated_requests) FROM t WHERE usage_date = DATE '2026-11-02'",
        )
        .await
        .parse()
        .unwrap()
    };
    let expected = estimate(&reference).await - 4.0 - 8.0 + 7.0 + 1e9;
    assert!((estimate(&out).await - expected).abs() < 1e-3, "{} vs {expected}", estimate(&out).await);
}

#[tokio::test]
async fn payload_only_spend_keeps_every_row_and_cannot_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_payload(dir.path()).await;
    let (reference, out) = (dir.path().join("ref"), dir.path().join("bad"));
    run_job(&payload_only(&demo().join("gateway_payload"), &reference), demo_window()).await.unwrap();
    let summary = run_job(&payload_only(&bad, &out), demo_window()).await.unwrap();

    let (requests, _, _, input, _, smallest) = spend_totals(&out).await;
    let (ref_requests, _, _, ref_input, _, _) = spend_totals(&reference).await;
    assert!(!smallest.contains('-'), "a negative token count or cost in daily_spend: {smallest}");
    // Rows 1-4 are undated (in no output); 7-13 count as 1 request each, as before (their
    // fraction was 1); 14 counts 1e9; 15's body has unusable counts: 0 tokens, still 1 request.
    assert_eq!(requests, ref_requests - 4 - 1 + 1_000_000_000);
    let (undated, huge, negative) =
        (payload_input_tokens("1, 2, 3, 4").await, payload_input_tokens("14").await, payload_input_tokens("15").await);
    assert_eq!(input, ref_input - undated - negative + huge * (1_000_000_000 - 1));
    let cost = scalar(&out.join("daily_spend"), "SELECT CAST(SUM(cost_usd) AS VARCHAR) FROM t").await;
    let ref_cost = scalar(&reference.join("daily_spend"), "SELECT CAST(SUM(cost_usd) AS VARCHAR) FROM t").await;
    assert!(cost.parse::<f64>().unwrap() > ref_cost.parse::<f64>().unwrap() * 10.0, "{cost} vs {ref_cost}");

    let totals = checks(&summary);
    assert_eq!(totals["payload.invalid_sampling_fraction"], 7);
    assert_eq!(totals["payload.null_request_time"], 3);
    assert_eq!(totals["usage.null_request_time"], 0, "payload-only mode counts undated rows once");
    let reference_summary = run_job(&payload_only(&demo().join("gateway_payload"), &reference), demo_window()).await;
    let reference_totals = checks(&reference_summary.unwrap());
    assert_eq!(totals["payload.unparseable_response"], reference_totals["payload.unparseable_response"] + 1);
    let alerts = quality_alerts(&out).await;
    assert!(alerts.iter().any(|a| a.0 == "payload.invalid_sampling_fraction" && a.1 == "2026-11-02"), "{alerts:?}");
}

/// TIMESTAMP_NTZ inputs (Delta's timestampNtz feature, Arrow timestamps without a time zone)
/// are read as UTC wall-clock values: the same rows as the TIMESTAMP fixtures, file skipping
/// by date included.
#[tokio::test]
async fn timestamp_ntz_inputs_are_read_as_utc() {
    let dir = tempfile::tempdir().unwrap();
    let ntz = |column: &str| format!("CAST({column} AS TIMESTAMP) AS {column}");
    let usage = dir.path().join("usage_ntz");
    // One file per day, as the fixtures have, so that a one-day run can skip two of them.
    for day in ["2026-11-01", "2026-11-02", "2026-11-03"] {
        let select = format!(
            "SELECT * REPLACE ({}) FROM endpoint_usage WHERE CAST(request_time AS DATE) = DATE '{day}'",
            ntz("request_time")
        );
        derived("endpoint_usage", &usage, &select).await;
    }
    let payload = dir.path().join("payload_ntz");
    derived("gateway_payload", &payload, &format!("SELECT * REPLACE ({}) FROM gateway_payload", ntz("request_time")))
        .await;
    let traces = dir.path().join("traces_ntz");
    derived("trace_logs", &traces, &format!("SELECT * REPLACE ({}) FROM trace_logs", ntz("request_time"))).await;
    let served = dir.path().join("served_ntz");
    derived("served_entities", &served, &format!("SELECT * REPLACE ({}) FROM served_entities", ntz("change_time")))
        .await;
    for table in [&usage, &payload, &traces, &served] {
        let log = std::fs::read_to_string(table.join("_delta_log/00000000000000000000.json")).unwrap();
        assert!(log.contains("\"readerFeatures\":[\"timestampNtz\"]") && log.contains("timestamp_ntz"), "{log}");
    }
    let replaced =
        [("endpoint_usage", usage.as_path()), ("trace_logs", traces.as_path()), ("served_entities", served.as_path())];
    let ntz_job = |output: &Path| job(&job_text_with(&replaced, Some(&payload), output));

    // The reference: Nov 3 of a run over the demo's TIMESTAMP tables.
    let reference = dir.path().join("ref");
    run_job(&demo_job(&reference), window("2026-11-01", "2026-11-03")).await.unwrap();
    // The NTZ tables: a backfill that fills the ledger, then a nightly run of Nov 3 that takes
    // its history from the outputs and reads one day of usage.
    let out = dir.path().join("ntz");
    run_job(&ntz_job(&out), window("2026-10-07", "2026-11-02")).await.unwrap();
    let summary = run_job(&ntz_job(&out), window("2026-11-03", "2026-11-03")).await.unwrap();
    assert_eq!(summary.history.inputs_from, date("2026-11-03"));
    let usage_files = summary.scanned.iter().find(|s| s.table == "usage").map_or(0, |s| s.files);
    assert_eq!(usage_files, 1, "{:?}", summary.scanned);
    for table in OUTPUT_TABLES.iter().map(|t| t.name) {
        let column = if table == "rate_limit_recommendations" { "as_of_date" } else { "usage_date" };
        let nov_3 = format!("{column} = DATE '2026-11-03'");
        let expected = csv_text(&read_table_where(&reference.join(table), &nov_3).await);
        let actual = csv_text(&read_table_where(&out.join(table), &nov_3).await);
        assert!(expected.lines().count() > 1, "{table} has no rows for 2026-11-03");
        assert_same_lines(&expected, &actual, table);
    }
}
