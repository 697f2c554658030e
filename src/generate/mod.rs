//! The deterministic data generator: a realistic AI Gateway workspace written as Delta tables
//! with the real Databricks schemas, plus the prices and teams CSVs.
//!
//! The same seed and sizes give the same rows (file names and commit times differ). Layout of
//! a data set folder:
//! - `endpoint_usage/`, `served_entities/`, `gateway_payload/`, `trace_logs/` (MLflow traces):
//!   Delta tables, one commit per day;
//! - `gateway_payload_dv/`: the payload table after a privacy delete of one requester, written
//!   as deletion vectors, with a v2 checkpoint;
//! - `prices.csv` (with cache prices and a price change) and the same prices as LiteLLM JSON
//!   (`litellm_prices.json`), `teams.csv`, `rate_limits.json` (the current AI Gateway limits);
//! - with `--ai-gateway`, `ai_gateway_usage/` and `ai_gateway_payload/`: the new AI Gateway's
//!   (Beta) usage and payload tables from the same world ([`ai_gateway`]), and
//!   `gateway_rate_limits.json`, its services' current limits;
//! - `manifest.json`: the options used and the requester the privacy delete removed;
//! - `incidents.json`: the incidents the data set holds on purpose, with their windows
//!   ([`incidents`]).

pub mod ai_gateway;
mod bodies;
pub mod deletion_vectors;
pub mod incidents;
mod rng;
pub mod tables;
mod traces;
mod traffic;
mod world;

use std::path::Path;

use chrono::{Duration, NaiveDate};
use deltalake::arrow::array::RecordBatch;
use deltalake::protocol::SaveMode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::progress::Progress;

pub use world::World;

/// What to generate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateOptions {
    /// Random seed.
    pub seed: u64,
    /// Number of days.
    pub days: u32,
    /// First day (UTC).
    pub start: NaiveDate,
    /// Usage rows per day.
    pub requests_per_day: u64,
    /// Average request JSON size in bytes.
    pub request_bytes: usize,
    /// Only the tables the nightly job reads: no `trace_logs` (unless `traces`), no
    /// `gateway_payload_dv`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lean: bool,
    /// Write `trace_logs` even in a lean data set (benchmarks with a traces table).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub traces: bool,
    /// A seeded schedule of incidents (429 bursts, outages, spend jumps, a logging gap) instead
    /// of the demo's fixed ones ([`incidents`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incidents: bool,
    /// Also the new AI Gateway's (Beta) tables, `ai_gateway_usage` and `ai_gateway_payload`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ai_gateway: bool,
}

/// What a data set folder holds, written to its `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The options it was generated with.
    pub options: GenerateOptions,
    /// The requester whose payload rows `gateway_payload_dv` deletes (empty for a lean set).
    pub deleted_requester: String,
    /// How many payload rows that delete removed.
    pub deleted_payload_rows: u64,
    /// Usage rows written.
    pub usage_rows: u64,
    /// Payload rows written (before the delete).
    pub payload_rows: u64,
}

/// Table folders a data set holds.
const TABLE_FOLDERS: [&str; 7] = [
    "endpoint_usage",
    "served_entities",
    "gateway_payload",
    "gateway_payload_dv",
    "trace_logs",
    "ai_gateway_usage",
    "ai_gateway_payload",
];

/// Rows per Delta write, so large data sets stream through bounded memory.
const CHUNK_ROWS: usize = 200_000;

/// Writes a data set into `out`, replacing an earlier data set there.
pub async fn generate(options: &GenerateOptions, out: &Path, progress: &Progress) -> Result<()> {
    let io = |context: &str| {
        let context = format!("{context} {}", out.display());
        move |source| Error::Io { context: context.clone(), source }
    };
    if options.days == 0 || options.requests_per_day == 0 {
        return Err(Error::Usage("--days and --requests-per-day must be at least 1".into()));
    }
    prepare_folder(out)?;
    let world = World::new(options.seed);
    let mut usage_rows = 0u64;
    let mut payload_rows = 0u64;
    let mut requester_payload_rows: std::collections::HashMap<usize, u64> = Default::default();
    let plans =
        options.incidents.then(|| incidents::schedule(&world, options.seed, options.days, options.requests_per_day));
    let mut injected =
        plans.as_ref().map(|plans| incidents::scheduled(&world, plans, options.start)).unwrap_or_default();

    for day in 0..options.days {
        let date = options.start + Duration::days(i64::from(day));
        progress.stage(&format!("generating {date}"));
        let last_day = day + 1 == options.days;
        let plan = plans.as_ref().map(|plans| &plans[day as usize]);
        let requests = traffic::simulate_day(
            &world,
            options.seed,
            day,
            date,
            options.requests_per_day,
            options.request_bytes,
            last_day,
            plan,
        );
        if plan.is_none() {
            injected.extend(incidents::demo_day(&world, date, day, last_day, &requests));
        }
        if requests.is_empty() {
            continue;
        }
        if !options.lean || options.traces {
            let traces = traces::traces_for_day(&world, options.seed, day, &requests);
            for chunk in traces.chunks(CHUNK_ROWS) {
                let batch = tables::traces_batch(chunk).map_err(|e| Error::Generate(e.to_string()))?;
                append(&out.join("trace_logs"), batch).await?;
            }
        }
        if options.ai_gateway {
            let day_start = date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
            let invocations = ai_gateway::simulate_day(&world, options.seed, day, day_start, &requests);
            for chunk in invocations.chunks(CHUNK_ROWS) {
                let usage = ai_gateway::gateway_usage_batch(chunk).map_err(|e| Error::Generate(e.to_string()))?;
                append(&out.join("ai_gateway_usage"), usage).await?;
                let payload = ai_gateway::gateway_payload_batch(chunk).map_err(|e| Error::Generate(e.to_string()))?;
                append(&out.join("ai_gateway_payload"), payload).await?;
            }
        }
        for chunk in requests.chunks(CHUNK_ROWS) {
            let in_usage: Vec<&traffic::Request> = chunk.iter().filter(|r| r.in_usage).collect();
            let all: Vec<&traffic::Request> = chunk.iter().collect();
            for r in all.iter().filter(|r| r.payload.is_some()) {
                if let Some(p) = r.principal {
                    *requester_payload_rows.entry(p).or_default() += 1;
                }
            }
            let usage = tables::usage_batch(&world, &in_usage).map_err(|e| Error::Generate(e.to_string()))?;
            let payload = tables::payload_batch(&world, &all).map_err(|e| Error::Generate(e.to_string()))?;
            usage_rows += usage.num_rows() as u64;
            payload_rows += payload.num_rows() as u64;
            append(&out.join("endpoint_usage"), usage).await?;
            if !options.lean {
                append(&out.join("gateway_payload_dv"), payload.clone()).await?;
            }
            append(&out.join("gateway_payload"), payload).await?;
        }
    }
    let served = tables::served_entities_batch(&world, options.start).map_err(|e| Error::Generate(e.to_string()))?;
    append(&out.join("served_entities"), served).await?;
    std::fs::write(out.join("prices.csv"), World::prices_csv(options.start)).map_err(io("writing prices.csv in"))?;
    std::fs::write(out.join("teams.csv"), world.teams_csv()).map_err(io("writing teams.csv in"))?;
    std::fs::write(out.join("rate_limits.json"), world.rate_limits_json())
        .map_err(io("writing rate_limits.json in"))?;
    if options.ai_gateway {
        let limits = ai_gateway::gateway_rate_limits_json(&world.rate_limits_json()).map_err(Error::Generate)?;
        std::fs::write(out.join("gateway_rate_limits.json"), limits)
            .map_err(io("writing gateway_rate_limits.json in"))?;
    }
    std::fs::write(out.join("litellm_prices.json"), World::litellm_prices_json())
        .map_err(io("writing litellm_prices.json in"))?;
    incidents::sort(&mut injected);
    let text = serde_json::to_string_pretty(&injected).map_err(|e| Error::Generate(e.to_string()))?;
    std::fs::write(out.join("incidents.json"), text + "\n").map_err(io("writing incidents.json in"))?;

    let (deleted_requester, deleted_payload_rows) = if options.lean {
        (String::new(), 0)
    } else {
        progress.stage("privacy delete with deletion vectors");
        let deleted_requester = privacy_request_target(&world, &requester_payload_rows)?;
        let mut rng = rng::Rng::new(options.seed, 99);
        let dv_uuid = uuid::Uuid::parse_str(&rng.uuid()).map_err(|e| Error::Generate(e.to_string()))?;
        let deleted = deletion_vectors::privacy_delete_with_deletion_vectors(
            &out.join("gateway_payload_dv"),
            &deleted_requester,
            dv_uuid,
        )
        .await?;
        (deleted_requester, deleted)
    };

    let manifest =
        Manifest { options: options.clone(), deleted_requester, deleted_payload_rows, usage_rows, payload_rows };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Generate(e.to_string()))?;
    std::fs::write(out.join("manifest.json"), text + "\n").map_err(io("writing manifest.json in"))?;
    progress.finish();
    tracing::info!(usage_rows, payload_rows, "data set written to {}", out.display());
    Ok(())
}

/// Reads a data set's incidents (`incidents.json`).
pub fn read_incidents(folder: &Path) -> Result<Vec<incidents::Incident>> {
    let path = folder.join("incidents.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|source| Error::Io { context: format!("reading {}", path.display()), source })?;
    serde_json::from_str(&text).map_err(|e| Error::Generate(format!("{}: {e}", path.display())))
}

/// Reads a data set's manifest.
pub fn read_manifest(folder: &Path) -> Result<Manifest> {
    let path = folder.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|source| Error::Io { context: format!("reading {}", path.display()), source })?;
    serde_json::from_str(&text).map_err(|e| Error::Generate(format!("{}: {e}", path.display())))
}

/// The user whose rows the privacy delete removes: the busiest non-bursty user with payload rows.
fn privacy_request_target(world: &World, payload_rows: &std::collections::HashMap<usize, u64>) -> Result<String> {
    world
        .principals
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_service_principal && !p.bursty)
        .filter_map(|(i, p)| payload_rows.get(&i).map(|rows| (*rows, std::cmp::Reverse(i), p)))
        .max_by_key(|(rows, index, _)| (*rows, *index))
        .map(|(_, _, p)| p.id.clone())
        .ok_or_else(|| Error::Generate("no user has payload rows to delete".into()))
}

/// Makes `out` ready: creates it, or clears the tables of an earlier data set. Refuses a
/// non-empty folder that is not a data set, so a typo never deletes unrelated files.
fn prepare_folder(out: &Path) -> Result<()> {
    let io = |source| Error::Io { context: format!("preparing {}", out.display()), source };
    if out.exists() {
        let is_data_set = out.join("manifest.json").exists();
        let is_empty = std::fs::read_dir(out).map_err(io)?.next().is_none();
        if !is_data_set && !is_empty {
            return Err(Error::Usage(format!(
                "{} is not empty and holds no earlier data set (no manifest.json); choose an empty folder",
                out.display()
            )));
        }
        for folder in TABLE_FOLDERS {
            let path = out.join(folder);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(io)?;
            }
        }
    }
    std::fs::create_dir_all(out).map_err(io)
}

async fn append(table: &Path, batch: RecordBatch) -> Result<()> {
    std::fs::create_dir_all(table)
        .map_err(|source| Error::Io { context: format!("creating {}", table.display()), source })?;
    let location =
        crate::location::Location::resolve(&table.to_string_lossy(), Path::new(".")).map_err(Error::Generate)?;
    let delta = crate::storage::open_table_for_write(&location, &Default::default())
        .await
        .map_err(|e| Error::Generate(format!("opening {}: {e}", table.display())))?;
    delta
        .write(vec![batch])
        .with_save_mode(SaveMode::Append)
        .await
        .map_err(|e| Error::Generate(format!("writing {}: {e}", table.display())))?;
    Ok(())
}
