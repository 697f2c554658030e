//! Simulates one day of gateway traffic: who calls which endpoint when, with what outcome.

use chrono::NaiveDate;

use super::bodies;
use super::incidents::DayPlan;
use super::rng::{Rng, Weighted};
use super::world::{BURST_LIMIT_PER_MINUTE, BodyKind, World};

/// Which limit refused a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitSource {
    /// A limit configured on the endpoint's AI Gateway.
    UserDefined,
    /// The workspace's pay-per-token limit for the model.
    Workspace,
}

/// What the inference table logged for a request. The JSON bodies themselves are made only
/// when the row is written ([`PayloadLog::bodies`]), so a day of traffic stays small in memory.
#[derive(Debug, Clone)]
pub struct PayloadLog {
    /// Whether the request body was logged (false: too large).
    pub request_logged: bool,
    /// Whether the response body was logged (false: too large).
    pub response_logged: bool,
    /// Seed of the bodies' filler text.
    pub body_seed: u64,
    /// Average request size asked for.
    pub request_bytes: usize,
    /// `MAX_REQUEST_SIZE_EXCEEDED` / `MAX_RESPONSE_SIZE_EXCEEDED`; NULL or empty when none.
    pub logging_error_codes: Option<Vec<&'static str>>,
    /// Inference time; NULL for a few rows.
    pub execution_duration_ms: Option<i64>,
}

/// One gateway request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Databricks-generated id.
    pub databricks_request_id: String,
    /// Caller-set id.
    pub client_request_id: Option<String>,
    /// Microseconds since the epoch, UTC.
    pub request_time_us: i64,
    /// Index into `World::principals`; None for a NULL requester.
    pub principal: Option<usize>,
    /// Index into `World::endpoints`; None for the orphan served entity.
    pub endpoint: Option<usize>,
    /// HTTP status.
    pub status_code: i32,
    /// Why a 429 happened.
    pub rate_limit: Option<RateLimitSource>,
    /// Usage-table input tokens (cache reads and writes included).
    pub input_tokens: Option<i64>,
    /// Usage-table output tokens (reasoning included).
    pub output_tokens: Option<i64>,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: i64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: i64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: i64,
    /// The usage_context map; None for NULL.
    pub usage_context: Option<Vec<(String, String)>>,
    /// Streaming call.
    pub streaming: bool,
    /// Whether the usage table has the row (a few requests reach only the payload table).
    pub in_usage: bool,
    /// The payload row, when logged.
    pub payload: Option<PayloadLog>,
    /// Part of an offline evaluation batch (long prompts).
    pub evaluation: bool,
}

/// Hourly traffic shape (UTC): quiet nights, a peak in the European/US overlap.
const DIURNAL: [f64; 24] = [
    0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.45, 0.7, 0.95, 1.15, 1.3, 1.35, 1.3, 1.4, 1.55, 1.6, 1.5, 1.3, 1.0, 0.8, 0.6,
    0.45, 0.35, 0.3,
];

/// Simulates day `day_index` (starting at `date`) with `requests` ordinary usage rows, plus the
/// day's incidents: with no `plan`, the demo's (rate-limit bursts every day, an outage on the
/// second day and, on the last day (`last_day`), a team's evaluation batch); with a seeded
/// schedule's `plan`, its outages, bursts and spend jumps, or no row at all on a gap day.
#[allow(clippy::too_many_arguments)]
pub fn simulate_day(
    world: &World,
    seed: u64,
    day_index: u32,
    date: NaiveDate,
    requests: u64,
    request_bytes: usize,
    last_day: bool,
    plan: Option<&DayPlan>,
) -> Vec<Request> {
    if plan.is_some_and(|p| p.gap) {
        return Vec::new();
    }
    let mut rng = Rng::new(seed, 1000 + u64::from(day_index));
    let day_start = date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let hours = Weighted::new(&DIURNAL);
    let burst_budget = if plan.is_some() { 0 } else { requests / 10 };
    let mut out = Vec::with_capacity(requests as usize + 16);

    for _ in 0..requests - burst_budget {
        let hour = hours.pick(&mut rng) as i64;
        let time = day_start + hour * 3_600_000_000 + rng.range(0, 3_599_999_999);
        let principal = if rng.chance(0.007) { None } else { Some(world.principal_popularity.pick(&mut rng)) };
        let endpoint = if rng.chance(0.005) { None } else { Some(world.endpoint_mix.pick(&mut rng)) };
        let (status_code, rate_limit) = base_status(&mut rng, world, endpoint, day_index, hour, plan);
        out.push(new_request(&mut rng, time, principal, endpoint, status_code, rate_limit));
    }
    match plan {
        None => {
            add_bursts(&mut rng, world, day_start, burst_budget, &mut out);
            if last_day
                && day_index > 0
                && let Some(user) = world.evaluation_user()
            {
                add_evaluation_batch(&mut rng, world, user, day_start, requests / 5, &mut out);
            }
        }
        Some(plan) => {
            for burst in &plan.bursts {
                add_planned_burst(&mut rng, burst, day_start, &mut out);
            }
            for jump in &plan.spend_jumps {
                add_evaluation_batch(&mut rng, world, jump.principal, day_start, jump.calls, &mut out);
            }
        }
    }

    out.sort_by(|a, b| {
        (a.request_time_us, &a.databricks_request_id).cmp(&(b.request_time_us, &b.databricks_request_id))
    });
    for request in &mut out {
        finish(&mut rng, world, request, request_bytes);
    }
    out
}

fn new_request(
    rng: &mut Rng,
    time: i64,
    principal: Option<usize>,
    endpoint: Option<usize>,
    status_code: i32,
    rate_limit: Option<RateLimitSource>,
) -> Request {
    Request {
        databricks_request_id: rng.uuid(),
        client_request_id: rng.chance(0.3).then(|| format!("req-{}", rng.hex(12))),
        request_time_us: time,
        principal,
        endpoint,
        status_code,
        rate_limit,
        input_tokens: None,
        output_tokens: None,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        usage_context: None,
        streaming: false,
        in_usage: true,
        payload: None,
        evaluation: false,
    }
}

/// Status of an ordinary request: mostly 200, a spread of errors, workspace-limit 429s, and a
/// provider outage: on claude-agents at 10:00 of the second day, or the `plan`'s.
fn base_status(
    rng: &mut Rng,
    world: &World,
    endpoint: Option<usize>,
    day_index: u32,
    hour: i64,
    plan: Option<&DayPlan>,
) -> (i32, Option<RateLimitSource>) {
    match plan {
        None => {
            let name = endpoint.map(|e| world.endpoints[e].name);
            if name == Some("claude-agents") && day_index == 1 && hour == 10 && rng.chance(0.3) {
                return (503, None);
            }
        }
        Some(plan) => {
            let outage = plan
                .outages
                .iter()
                .find(|o| Some(o.endpoint) == endpoint && o.from_hour <= hour && hour < o.from_hour + o.hours);
            if let Some(outage) = outage
                && rng.chance(outage.share)
            {
                return (503, None);
            }
        }
    }
    let r = rng.unit();
    let status = match r {
        r if r < 0.005 => 400,
        r if r < 0.008 => 401,
        r if r < 0.010 => 403,
        r if r < 0.012 => 404,
        r if r < 0.020 => 429,
        r if r < 0.023 => 500,
        r if r < 0.0245 => 503,
        r if r < 0.025 => 504,
        r if r < 0.030 => 201,
        _ => 200,
    };
    (status, (status == 429).then_some(RateLimitSource::Workspace))
}

/// Bursty principals send bursts within single minutes; calls past the per-minute limit are
/// refused with 429 by the endpoint's user-defined limit.
fn add_bursts(rng: &mut Rng, world: &World, day_start: i64, budget: u64, out: &mut Vec<Request>) {
    let bursty: Vec<usize> = (0..world.principals.len()).filter(|&i| world.principals[i].bursty).collect();
    if bursty.is_empty() {
        return;
    }
    let endpoint_of = |name: &str| world.endpoints.iter().position(|e| e.name == name);
    let mut remaining = budget as i64;
    let mut turn = 0;
    while remaining > 0 {
        let principal = bursty[turn % bursty.len()];
        turn += 1;
        let endpoint = if turn % 3 == 0 { endpoint_of("gpt-reasoning") } else { endpoint_of("chat-prod") };
        let minute_start = day_start + rng.range(9 * 60, 17 * 60) * 60_000_000;
        let calls = rng.range(BURST_LIMIT_PER_MINUTE / 2, BURST_LIMIT_PER_MINUTE * 5 / 2).min(remaining);
        let mut times: Vec<i64> = (0..calls).map(|_| minute_start + rng.range(0, 59_999_999)).collect();
        times.sort_unstable();
        for (i, time) in times.into_iter().enumerate() {
            let limited = i as i64 >= BURST_LIMIT_PER_MINUTE;
            let (status, source) = if limited { (429, Some(RateLimitSource::UserDefined)) } else { (200, None) };
            out.push(new_request(rng, time, Some(principal), endpoint, status, source));
        }
        remaining -= calls;
    }
}

/// A planned 429 burst: in each of its hours, 2 to 4 separate minutes of 100 to 180 calls from
/// one caller; the calls past the per-minute limit are refused by the endpoint's user-defined
/// limit.
fn add_planned_burst(rng: &mut Rng, burst: &super::incidents::Burst, day_start: i64, out: &mut Vec<Request>) {
    for hour in burst.from_hour..burst.from_hour + burst.hours {
        let minutes = rng.range(2, 4);
        let slot = 60 / minutes;
        for index in 0..minutes {
            let minute = index * slot + rng.range(0, slot - 1);
            let minute_start = day_start + hour * 3_600_000_000 + minute * 60_000_000;
            let calls = rng.range(100, 180);
            let mut times: Vec<i64> = (0..calls).map(|_| minute_start + rng.range(0, 59_999_999)).collect();
            times.sort_unstable();
            for (i, time) in times.into_iter().enumerate() {
                let limited = i as i64 >= BURST_LIMIT_PER_MINUTE;
                let (status, source) = if limited { (429, Some(RateLimitSource::UserDefined)) } else { (200, None) };
                out.push(new_request(rng, time, Some(burst.principal), Some(burst.endpoint), status, source));
            }
        }
    }
}

/// A user (`principal`) runs an offline evaluation on claude-agents between 13:00 and 15:00:
/// long prompts that make their team's daily cost spike.
fn add_evaluation_batch(
    rng: &mut Rng,
    world: &World,
    principal: usize,
    day_start: i64,
    calls: u64,
    out: &mut Vec<Request>,
) {
    let endpoint = world.endpoints.iter().position(|e| e.name == "claude-agents");
    for _ in 0..calls {
        let time = day_start + 13 * 3_600_000_000 + rng.range(0, 2 * 3_600_000_000 - 1);
        let mut request = new_request(rng, time, Some(principal), endpoint, 200, None);
        request.evaluation = true;
        out.push(request);
    }
}

/// Fills tokens, context, streaming and the payload row.
fn finish(rng: &mut Rng, world: &World, request: &mut Request, request_bytes: usize) {
    let endpoint = request.endpoint.map(|e| &world.endpoints[e]);
    let body = endpoint.map_or(BodyKind::OpenAiChat, |e| e.body);
    request.streaming = endpoint.is_some_and(|e| e.streams) && rng.chance(0.35);
    request.usage_context = usage_context(rng, world, request.principal);
    set_tokens(rng, request, body);
    request.in_usage = !rng.chance(0.003);

    let sampling_fraction = endpoint.map_or(1.0, |e| e.sampling_fraction);
    let logged = rng.chance(sampling_fraction) && (request.status_code != 429 || rng.chance(0.5));
    if !logged {
        return;
    }
    let request_too_large = rng.chance(0.01);
    let response_too_large = !request_too_large && rng.chance(0.005);
    let logging_error_codes = match (request_too_large, response_too_large) {
        (true, _) => Some(vec!["MAX_REQUEST_SIZE_EXCEEDED"]),
        (_, true) => Some(vec!["MAX_RESPONSE_SIZE_EXCEEDED"]),
        _ if rng.chance(0.5) => None,
        _ => Some(Vec::new()),
    };
    request.payload = Some(PayloadLog {
        request_logged: !request_too_large,
        response_logged: !response_too_large,
        body_seed: rng.next_u64(),
        request_bytes,
        logging_error_codes,
        execution_duration_ms: duration_ms(rng, request, body),
    });
}

impl PayloadLog {
    /// The logged request and response JSON of `request` (NULL where not logged).
    pub fn bodies(&self, world: &World, request: &Request) -> (Option<String>, Option<String>) {
        let mut rng = Rng::new(self.body_seed, 0);
        let endpoint = request.endpoint.map(|e| &world.endpoints[e]);
        let body = endpoint.map_or(BodyKind::OpenAiChat, |e| e.body);
        let model = endpoint.map_or("unknown", |e| e.entity_name);
        let endpoint_name = endpoint.map_or("retired-endpoint", |e| e.name);
        let request_json = bodies::request_body(&mut rng, body, self.request_bytes, request);
        let response_json = bodies::response_body(&mut rng, body, request, model, endpoint_name);
        (self.request_logged.then_some(request_json), self.response_logged.then_some(response_json))
    }
}

fn usage_context(rng: &mut Rng, world: &World, principal: Option<usize>) -> Option<Vec<(String, String)>> {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let p = principal.map(|i| &world.principals[i])?;
    if p.is_service_principal {
        return Some(match p.context_team {
            Some(team) => vec![pair("team", team), pair("project", &format!("{team}-pipeline"))],
            None => Vec::new(),
        });
    }
    match p.context_team {
        Some(_) if rng.chance(0.15) => Some(vec![pair("team", "")]),
        Some(team) => Some(vec![pair("team", team), pair("end_user_to_charge", "internal")]),
        None if rng.chance(0.7) => None,
        None if rng.chance(0.66) => Some(Vec::new()),
        None => Some(vec![pair("project", "adhoc")]),
    }
}

fn set_tokens(rng: &mut Rng, request: &mut Request, body: BodyKind) {
    match request.status_code {
        200..=299 => {
            let input = match body {
                _ if request.evaluation => rng.range(20_000, 40_000),
                BodyKind::Embeddings => rng.skewed(8, 2_000),
                BodyKind::CustomModel => rng.skewed(20, 600),
                _ => rng.skewed(40, 12_000),
            };
            let output = match body {
                _ if request.evaluation => rng.range(1_000, 3_000),
                BodyKind::Embeddings => 0,
                BodyKind::CustomModel => rng.skewed(1, 40),
                BodyKind::OpenAiReasoning => rng.skewed(60, 8_000),
                _ => rng.skewed(10, 2_500),
            };
            match body {
                BodyKind::AnthropicMessages => {
                    if rng.chance(0.4) {
                        request.cache_read_tokens = input * rng.range(60, 90) / 100;
                    }
                    if rng.chance(0.1) {
                        request.cache_write_tokens = (input - request.cache_read_tokens) * rng.range(20, 50) / 100;
                    }
                }
                BodyKind::OpenAiReasoning => {
                    request.reasoning_tokens = output * rng.range(30, 70) / 100;
                    if rng.chance(0.3) {
                        request.cache_read_tokens = input * rng.range(40, 80) / 100;
                    }
                }
                BodyKind::OpenAiChat if rng.chance(0.2) => {
                    request.cache_read_tokens = input * rng.range(20, 60) / 100;
                }
                _ => {}
            }
            request.input_tokens = Some(input);
            request.output_tokens = Some(output);
        }
        500..=599 => {
            request.input_tokens = Some(rng.skewed(40, 6_000));
            request.output_tokens = Some(0);
        }
        _ => {
            let zero = rng.chance(0.5).then_some(0);
            request.input_tokens = zero;
            request.output_tokens = zero;
        }
    }
}

fn duration_ms(rng: &mut Rng, request: &Request, body: BodyKind) -> Option<i64> {
    if !(200..=299).contains(&request.status_code) {
        return Some(rng.range(3, 120));
    }
    if rng.chance(0.002) {
        return None;
    }
    let output = request.output_tokens.unwrap_or(0);
    let (base, per_token_us) = match body {
        BodyKind::Embeddings => (25, 0),
        BodyKind::CustomModel => (40, 2_000),
        BodyKind::AnthropicMessages => (450, 14_000),
        BodyKind::OpenAiReasoning => (700, 9_000),
        BodyKind::OpenAiChat => (220, 11_000),
    };
    let jitter = rng.range(80, 160);
    Some((base + output * per_token_us / 1000) * jitter / 100 + rng.skewed(0, 400))
}
