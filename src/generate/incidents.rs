//! The incidents a data set holds on purpose, with their windows, so that the alerts can be
//! measured against them (precision and recall per rule: tests/integration/alert_quality.rs).
//!
//! Two schedules:
//! - the demo's fixed one (the default): the bursty principals' 429 bursts every day, an
//!   outage of `claude-agents` at 10:00 on the second day and an evaluation batch that
//!   raises a team's spend on the last day;
//! - with `incidents` set (`generate --incidents`), a seeded schedule instead: 429 bursts of a
//!   caller against its per-minute limit (1 to 2 hours, on `chat-prod` or `embeddings`),
//!   outages (30% to 80% of an endpoint's calls fail with 503 for 1 to 3 hours), spend jumps
//!   (a team's evaluation batch adding 200 to 500 long calls on `claude-agents`, from the
//!   eighth day on and only on days with at least 5 logged days among the 7 before) and, in data
//!   sets of 16 days or more, one logging gap (3 or 4 days without any row in any table).
//!
//! Every data set records them in `incidents.json`: one entry per incident with the rule that
//! should fire, what it is about and its window (`start` inclusive, `end` exclusive).

use chrono::{Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use super::rng::Rng;
use super::traffic::{RateLimitSource, Request};
use super::world::{TEAMS, World};

/// An injected incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `rate_limit_burst`, `outage`, `spend_jump` or `logging_gap`.
    pub kind: String,
    /// The alert rule it should fire.
    pub rule: String,
    /// The endpoint (bursts and outages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<String>,
    /// The caller (bursts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// The team (spend jumps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// First instant (UTC, RFC 3339).
    pub start: String,
    /// End (UTC, RFC 3339, exclusive).
    pub end: String,
    /// Its size, for people.
    pub detail: String,
}

/// An outage: an endpoint fails a share of its calls with 503 for some hours.
#[derive(Debug, Clone)]
pub struct Outage {
    /// Index into `World::endpoints`.
    pub endpoint: usize,
    /// First UTC hour.
    pub from_hour: i64,
    /// Hours it lasts.
    pub hours: i64,
    /// Share of the endpoint's calls that fail.
    pub share: f64,
}

/// A 429 burst: a caller sends more calls than its per-minute limit in a few minutes of each
/// hour.
#[derive(Debug, Clone)]
pub struct Burst {
    /// Index into `World::endpoints`.
    pub endpoint: usize,
    /// Index into `World::principals`.
    pub principal: usize,
    /// First UTC hour.
    pub from_hour: i64,
    /// Hours it lasts.
    pub hours: i64,
}

/// A spend jump: a team member runs an evaluation batch.
#[derive(Debug, Clone)]
pub struct SpendJump {
    /// Index into `World::principals` (a user whose team is the jump's).
    pub principal: usize,
    /// The team.
    pub team: &'static str,
    /// Calls in the batch.
    pub calls: u64,
}

/// What one day of a seeded schedule holds.
#[derive(Debug, Clone, Default)]
pub struct DayPlan {
    /// No row at all that day (a logging gap).
    pub gap: bool,
    /// Outages.
    pub outages: Vec<Outage>,
    /// 429 bursts.
    pub bursts: Vec<Burst>,
    /// Spend jumps.
    pub spend_jumps: Vec<SpendJump>,
}

/// The seeded schedule of `days` days of `requests_per_day` requests.
pub fn schedule(world: &World, seed: u64, days: u32, requests_per_day: u64) -> Vec<DayPlan> {
    let mut rng = Rng::new(seed, 5000);
    let days = days as usize;
    let mut plans = vec![DayPlan::default(); days];
    if days >= 16 {
        let first = rng.range(8, days as i64 - 8) as usize;
        let length = rng.range(3, 4) as usize;
        for plan in plans.iter_mut().skip(first).take(length) {
            plan.gap = true;
        }
    }
    let endpoint_of = |name: &str| world.endpoints.iter().position(|e| e.name == name);
    let outage_endpoints: Vec<usize> =
        ["chat-prod", "claude-agents", "gpt-reasoning", "embeddings"].iter().filter_map(|n| endpoint_of(n)).collect();
    let burst_endpoints: Vec<usize> =
        ["chat-prod", "chat-prod", "embeddings"].iter().filter_map(|n| endpoint_of(n)).collect();
    let callers: Vec<usize> = (0..world.principals.len())
        .filter(|&i| world.principals[i].is_service_principal || world.principals[i].bursty)
        .collect();
    // Users whose calls count for their home team (listed in teams.csv, no usage_context team).
    let members = |team: &str| -> Vec<usize> {
        (0..world.principals.len())
            .filter(|&i| {
                let p = &world.principals[i];
                !p.is_service_principal
                    && !p.bursty
                    && p.in_teams_csv
                    && p.context_team.is_none()
                    && p.home_team == team
            })
            .collect()
    };
    let mut last_jump: std::collections::HashMap<&'static str, usize> = Default::default();
    for day in 0..days {
        if plans[day].gap {
            continue;
        }
        if rng.chance(0.35) && !outage_endpoints.is_empty() {
            let endpoint = outage_endpoints[rng.range(0, outage_endpoints.len() as i64 - 1) as usize];
            let from_hour = rng.range(9, 15);
            let hours = rng.range(1, 3);
            let share = rng.range(30, 80) as f64 / 100.0;
            plans[day].outages.push(Outage { endpoint, from_hour, hours, share });
        }
        if rng.chance(0.5) && !burst_endpoints.is_empty() && !callers.is_empty() {
            let endpoint = burst_endpoints[rng.range(0, burst_endpoints.len() as i64 - 1) as usize];
            let principal = callers[rng.range(0, callers.len() as i64 - 1) as usize];
            let from_hour = rng.range(9, 16);
            let hours = rng.range(1, 2);
            plans[day].bursts.push(Burst { endpoint, principal, from_hour, hours });
        }
        let logged_before = (day.saturating_sub(7)..day).filter(|&d| !plans[d].gap).count();
        if day >= 7 && logged_before >= 5 && rng.chance(0.4) {
            let team = TEAMS[rng.range(0, TEAMS.len() as i64 - 1) as usize];
            let candidates = members(team);
            let recent = last_jump.get(team).is_some_and(|&d| day - d < 7);
            if !candidates.is_empty() && !recent {
                let principal = candidates[rng.range(0, candidates.len() as i64 - 1) as usize];
                let calls = rng.range(200, 500) as u64 * requests_per_day / 4000;
                plans[day].spend_jumps.push(SpendJump { principal, team, calls: calls.max(1) });
                last_jump.insert(team, day);
            }
        }
    }
    plans
}

fn at(date: NaiveDate, hour: i64) -> String {
    let time = date.and_time(NaiveTime::MIN).and_utc() + Duration::hours(hour);
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The incidents of a seeded schedule starting on `start`.
pub fn scheduled(world: &World, plans: &[DayPlan], start: NaiveDate) -> Vec<Incident> {
    let mut incidents = Vec::new();
    let mut gap: Option<(usize, usize)> = None;
    for (day, plan) in plans.iter().enumerate() {
        let date = start + Duration::days(day as i64);
        if plan.gap {
            gap = Some(gap.map_or((day, day), |(first, _)| (first, day)));
            continue;
        }
        for outage in &plan.outages {
            incidents.push(Incident {
                kind: "outage".into(),
                rule: "error_rate".into(),
                endpoint_name: Some(world.endpoints[outage.endpoint].name.into()),
                requester: None,
                team: None,
                start: at(date, outage.from_hour),
                end: at(date, outage.from_hour + outage.hours),
                detail: format!("{:.0}% of the endpoint's calls fail with 503", outage.share * 100.0),
            });
        }
        for burst in &plan.bursts {
            incidents.push(Incident {
                kind: "rate_limit_burst".into(),
                rule: "rate_limited_share".into(),
                endpoint_name: Some(world.endpoints[burst.endpoint].name.into()),
                requester: Some(world.principals[burst.principal].id.clone()),
                team: None,
                start: at(date, burst.from_hour),
                end: at(date, burst.from_hour + burst.hours),
                detail: "2 to 4 minutes an hour of 100 to 180 calls against a limit of 60 a minute".into(),
            });
        }
        for jump in &plan.spend_jumps {
            incidents.push(Incident {
                kind: "spend_jump".into(),
                rule: "spend_spike".into(),
                endpoint_name: Some("claude-agents".into()),
                requester: Some(world.principals[jump.principal].id.clone()),
                team: Some(jump.team.into()),
                start: at(date, 0),
                end: at(date, 24),
                detail: format!("an evaluation batch of {} long calls", jump.calls),
            });
        }
    }
    if let Some((first, last)) = gap {
        incidents.push(Incident {
            kind: "logging_gap".into(),
            rule: "logging_gap".into(),
            endpoint_name: None,
            requester: None,
            team: None,
            start: at(start + Duration::days(first as i64), 0),
            end: at(start + Duration::days(last as i64 + 1), 0),
            detail: format!("{} days without a row in any table", last - first + 1),
        });
    }
    sort(&mut incidents);
    incidents
}

/// Sorts incidents by start, kind, endpoint and requester.
pub fn sort(incidents: &mut [Incident]) {
    incidents.sort_by(|a, b| {
        (&a.start, &a.kind, &a.endpoint_name, &a.requester).cmp(&(&b.start, &b.kind, &b.endpoint_name, &b.requester))
    });
}

/// The incidents of a day of the demo's fixed schedule (`day_index` of a data set, its
/// `requests`): each hour in which a caller's calls were refused by its per-minute limit, the
/// outage of the second day and the last day's evaluation batch.
pub fn demo_day(world: &World, date: NaiveDate, day_index: u32, last_day: bool, requests: &[Request]) -> Vec<Incident> {
    let mut incidents = Vec::new();
    let mut refused: std::collections::BTreeMap<(usize, usize, i64), u64> = Default::default();
    let day_start = date.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
    for request in requests.iter().filter(|r| r.rate_limit == Some(RateLimitSource::UserDefined)) {
        if let (Some(endpoint), Some(principal)) = (request.endpoint, request.principal) {
            let hour = (request.request_time_us - day_start).div_euclid(3_600_000_000);
            *refused.entry((endpoint, principal, hour)).or_default() += 1;
        }
    }
    for ((endpoint, principal, hour), count) in refused {
        incidents.push(Incident {
            kind: "rate_limit_burst".into(),
            rule: "rate_limited_share".into(),
            endpoint_name: Some(world.endpoints[endpoint].name.into()),
            requester: Some(world.principals[principal].id.clone()),
            team: None,
            start: at(date, hour),
            end: at(date, hour + 1),
            detail: format!("{count} calls refused by a per-minute limit"),
        });
    }
    if day_index == 1 {
        incidents.push(Incident {
            kind: "outage".into(),
            rule: "error_rate".into(),
            endpoint_name: Some("claude-agents".into()),
            requester: None,
            team: None,
            start: at(date, 10),
            end: at(date, 11),
            detail: "30% of the endpoint's calls fail with 503".into(),
        });
    }
    if last_day
        && day_index > 0
        && let Some(user) = world.evaluation_user()
    {
        incidents.push(Incident {
            kind: "spend_jump".into(),
            rule: "spend_spike".into(),
            endpoint_name: Some("claude-agents".into()),
            requester: Some(world.principals[user].id.clone()),
            team: Some(world.principals[user].home_team.into()),
            start: at(date, 0),
            end: at(date, 24),
            detail: "an evaluation batch of long calls".into(),
        });
    }
    incidents
}
