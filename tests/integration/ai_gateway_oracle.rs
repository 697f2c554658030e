//! An independent implementation of the new AI Gateway's outputs (fallbacks, agent_sessions,
//! agent_daily, mcp_usage, tag_spend, ai_gateway_reconciliation, ...) in plain Rust over the
//! raw columns of the generated `system.ai_gateway.usage` and payload tables, compared row by
//! row with the job's outputs. The generated data has fallback chains of 1 to 3 attempts, rows
//! without routing information, sessions without ids (NULL and ''), MCP rows with NULL or 0
//! tokens, tags with empty values, and payload rows duplicated, missing, without
//! `invocation_id`, without a usage row, and with token counts that differ from the usage row's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use deltalake::arrow::array::{Array, AsArray, ListArray, MapArray, StringArray, StructArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};
use gateway_analytics::config::JobConfig;
use gateway_analytics::generate::{GenerateOptions, generate};
use gateway_analytics::prices::{PriceRow, parse_csv};
use gateway_analytics::progress::Progress;
use gateway_analytics::reference_data::parse_teams;
use gateway_analytics::window::RunWindow;

use super::common::{date, read_table, run_job};
use super::oracle::{date_string, decimal_units, floats, ints, nearest_rank, raw_at, strings};

const HOUR_US: i64 = 3_600_000_000;
const TAG_KEYS: [&str; 2] = ["project", "env"];
const MIN_ATTEMPTS: i64 = 5;
const FAILURE_SHARE: f64 = 0.2;
const RESCUE_SHARE: f64 = 0.1;

/// One routing attempt: destination, status, latency.
type Attempt = (String, Option<i64>, Option<i64>);

/// One invocation row as the definitions in docs/OUTPUTS.md read it.
#[derive(Debug, Clone)]
struct Invocation {
    request_id: String,
    invocation_id: String,
    time: i64,
    status: Option<i64>,
    latency: Option<i64>,
    ttfb: Option<i64>,
    endpoint: String,
    model: String,
    tokens_reported: bool,
    service_type: String,
    destination: String,
    requester: String,
    team: String,
    tags: Option<Vec<(String, Option<String>)>>,
    source: Option<String>,
    agent: Option<String>,
    agent_version: Option<String>,
    surface: Option<String>,
    session_id: Option<String>,
    subagent: Option<String>,
    mcp_server_type: Option<String>,
    mcp_method: Option<String>,
    mcp_tool: Option<String>,
    attempts: Vec<Attempt>,
    input: i64,
    output: i64,
    categories: [i64; 3],
    priced: bool,
    cost_units: i64,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

/// The agent named by session_metadata, else by the user agent (first match).
fn agent_of(coding_agent: &Option<String>, user_agent: &Option<String>) -> Option<String> {
    if let Some(agent) = non_empty(coding_agent) {
        return Some(agent);
    }
    let ua = user_agent.as_deref()?;
    let lower = ua.to_lowercase();
    let agent = if ua.starts_with("claude-cli/") {
        "claude-code"
    } else if ua.starts_with("codex") {
        "codex"
    } else if lower.contains("cursor") {
        "cursor"
    } else if lower.contains("gemini-cli") {
        "gemini"
    } else if lower.contains("copilot") {
        "github-copilot"
    } else if ua.starts_with("opencode") {
        "opencode"
    } else if ua.starts_with("ucode/") {
        "ucode"
    } else {
        return None;
    };
    Some(agent.to_string())
}

fn map_entries(map: &MapArray, row: usize) -> Option<Vec<(String, Option<String>)>> {
    if map.is_null(row) {
        return None;
    }
    let entries = map.value(row);
    let keys = entries.column(0).as_any().downcast_ref::<StringArray>().unwrap();
    let values = entries.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    Some(
        (0..keys.len())
            .map(|k| (keys.value(k).to_string(), (!values.is_null(k)).then(|| values.value(k).to_string())))
            .collect(),
    )
}

fn tag(tags: &Option<Vec<(String, Option<String>)>>, key: &str) -> Option<String> {
    tags.as_ref()?.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.clone())
}

fn attempts_of(list: &ListArray, row: usize) -> Vec<Attempt> {
    if list.is_null(row) {
        return Vec::new();
    }
    let elements = list.value(row);
    let elements = elements.as_any().downcast_ref::<StructArray>().unwrap();
    let column = |name: &str| elements.column_by_name(name).unwrap().clone();
    let destinations = cast(&column("destination"), &DataType::Utf8).unwrap();
    let destinations = destinations.as_string::<i32>();
    let statuses = cast(&column("status_code"), &DataType::Int64).unwrap();
    let statuses = statuses.as_primitive::<Int64Type>();
    let latencies = cast(&column("latency_ms"), &DataType::Int64).unwrap();
    let latencies = latencies.as_primitive::<Int64Type>();
    (0..elements.len())
        .map(|i| {
            let destination = (!destinations.is_null(i)).then(|| destinations.value(i).to_string());
            (
                destination.unwrap_or("(none)".into()),
                (!statuses.is_null(i)).then(|| statuses.value(i)),
                (!latencies.is_null(i)).then(|| latencies.value(i)),
            )
        })
        .collect()
}

fn cost(price: Option<&PriceRow>, input: i64, output: i64, [read, write, reasoning]: [i64; 3]) -> Option<i64> {
    let p = price?;
    let units = i128::from(input - read - write) * p.input
        + i128::from(read) * p.cache_read.unwrap_or(p.input)
        + i128::from(write) * p.cache_write.unwrap_or(p.input)
        + i128::from(output - reasoning) * p.output
        + i128::from(reasoning) * p.reasoning.unwrap_or(p.output);
    Some(i64::try_from(units).unwrap())
}

/// The invocations of `[start, end)` in the raw usage table of `data`.
async fn invocations(data: &Path, start: i64, end: i64) -> Vec<Invocation> {
    let teams: HashMap<String, String> =
        parse_teams(&std::fs::read(data.join("teams.csv")).unwrap(), "teams").unwrap().into_iter().collect();
    let prices = parse_csv(&std::fs::read(data.join("prices.csv")).unwrap(), "prices").unwrap();
    let columns = "request_id, invocation_id, event_time, status_code, latency_ms, service_name, endpoint_name, \
        service_type, destination_name, destination_model, requester, user_agent, input_tokens, output_tokens, \
        get_field(token_details, 'cache_read_input_tokens'), get_field(token_details, 'cache_creation_input_tokens'), \
        get_field(token_details, 'output_reasoning_tokens'), get_field(invocation_metadata, 'source'), \
        get_field(session_metadata, 'coding_agent'), get_field(session_metadata, 'agent_version'), \
        get_field(session_metadata, 'surface'), get_field(session_metadata, 'client_session_id'), \
        get_field(session_metadata, 'client_subagent_id'), get_field(mcp_metadata, 'server_type'), \
        get_field(mcp_metadata, 'json_rpc_method'), get_field(mcp_metadata, 'tool_name'), request_tags, \
        get_field(routing_information, 'attempts'), time_to_first_byte_ms";
    let mut out = Vec::new();
    for batch in raw_at(&data.join("ai_gateway_usage"), columns).await {
        let s: Vec<Vec<Option<String>>> = (0..batch.num_columns())
            .map(|i| if i == 26 || i == 27 { Vec::new() } else { strings(&batch, i) })
            .collect();
        let n: HashMap<usize, Vec<Option<i64>>> =
            [2, 3, 4, 12, 13, 14, 15, 16, 28].into_iter().map(|i| (i, ints(&batch, i))).collect();
        let tags = batch.column(26).as_any().downcast_ref::<MapArray>().unwrap();
        let attempts = batch.column(27).as_any().downcast_ref::<ListArray>().unwrap();
        for r in 0..batch.num_rows() {
            let Some(time) = n[&2][r].filter(|t| *t >= start && *t < end) else { continue };
            let row_tags = map_entries(tags, r);
            let requester_raw = s[10][r].clone();
            let team = non_empty(&tag(&row_tags, "team"))
                .or_else(|| requester_raw.as_ref().and_then(|p| teams.get(p)).filter(|t| !t.is_empty()).cloned())
                .unwrap_or("unattributed".into());
            let agent = agent_of(&s[18][r], &s[11][r]);
            let agent_version = agent.as_ref().and_then(|_| {
                non_empty(&s[19][r]).or_else(|| {
                    let ua = s[11][r].as_deref()?;
                    if ua.starts_with("Mozilla/") {
                        return None;
                    }
                    let first = ua.split(' ').next().unwrap_or("");
                    first.split('/').nth(1).filter(|v| !v.is_empty()).map(str::to_string)
                })
            });
            let model = s[9][r].clone().or(s[8][r].clone()).or(s[6][r].clone()).unwrap_or("(unknown)".into());
            let input = n[&12][r].unwrap_or(0).max(0);
            let output = n[&13][r].unwrap_or(0).max(0);
            let read = n[&14][r].unwrap_or(0).max(0).min(input);
            let reasoning = n[&16][r].unwrap_or(0).max(0).min(output);
            let write = n[&15][r].unwrap_or(0).max(0).min(input - read);
            let price = prices
                .iter()
                .filter(|p| p.entity_name == model && p.effective_from_us <= time)
                .max_by_key(|p| p.effective_from_us);
            let cost_units = cost(price, input, output, [read, write, reasoning]);
            out.push(Invocation {
                request_id: s[0][r].clone().unwrap(),
                invocation_id: s[1][r].clone().unwrap(),
                time,
                status: n[&3][r],
                latency: n[&4][r],
                ttfb: n[&28][r],
                model: model.clone(),
                tokens_reported: n[&12][r].is_some() || n[&13][r].is_some(),
                endpoint: s[5][r].clone().or(s[6][r].clone()).unwrap_or("(unknown)".into()),
                service_type: s[7][r].clone().unwrap_or("MODEL_SERVICE".into()),
                destination: s[8][r].clone().or(s[9][r].clone()).unwrap_or("(none)".into()),
                requester: requester_raw.unwrap_or("(unknown)".into()),
                team,
                tags: row_tags,
                source: s[17][r].clone(),
                agent,
                agent_version,
                surface: non_empty(&s[20][r]),
                session_id: non_empty(&s[21][r]),
                subagent: non_empty(&s[22][r]),
                mcp_server_type: s[23][r].clone(),
                mcp_method: s[24][r].clone(),
                mcp_tool: s[25][r].clone(),
                attempts: attempts_of(attempts, r),
                input,
                output,
                categories: [read, write, reasoning],
                priced: price.is_some(),
                cost_units: cost_units.unwrap_or(0),
            });
        }
    }
    out
}

type Rows = BTreeMap<Vec<String>, Vec<Option<i64>>>;

/// How a column of an output is compared: part of the key (as text, or an integer or
/// timestamp as its number) or a value (integer, timestamp, exact decimal in 10^-12 units,
/// DOUBLE scaled by 10^9 and rounded, boolean as 0/1).
#[derive(Clone, Copy)]
enum Col {
    Key,
    KeyInt,
    Int,
    Decimal,
    Float,
    Bool,
}

async fn job_rows(table: &Path, columns: &[(&str, Col)]) -> Rows {
    let mut rows = Rows::new();
    for batch in read_table(table).await {
        let index = |name: &str| batch.schema().index_of(name).unwrap();
        let mut keys = vec![Vec::new(); batch.num_rows()];
        let mut values = vec![Vec::new(); batch.num_rows()];
        for (name, col) in columns {
            let i = index(name);
            match col {
                Col::Key => {
                    strings(&batch, i).into_iter().enumerate().for_each(|(r, v)| keys[r].push(v.unwrap_or_default()))
                }
                Col::KeyInt => {
                    ints(&batch, i).into_iter().enumerate().for_each(|(r, v)| keys[r].push(v.unwrap().to_string()))
                }
                Col::Int => ints(&batch, i).into_iter().enumerate().for_each(|(r, v)| values[r].push(v)),
                Col::Bool => {
                    let column = batch.column(i).as_boolean();
                    (0..batch.num_rows()).for_each(|r| values[r].push(Some(i64::from(column.value(r)))))
                }
                Col::Decimal => strings(&batch, i)
                    .into_iter()
                    .enumerate()
                    .for_each(|(r, v)| values[r].push(v.map(|t| i64::try_from(decimal_units(&t)).unwrap()))),
                Col::Float => floats(&batch, i)
                    .into_iter()
                    .enumerate()
                    .for_each(|(r, v)| values[r].push(v.map(|f| (f * 1e9).round() as i64))),
            }
        }
        for (key, value) in keys.into_iter().zip(values) {
            assert!(rows.insert(key.clone(), value).is_none(), "{}: key {key:?} twice", table.display());
        }
    }
    rows
}

fn assert_same(table: &str, job: &Rows, expected: &Rows) {
    for (key, value) in expected {
        assert_eq!(job.get(key), Some(value), "{table} row {key:?}");
    }
    assert_eq!(job.len(), expected.len(), "{table}: rows");
}

fn share(part: i64, whole: i64) -> Option<i64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 1e9).round() as i64)
}

fn ok(status: Option<i64>) -> bool {
    status.is_some_and(|s| (200..=299).contains(&s))
}

fn fallbacks(rows: &[Invocation]) -> Rows {
    #[derive(Default)]
    struct Group {
        attempts: i64,
        failed: i64,
        failed_429: i64,
        failed_5xx: i64,
        first: i64,
        rescued: i64,
        failed_after: i64,
        served: i64,
        rescue_latencies: Vec<i64>,
    }
    let mut groups: BTreeMap<(String, i64, String, String), Group> = BTreeMap::new();
    let mut served_totals: HashMap<(i64, String), i64> = HashMap::new();
    for row in rows.iter().filter(|r| r.service_type != "MCP_SERVICE") {
        let hour = row.time - row.time.rem_euclid(HOUR_US);
        let attempts = if row.attempts.is_empty() {
            vec![(row.destination.clone(), row.status, row.latency)]
        } else {
            row.attempts.clone()
        };
        let key = |destination: &str| (date_string(row.time), hour, row.endpoint.clone(), destination.to_string());
        for (destination, status, _) in &attempts {
            let g = groups.entry(key(destination)).or_default();
            g.attempts += 1;
            g.failed += i64::from(!ok(*status));
            g.failed_429 += i64::from(*status == Some(429));
            g.failed_5xx += i64::from(status.is_some_and(|s| (500..=599).contains(&s)));
        }
        let n = attempts.len();
        let rescued = n >= 2 && !ok(attempts[0].1) && ok(row.status);
        let first = groups.entry(key(&attempts[0].0)).or_default();
        first.first += 1;
        first.rescued += i64::from(rescued);
        first.failed_after += i64::from(n >= 2 && !ok(row.status));
        let before_last = &attempts[..n - 1];
        if rescued && before_last.iter().all(|a| a.2.is_some()) {
            first.rescue_latencies.push(before_last.iter().map(|a| a.2.unwrap_or(0)).sum());
        }
        if ok(row.status) {
            groups.entry(key(&attempts[n - 1].0)).or_default().served += 1;
            *served_totals.entry((hour, row.endpoint.clone())).or_default() += 1;
        }
    }
    groups
        .into_iter()
        .map(|((date, hour, endpoint, destination), mut g)| {
            g.rescue_latencies.sort_unstable();
            let quantile = |q| (!g.rescue_latencies.is_empty()).then(|| nearest_rank(&g.rescue_latencies, q));
            let total = served_totals.get(&(hour, endpoint.clone())).copied().unwrap_or(0);
            let failure_alert = g.attempts >= MIN_ATTEMPTS && g.failed as f64 >= g.attempts as f64 * FAILURE_SHARE;
            let rescue_alert = g.first >= MIN_ATTEMPTS && g.rescued as f64 >= g.first as f64 * RESCUE_SHARE;
            let values = vec![
                Some(g.attempts),
                Some(g.failed),
                Some(g.failed_429),
                Some(g.failed_5xx),
                Some(g.failed - g.failed_429 - g.failed_5xx),
                Some(g.first),
                Some(g.rescued),
                Some(g.failed_after),
                quantile(50),
                quantile(95),
                Some(g.served),
                share(g.served, total),
                share(g.failed, g.attempts),
                share(g.rescued, g.first),
                Some(i64::from(failure_alert)),
                Some(i64::from(rescue_alert)),
            ];
            (vec![date, hour.to_string(), endpoint, destination], values)
        })
        .collect()
}

const FALLBACK_COLUMNS: [(&str, Col); 20] = [
    ("usage_date", Col::Key),
    ("hour", Col::KeyInt),
    ("endpoint_name", Col::Key),
    ("destination", Col::Key),
    ("attempts", Col::Int),
    ("failed_attempts", Col::Int),
    ("failed_429", Col::Int),
    ("failed_5xx", Col::Int),
    ("failed_other", Col::Int),
    ("first_attempts", Col::Int),
    ("rescued", Col::Int),
    ("failed_after_fallbacks", Col::Int),
    ("fallback_added_p50_ms", Col::Int),
    ("fallback_added_p95_ms", Col::Int),
    ("served", Col::Int),
    ("served_share", Col::Float),
    ("failure_share", Col::Float),
    ("rescue_share", Col::Float),
    ("failure_alert", Col::Bool),
    ("rescue_alert", Col::Bool),
];

/// agent_sessions rows, and agent_daily rows built from them.
fn sessions(rows: &[Invocation]) -> (Rows, Rows) {
    let mut agent_rows: Vec<&Invocation> =
        rows.iter().filter(|r| r.agent.is_some() && r.source.as_deref() != Some("GUARDRAIL")).collect();
    agent_rows
        .sort_by(|a, b| (a.time, &a.request_id, &a.invocation_id).cmp(&(b.time, &b.request_id, &b.invocation_id)));
    // (date, session id, agent, requester) -> (id source, rows)
    type Members<'a> = BTreeMap<(String, String, String, String), (&'static str, Vec<&'a Invocation>)>;
    let mut members: Members = BTreeMap::new();
    let mut last: HashMap<(String, String, String), (i64, i64)> = HashMap::new();
    for row in agent_rows {
        let agent = row.agent.clone().unwrap();
        let date = date_string(row.time);
        let (id, source) = match &row.session_id {
            Some(id) => (id.clone(), "client"),
            None => {
                let state = last.entry((date.clone(), row.requester.clone(), agent.clone())).or_insert((i64::MIN, 0));
                if state.1 == 0 || row.time > state.0 + 30 * 60_000_000 {
                    state.1 += 1;
                }
                state.0 = row.time;
                (format!("rebuilt/{agent}/{}/{}", row.requester, state.1), "rebuilt")
            }
        };
        members.entry((date, id, agent, row.requester.clone())).or_insert((source, Vec::new())).1.push(row);
    }
    let mut session_rows = Rows::new();
    let mut daily: BTreeMap<(String, String, String), Vec<i64>> = BTreeMap::new();
    let mut daily_team: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for ((date, id, agent, requester), (source, rows)) in members {
        let max_of = |f: &dyn Fn(&Invocation) -> Option<String>| rows.iter().filter_map(|r| f(r)).max();
        let sum = |f: &dyn Fn(&Invocation) -> i64| rows.iter().map(|r| f(r)).sum::<i64>();
        let requests = rows.iter().map(|r| &r.request_id).collect::<BTreeSet<_>>().len() as i64;
        let subagents = rows.iter().filter_map(|r| r.subagent.as_ref()).collect::<BTreeSet<_>>().len() as i64;
        let team = max_of(&|r| Some(r.team.clone())).unwrap();
        let numbers = vec![
            Some(rows.iter().map(|r| r.time).min().unwrap()),
            Some(rows.iter().map(|r| r.time).max().unwrap()),
            Some(requests),
            Some(rows.len() as i64),
            Some(subagents),
            Some(sum(&|r| r.input)),
            Some(sum(&|r| r.output)),
            Some(sum(&|r| r.categories[0])),
            Some(sum(&|r| r.categories[1])),
            Some(sum(&|r| r.categories[2])),
            Some(sum(&|r| r.cost_units)),
            Some(sum(&|r| i64::from(!r.priced && r.input + r.output > 0))),
            Some(sum(&|r| i64::from(!ok(r.status)))),
            Some(sum(&|r| i64::from(r.status == Some(429)))),
        ];
        let key = vec![
            date.clone(),
            id,
            source.to_string(),
            agent.clone(),
            max_of(&|r| r.agent_version.clone()).unwrap_or_default(),
            max_of(&|r| r.surface.clone()).unwrap_or_default(),
            requester.clone(),
            team.clone(),
        ];
        let d = daily.entry((date.clone(), agent.clone(), requester.clone())).or_insert(vec![0; 13]);
        let add = [1, i64::from(source == "rebuilt"), requests, rows.len() as i64, subagents];
        for (slot, value) in add.into_iter().enumerate() {
            d[slot] += value;
        }
        for slot in 0..5 {
            d[5 + slot] += numbers[5 + slot].unwrap();
        }
        d[10] += numbers[10].unwrap();
        d[11] += numbers[12].unwrap();
        let t = daily_team.entry((date, agent, requester)).or_default();
        if team > *t {
            *t = team;
        }
        session_rows.insert(key, numbers);
    }
    let daily_rows = daily
        .into_iter()
        .map(|(key, values)| {
            let team = daily_team[&key].clone();
            let (date, agent, requester) = key;
            (vec![date, agent, requester, team], values[..12].iter().map(|v| Some(*v)).collect())
        })
        .collect();
    (session_rows, daily_rows)
}

const SESSION_COLUMNS: [(&str, Col); 22] = [
    ("usage_date", Col::Key),
    ("session_id", Col::Key),
    ("session_id_source", Col::Key),
    ("agent", Col::Key),
    ("agent_version", Col::Key),
    ("surface", Col::Key),
    ("requester", Col::Key),
    ("team", Col::Key),
    ("started_at", Col::Int),
    ("ended_at", Col::Int),
    ("requests", Col::Int),
    ("invocations", Col::Int),
    ("subagents", Col::Int),
    ("input_tokens", Col::Int),
    ("output_tokens", Col::Int),
    ("cache_read_tokens", Col::Int),
    ("cache_write_tokens", Col::Int),
    ("reasoning_tokens", Col::Int),
    ("cost_usd", Col::Decimal),
    ("unpriced_invocations", Col::Int),
    ("errors", Col::Int),
    ("rate_limited", Col::Int),
];

const DAILY_COLUMNS: [(&str, Col); 16] = [
    ("usage_date", Col::Key),
    ("agent", Col::Key),
    ("requester", Col::Key),
    ("team", Col::Key),
    ("sessions", Col::Int),
    ("rebuilt_sessions", Col::Int),
    ("requests", Col::Int),
    ("invocations", Col::Int),
    ("subagents", Col::Int),
    ("input_tokens", Col::Int),
    ("output_tokens", Col::Int),
    ("cache_read_tokens", Col::Int),
    ("cache_write_tokens", Col::Int),
    ("reasoning_tokens", Col::Int),
    ("cost_usd", Col::Decimal),
    ("errors", Col::Int),
];

fn mcp_usage(rows: &[Invocation]) -> Rows {
    let mut groups: BTreeMap<Vec<String>, Vec<&Invocation>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.service_type == "MCP_SERVICE") {
        let tool =
            row.mcp_tool.clone().unwrap_or_else(|| format!("({})", row.mcp_method.clone().unwrap_or("unknown".into())));
        groups
            .entry(vec![date_string(row.time), row.endpoint.clone(), tool, row.requester.clone()])
            .or_default()
            .push(row);
    }
    groups
        .into_iter()
        .map(|(mut key, calls)| {
            key.push(calls.iter().filter_map(|c| c.mcp_server_type.clone()).max().unwrap_or_default());
            let count = |f: &dyn Fn(&Invocation) -> bool| calls.iter().filter(|c| f(c)).count() as i64;
            let succeeded = count(&|c| ok(c.status));
            let mut latencies: Vec<i64> = calls.iter().filter_map(|c| c.latency).collect();
            latencies.sort_unstable();
            let quantile = |q| (!latencies.is_empty()).then(|| nearest_rank(&latencies, q));
            let values = vec![
                Some(calls.len() as i64),
                Some(succeeded),
                Some(calls.len() as i64 - succeeded),
                Some(count(&|c| c.status.is_some_and(|s| (400..=499).contains(&s) && s != 429))),
                Some(count(&|c| c.status == Some(429))),
                Some(count(&|c| c.status.is_some_and(|s| (500..=599).contains(&s)))),
                quantile(50),
                quantile(95),
                Some(calls.iter().map(|c| c.input + c.output).sum()),
            ];
            (key, values)
        })
        .collect()
}

const MCP_COLUMNS: [(&str, Col); 14] = [
    ("usage_date", Col::Key),
    ("endpoint_name", Col::Key),
    ("tool", Col::Key),
    ("requester", Col::Key),
    ("server_type", Col::Key),
    ("calls", Col::Int),
    ("succeeded", Col::Int),
    ("errors", Col::Int),
    ("http_4xx", Col::Int),
    ("http_429", Col::Int),
    ("http_5xx", Col::Int),
    ("p50_latency_ms", Col::Int),
    ("p95_latency_ms", Col::Int),
    ("tokens", Col::Int),
];

fn tag_spend(rows: &[Invocation]) -> Rows {
    let mut groups: BTreeMap<Vec<String>, Vec<&Invocation>> = BTreeMap::new();
    for row in rows {
        for key in TAG_KEYS {
            let value = match tag(&row.tags, key) {
                None => "(untagged)".to_string(),
                Some(v) if v.is_empty() => "(empty)".to_string(),
                Some(v) => v,
            };
            groups.entry(vec![date_string(row.time), "ai_gateway".into(), key.into(), value]).or_default().push(row);
        }
    }
    groups
        .into_iter()
        .map(|(key, rows)| {
            let values = vec![
                Some(rows.iter().map(|r| &r.request_id).collect::<BTreeSet<_>>().len() as i64),
                Some(rows.len() as i64),
                Some(rows.iter().map(|r| r.input).sum()),
                Some(rows.iter().map(|r| r.output).sum()),
                Some(rows.iter().map(|r| r.cost_units).sum()),
                Some(rows.iter().filter(|r| !r.priced && r.input + r.output > 0).count() as i64),
            ];
            (key, values)
        })
        .collect()
}

const TAG_COLUMNS: [(&str, Col); 10] = [
    ("usage_date", Col::Key),
    ("gateway", Col::Key),
    ("tag_key", Col::Key),
    ("tag_value", Col::Key),
    ("requests", Col::Int),
    ("invocations", Col::Int),
    ("input_tokens", Col::Int),
    ("output_tokens", Col::Int),
    ("cost_usd", Col::Decimal),
    ("unpriced_invocations", Col::Int),
];

fn daily_spend(rows: &[Invocation]) -> Rows {
    let mut groups: BTreeMap<Vec<String>, Vec<&Invocation>> = BTreeMap::new();
    for row in rows {
        let key = vec![
            date_string(row.time),
            row.endpoint.clone(),
            row.model.clone(),
            row.requester.clone(),
            row.team.clone(),
        ];
        groups.entry(key).or_default().push(row);
    }
    groups
        .into_iter()
        .map(|(key, rows)| {
            let count = |f: &dyn Fn(&Invocation) -> bool| Some(rows.iter().filter(|r| f(r)).count() as i64);
            let sum = |f: &dyn Fn(&Invocation) -> i64| Some(rows.iter().map(|r| f(r)).sum::<i64>());
            let judge = |r: &Invocation| r.source.as_deref() == Some("GUARDRAIL");
            let values = vec![
                Some(rows.iter().map(|r| &r.request_id).collect::<BTreeSet<_>>().len() as i64),
                Some(rows.len() as i64),
                count(&|r| ok(r.status)),
                count(&|r| r.status == Some(429)),
                count(&|r| r.status.is_some_and(|s| s >= 400 && s != 429)),
                sum(&|r| r.input),
                sum(&|r| r.output),
                sum(&|r| r.categories[0]),
                sum(&|r| r.categories[1]),
                sum(&|r| r.categories[2]),
                count(&|r| !r.tokens_reported),
                sum(&|r| r.cost_units),
                count(&|r| judge(r)),
                sum(&|r| if judge(r) { r.cost_units } else { 0 }),
                count(&|r| !r.priced && r.input + r.output > 0),
            ];
            (key, values)
        })
        .collect()
}

const DAILY_SPEND_COLUMNS: [(&str, Col); 20] = [
    ("usage_date", Col::Key),
    ("endpoint_name", Col::Key),
    ("entity_name", Col::Key),
    ("requester", Col::Key),
    ("team", Col::Key),
    ("requests", Col::Int),
    ("invocations", Col::Int),
    ("succeeded", Col::Int),
    ("rate_limited", Col::Int),
    ("failed", Col::Int),
    ("input_tokens", Col::Int),
    ("output_tokens", Col::Int),
    ("cache_read_tokens", Col::Int),
    ("cache_write_tokens", Col::Int),
    ("reasoning_tokens", Col::Int),
    ("invocations_without_tokens", Col::Int),
    ("cost_usd", Col::Decimal),
    ("judge_invocations", Col::Int),
    ("judge_cost_usd", Col::Decimal),
    ("unpriced_invocations", Col::Int),
];

/// Guardrail blocks per request id: the payload rows of `[start, end)` with status 400 whose
/// response names a block (an input block wins).
async fn blocks(data: &Path, start: i64, end: i64) -> HashMap<String, &'static str> {
    let mut out: HashMap<String, &'static str> = HashMap::new();
    for batch in raw_at(&data.join("ai_gateway_payload"), "request_id, event_time, status_code, response").await {
        let (ids, times, statuses, responses) =
            (strings(&batch, 0), ints(&batch, 1), ints(&batch, 2), strings(&batch, 3));
        for r in 0..batch.num_rows() {
            let in_window = times[r].is_some_and(|t| t >= start && t < end);
            let (Some(id), Some(response)) = (&ids[r], &responses[r]) else { continue };
            if !in_window || statuses[r] != Some(400) {
                continue;
            }
            let block = if response.contains("input_guardrail_triggered") {
                "input"
            } else if response.contains("output_guardrail_triggered") {
                "output"
            } else {
                continue;
            };
            let entry = out.entry(id.clone()).or_insert(block);
            *entry = (*entry).min(block);
        }
    }
    out
}

fn hourly_errors(rows: &[Invocation], blocks: &HashMap<String, &'static str>) -> Rows {
    let mut groups: BTreeMap<Vec<String>, Vec<&Invocation>> = BTreeMap::new();
    for row in rows {
        let hour = row.time - row.time.rem_euclid(HOUR_US);
        groups
            .entry(vec![date_string(row.time), hour.to_string(), row.endpoint.clone(), row.model.clone()])
            .or_default()
            .push(row);
    }
    groups
        .into_iter()
        .map(|(key, rows)| {
            let block = |r: &Invocation| if r.status == Some(400) { blocks.get(&r.request_id).copied() } else { None };
            let count = |f: &dyn Fn(&Invocation) -> bool| rows.iter().filter(|r| f(r)).count() as i64;
            let http_4xx =
                count(&|r| r.status.is_some_and(|s| (400..=499).contains(&s) && s != 429) && block(r).is_none());
            let http_429 = count(&|r| r.status == Some(429));
            let http_5xx = count(&|r| r.status.is_some_and(|s| (500..=599).contains(&s)));
            let blocked_input = count(&|r| block(r) == Some("input"));
            let blocked_output = count(&|r| block(r) == Some("output"));
            let errors = http_4xx + http_429 + http_5xx + blocked_input + blocked_output;
            let quantiles = |f: &dyn Fn(&Invocation) -> Option<i64>| {
                let mut values: Vec<i64> = rows.iter().filter(|r| ok(r.status)).filter_map(|r| f(r)).collect();
                values.sort_unstable();
                [50, 95, 99].map(|q| (!values.is_empty()).then(|| nearest_rank(&values, q)))
            };
            let mut values = vec![
                Some(rows.iter().map(|r| &r.request_id).collect::<BTreeSet<_>>().len() as i64),
                Some(rows.len() as i64),
                Some(http_4xx),
                Some(http_429),
                Some(http_5xx),
                Some(blocked_input),
                Some(blocked_output),
                share(errors, rows.len() as i64),
            ];
            values.extend(quantiles(&|r| r.latency));
            values.extend(quantiles(&|r| r.ttfb));
            (key, values)
        })
        .collect()
}

const HOURLY_COLUMNS: [(&str, Col); 18] = [
    ("usage_date", Col::Key),
    ("hour", Col::KeyInt),
    ("endpoint_name", Col::Key),
    ("entity_name", Col::Key),
    ("requests", Col::Int),
    ("invocations", Col::Int),
    ("http_4xx", Col::Int),
    ("http_429", Col::Int),
    ("http_5xx", Col::Int),
    ("guardrail_blocked_input", Col::Int),
    ("guardrail_blocked_output", Col::Int),
    ("error_rate", Col::Float),
    ("p50_latency_ms", Col::Int),
    ("p95_latency_ms", Col::Int),
    ("p99_latency_ms", Col::Int),
    ("p50_ttfb_ms", Col::Int),
    ("p95_ttfb_ms", Col::Int),
    ("p99_ttfb_ms", Col::Int),
];

/// The serving-endpoint rows of tag_spend: per (date, key, value) the usage rows whose
/// `usage_context` has that value (counted here from the raw table), and per (date, key) the
/// date's whole spend of daily_spend.
async fn serving_endpoint_tags_agree(data: &Path, output: &Path, job: &Rows, start: i64, end: i64) {
    let mut rows_per_value: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for batch in raw_at(&data.join("endpoint_usage"), "request_time, usage_context").await {
        let times = ints(&batch, 0);
        let contexts = batch.column(1).as_any().downcast_ref::<MapArray>().unwrap();
        for (r, time) in times.iter().enumerate() {
            let Some(t) = time.filter(|t| *t >= start && *t < end) else { continue };
            let entries = map_entries(contexts, r);
            for key in TAG_KEYS {
                let value = match tag(&entries, key) {
                    None => "(untagged)".to_string(),
                    Some(v) if v.is_empty() => "(empty)".to_string(),
                    Some(v) => v,
                };
                *rows_per_value
                    .entry(vec![date_string(t), "serving_endpoint".into(), key.into(), value])
                    .or_default() += 1;
            }
        }
    }
    let invocations: BTreeMap<Vec<String>, i64> = job.iter().map(|(k, v)| (k.clone(), v[1].unwrap())).collect();
    assert_eq!(invocations, rows_per_value, "tag_spend serving_endpoint rows per value");
    let mut spend: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for batch in read_table(&output.join("daily_spend")).await {
        let dates = strings(&batch, batch.schema().index_of("usage_date").unwrap());
        let requests = ints(&batch, batch.schema().index_of("requests").unwrap());
        let costs = strings(&batch, batch.schema().index_of("cost_usd").unwrap());
        for r in 0..batch.num_rows() {
            let e = spend.entry(dates[r].clone().unwrap()).or_default();
            e.0 += requests[r].unwrap();
            e.1 += i64::try_from(decimal_units(costs[r].as_deref().unwrap())).unwrap();
        }
    }
    for key in TAG_KEYS {
        let mut per_date: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (k, v) in job.iter().filter(|(k, _)| k[2] == key) {
            let e = per_date.entry(k[0].clone()).or_default();
            e.0 += v[1].unwrap();
            e.1 += v[4].unwrap();
        }
        assert_eq!(per_date, spend, "tag_spend serving_endpoint {key}: each key adds up to daily_spend");
    }
}

/// The (input, output) totals of a response body's usage block, read by hand from the two
/// shapes the generator writes: OpenAI (`prompt_tokens`, `completion_tokens`) and Anthropic
/// (`input_tokens` outside the cache counts, which are added back); a NULL count reads as 0.
/// `None` without a usage block (error bodies).
fn body_tokens(response: &str) -> Option<(i64, i64)> {
    let body: serde_json::Value = serde_json::from_str(response).ok()?;
    let usage = body.get("usage").filter(|u| u.is_object())?;
    let n = |key: &str| usage.get(key).and_then(serde_json::Value::as_i64).unwrap_or(0);
    if usage.get("prompt_tokens").is_some() {
        Some((n("prompt_tokens"), n("completion_tokens")))
    } else if usage.get("input_tokens").is_some() {
        Some((n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"), n("output_tokens")))
    } else {
        None
    }
}

/// One payload invocation: its deliveries' earliest time and greatest counts.
#[derive(Debug, Default)]
struct PayloadInvocation {
    time: i64,
    deliveries: usize,
    tokens: Option<(i64, i64)>,
}

/// The payload invocations of `[start - 1 day, end + 1 day)`, by (request_id, invocation_id).
async fn payload_invocations(
    data: &Path,
    start: i64,
    end: i64,
) -> BTreeMap<(String, Option<String>), PayloadInvocation> {
    let day = 24 * HOUR_US;
    let mut out: BTreeMap<(String, Option<String>), PayloadInvocation> = BTreeMap::new();
    for batch in raw_at(&data.join("ai_gateway_payload"), "request_id, invocation_id, event_time, response").await {
        let (ids, invocation_ids, times, responses) =
            (strings(&batch, 0), strings(&batch, 1), ints(&batch, 2), strings(&batch, 3));
        for r in 0..batch.num_rows() {
            let (Some(id), Some(time)) = (&ids[r], times[r]) else { continue };
            if time < start - day || time >= end + day {
                continue;
            }
            let entry = out
                .entry((id.clone(), invocation_ids[r].clone()))
                .or_insert(PayloadInvocation { time, ..Default::default() });
            entry.time = entry.time.min(time);
            entry.deliveries += 1;
            if let Some((input, output)) = responses[r].as_deref().and_then(body_tokens) {
                let (i, o) = entry.tokens.unwrap_or((input, output));
                entry.tokens = Some((i.max(input), o.max(output)));
            }
        }
    }
    out
}

/// `ai_gateway_reconciliation` (docs/OUTPUTS.md): [usage_invocations, usage_input_tokens,
/// usage_output_tokens, payload_matched_invocations, payload_input_difference,
/// payload_output_difference, payload_invocations_with_difference, payload_difference_share,
/// payload_invocations_without_usage], and how many invocations matched by request_id alone.
fn reconciliation(
    rows: &[Invocation],
    payload: &BTreeMap<(String, Option<String>), PayloadInvocation>,
    start: i64,
    end: i64,
) -> (Rows, usize) {
    let models: Vec<&Invocation> = rows.iter().filter(|r| r.service_type != "MCP_SERVICE").collect();
    let mut per_request: HashMap<&str, usize> = HashMap::new();
    for row in &models {
        *per_request.entry(&row.request_id).or_default() += 1;
    }
    // Per request, its payload invocations with a usage block: (invocation_id, tokens).
    type Counted<'a> = Vec<(&'a Option<String>, (i64, i64))>;
    let mut with_tokens: HashMap<&str, Counted> = HashMap::new();
    for ((request, invocation), p) in payload {
        if let Some(tokens) = p.tokens {
            with_tokens.entry(request.as_str()).or_default().push((invocation, tokens));
        }
    }
    let mut by_request_alone = 0;
    let mut groups: BTreeMap<Vec<String>, [i64; 7]> = BTreeMap::new();
    for row in &models {
        let exact = payload.get(&(row.request_id.clone(), Some(row.invocation_id.clone()))).and_then(|p| p.tokens);
        // The usage rows here always have an invocation_id: the payload side may lack it.
        let single = match with_tokens.get(row.request_id.as_str()).map(Vec::as_slice) {
            Some([(None, tokens)]) if per_request[row.request_id.as_str()] == 1 => Some(*tokens),
            _ => None,
        };
        by_request_alone += usize::from(exact.is_none() && single.is_some());
        let g = groups.entry(vec![date_string(row.time), row.endpoint.clone(), row.model.clone()]).or_default();
        g[0] += 1;
        g[1] += row.input;
        g[2] += row.output;
        if let Some((input, output)) = exact.or(single) {
            g[3] += 1;
            g[4] += input - row.input;
            g[5] += output - row.output;
            g[6] += i64::from(input != row.input || output != row.output);
        }
    }
    let mut out: Rows = groups
        .into_iter()
        .map(|(key, g)| {
            let mut values: Vec<Option<i64>> = g.iter().map(|v| Some(*v)).collect();
            values.push(share(g[6], g[3]));
            values.push(Some(0));
            (key, values)
        })
        .collect();
    for ((request, invocation), p) in payload {
        if p.time < start || p.time >= end {
            continue;
        }
        let has_usage =
            rows.iter().any(|r| &r.request_id == request && invocation.as_ref().is_none_or(|i| *i == r.invocation_id));
        if !has_usage {
            let key = vec![date_string(p.time), "(payload only)".into(), "(unknown)".into()];
            let values = out.entry(key).or_insert_with(|| {
                let mut zeros = vec![Some(0); 7];
                zeros.extend([None, Some(0)]);
                zeros
            });
            values[8] = values[8].map(|n| n + 1);
        }
    }
    (out, by_request_alone)
}

const RECONCILIATION_COLUMNS: [(&str, Col); 12] = [
    ("usage_date", Col::Key),
    ("endpoint_name", Col::Key),
    ("entity_name", Col::Key),
    ("usage_invocations", Col::Int),
    ("usage_input_tokens", Col::Int),
    ("usage_output_tokens", Col::Int),
    ("payload_matched_invocations", Col::Int),
    ("payload_input_difference", Col::Int),
    ("payload_output_difference", Col::Int),
    ("payload_invocations_with_difference", Col::Int),
    ("payload_difference_share", Col::Float),
    ("payload_invocations_without_usage", Col::Int),
];

/// A job over a generated data set with both gateways.
pub fn job_for(data: &Path, output: &Path) -> JobConfig {
    let text = format!(
        r#"
        [inputs]
        usage = "endpoint_usage"
        served_entities = "served_entities"
        payload = "gateway_payload"
        prices = "prices.csv"
        teams = "teams.csv"
        gateway_usage = "ai_gateway_usage"
        gateway_payload = "ai_gateway_payload"
        [output]
        location = {output:?}
        [ai_gateway]
        tag_keys = ["project", "env"]
        fallback_min_attempts = {MIN_ATTEMPTS}
        fallback_failure_share = {FAILURE_SHARE}
        fallback_rescue_share = {RESCUE_SHARE}
        "#
    );
    JobConfig::parse(&text, &data.join("job.toml")).expect("job")
}

#[tokio::test]
async fn ai_gateway_outputs_agree_with_an_independent_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let options = GenerateOptions {
        seed: 11,
        days: 2,
        start: date("2026-11-01"),
        requests_per_day: 1500,
        request_bytes: 200,
        lean: true,
        traces: false,
        incidents: false,
        ai_gateway: true,
    };
    generate(&options, &data, &Progress::hidden()).await.unwrap();
    let output = dir.path().join("out");
    let window = RunWindow::new(date("2026-11-01"), date("2026-11-02")).unwrap();
    run_job(&job_for(&data, &output), window).await.unwrap();

    let start = window.from.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let end = window.end_exclusive().and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let rows = invocations(&data, start, end).await;

    // The cases the definitions single out are all in the data.
    assert!(rows.iter().any(|r| r.attempts.len() == 3), "a chain of 3 attempts");
    assert!(rows.iter().any(|r| r.attempts.is_empty() && r.service_type == "MODEL_SERVICE"), "rows without routing");
    assert!(rows.iter().any(|r| r.agent.is_some() && r.session_id.is_none()), "sessions without ids");
    assert!(rows.iter().any(|r| r.service_type == "MCP_SERVICE" && r.input == 0), "MCP rows without tokens");
    assert!(rows.iter().any(|r| tag(&r.tags, "env").is_some_and(|v| v.is_empty())), "empty tag values");

    let expected = daily_spend(&rows);
    assert!(expected.values().any(|v| v[10].unwrap() > 0), "invocations without tokens");
    assert_same(
        "ai_gateway_daily_spend",
        &job_rows(&output.join("ai_gateway_daily_spend"), &DAILY_SPEND_COLUMNS).await,
        &expected,
    );
    let expected = hourly_errors(&rows, &blocks(&data, start, end).await);
    assert!(expected.values().any(|v| v[5].unwrap() > 0) && expected.values().any(|v| v[6].unwrap() > 0));
    assert_same(
        "ai_gateway_hourly_errors",
        &job_rows(&output.join("ai_gateway_hourly_errors"), &HOURLY_COLUMNS).await,
        &expected,
    );

    let expected = fallbacks(&rows);
    assert!(expected.values().any(|v| v[6].unwrap() > 0 && v[8].is_some()), "rescues with a latency");
    assert!(expected.values().any(|v| v[7].unwrap() > 0), "requests failed after every fallback");
    assert!(expected.values().any(|v| v[14] == Some(1)) && expected.values().any(|v| v[15] == Some(1)));
    assert_same("fallbacks", &job_rows(&output.join("fallbacks"), &FALLBACK_COLUMNS).await, &expected);

    let (expected_sessions, expected_daily) = sessions(&rows);
    assert!(expected_sessions.keys().any(|k| k[2] == "rebuilt") && expected_sessions.keys().any(|k| k[2] == "client"));
    let job_sessions = job_rows(&output.join("agent_sessions"), &SESSION_COLUMNS).await;
    // NULL agent_version / surface read as '' on both sides (Col::Key reads NULL as '').
    assert_same("agent_sessions", &job_sessions, &expected_sessions);
    assert_same("agent_daily", &job_rows(&output.join("agent_daily"), &DAILY_COLUMNS).await, &expected_daily);

    let expected = mcp_usage(&rows);
    assert!(expected.keys().any(|k| k[2].starts_with('(')), "server-level MCP calls");
    assert_same("mcp_usage", &job_rows(&output.join("mcp_usage"), &MCP_COLUMNS).await, &expected);

    let expected = tag_spend(&rows);
    assert!(expected.keys().any(|k| k[3] == "(empty)") && expected.keys().any(|k| k[3] == "(untagged)"));
    let job_tags = job_rows(&output.join("tag_spend"), &TAG_COLUMNS).await;
    let (beta_tags, serving_tags): (Rows, Rows) = job_tags.into_iter().partition(|(k, _)| k[1] == "ai_gateway");
    assert_same("tag_spend", &beta_tags, &expected);
    serving_endpoint_tags_agree(&data, &output, &serving_tags, start, end).await;

    let payload = payload_invocations(&data, start, end).await;
    assert!(payload.values().any(|p| p.deliveries > 1), "payload rows delivered twice");
    assert!(payload.keys().any(|(_, invocation)| invocation.is_none()), "payload rows without invocation_id");
    let (expected, by_request_alone) = reconciliation(&rows, &payload, start, end);
    assert!(by_request_alone > 0, "invocations matched by request_id alone");
    let usage = expected.values().filter(|v| v[0].unwrap() > 0);
    assert!(usage.clone().any(|v| v[3] < v[0]), "invocations without a payload row");
    assert!(usage.clone().any(|v| v[6].unwrap() > 0 && v[4] != Some(0)), "input counts that differ");
    assert!(usage.clone().any(|v| v[5].unwrap() > 0), "output counts that differ");
    assert!(expected.values().any(|v| v[8].unwrap() > 0), "payload rows without a usage row");
    let job = job_rows(&output.join("ai_gateway_reconciliation"), &RECONCILIATION_COLUMNS).await;
    assert_same("ai_gateway_reconciliation", &job, &expected);
}

/// The demand statistics of `ai_gateway_rate_limit_recommendations` (docs/OUTPUTS.md): per
/// (service, requester) and per service ('(service)'), over the invocations that are not
/// guardrail judge calls: active minutes, invocations, 429s, p50/p95/p99 and peak per minute,
/// p99 and peak tokens per minute. Values: [active_minutes, calls, rate_limited, p50, p95,
/// p99, peak, p99_tokens, peak_tokens].
fn rate_limit_demand(rows: &[Invocation]) -> Rows {
    const MINUTE_US: i64 = 60_000_000;
    let mut seen = BTreeSet::new();
    // (service, requester) -> minute -> (calls, tokens, 429s)
    type ByMinute = BTreeMap<i64, (i64, i64, i64)>;
    let mut minutes: BTreeMap<(String, String), ByMinute> = BTreeMap::new();
    for row in rows {
        if row.source.as_deref() == Some("GUARDRAIL") || !seen.insert((&row.request_id, &row.invocation_id)) {
            continue;
        }
        let minute = row.time.div_euclid(MINUTE_US);
        for requester in [row.requester.clone(), "(service)".to_string()] {
            let slot = minutes.entry((row.endpoint.clone(), requester)).or_default().entry(minute).or_default();
            slot.0 += 1;
            slot.1 += row.input + row.output;
            slot.2 += i64::from(row.status == Some(429));
        }
    }
    minutes
        .into_iter()
        .map(|((service, requester), by_minute)| {
            let mut calls: Vec<i64> = by_minute.values().map(|v| v.0).collect();
            let mut tokens: Vec<i64> = by_minute.values().map(|v| v.1).collect();
            calls.sort_unstable();
            tokens.sort_unstable();
            let values = vec![
                by_minute.len() as i64,
                calls.iter().sum(),
                by_minute.values().map(|v| v.2).sum(),
                nearest_rank(&calls, 50),
                nearest_rank(&calls, 95),
                nearest_rank(&calls, 99),
                *calls.last().unwrap(),
                nearest_rank(&tokens, 99),
                *tokens.last().unwrap(),
            ];
            (vec![service, requester], values.into_iter().map(Some).collect())
        })
        .collect()
}

const DEMAND_COLUMNS: [(&str, Col); 12] = [
    ("endpoint_name", Col::Key),
    ("requester", Col::Key),
    ("action", Col::Key),
    ("active_minutes", Col::Int),
    ("calls", Col::Int),
    ("rate_limited", Col::Int),
    ("p50_calls_per_minute", Col::Int),
    ("p95_calls_per_minute", Col::Int),
    ("p99_calls_per_minute", Col::Int),
    ("peak_calls_per_minute", Col::Int),
    ("p99_tokens_per_minute", Col::Int),
    ("peak_tokens_per_minute", Col::Int),
];

#[tokio::test]
async fn ai_gateway_rate_limit_demand_agrees_with_an_independent_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let options = GenerateOptions {
        seed: 5,
        days: 2,
        start: date("2026-11-01"),
        requests_per_day: 1500,
        request_bytes: 200,
        lean: true,
        incidents: false,
        ai_gateway: true,
        traces: false,
    };
    generate(&options, &data, &Progress::hidden()).await.unwrap();
    let output = dir.path().join("out");
    let window = RunWindow::new(date("2026-11-01"), date("2026-11-02")).unwrap();
    let mut job = job_for(&data, &output);
    let limits = data.join("gateway_rate_limits.json").display().to_string();
    job.gateway_rate_limits = Some(gateway_analytics::location::Location::resolve(&limits, Path::new("/")).unwrap());
    let only = gateway_analytics::outputs::OutputSelection::Only(vec![
        &gateway_analytics::ai_gateway::AI_GATEWAY_RATE_LIMIT_RECOMMENDATIONS,
    ]);
    let options = gateway_analytics::run::RunOptions::default();
    gateway_analytics::run::run(&job, window, &only, &options, &Progress::hidden()).await.unwrap();

    // The lookback (14 days) covers every generated day.
    let rows = invocations(&data, i64::MIN, i64::MAX).await;
    let expected = rate_limit_demand(&rows);
    assert!(expected.values().any(|v| v[2].unwrap() > 0), "429s");
    assert!(expected.values().any(|v| v[6].unwrap() > 1), "minutes with more than one invocation");

    let table = output.join("ai_gateway_rate_limit_recommendations");
    let all = job_rows(&table, &DEMAND_COLUMNS).await;
    let (skipped, evaluated): (Rows, Rows) = all.into_iter().partition(|(k, _)| k[2] == "not_evaluated");
    // Every limit the recommendations do not evaluate is listed: the generated group,
    // request-tag and per-hour limits.
    let skipped: Vec<&str> = skipped.keys().map(|k| k[1].as_str()).collect();
    assert_eq!(skipped, ["(service)", "analysts", "tag:project=*", "data-science"]);
    let evaluated: Rows = evaluated.into_iter().map(|(k, v)| (k[..2].to_vec(), v)).collect();
    assert_same("ai_gateway_rate_limit_recommendations", &evaluated, &expected);
}
