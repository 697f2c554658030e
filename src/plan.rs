//! The run plan: everything a run decides, decided once, before any work, and never changed.
//!
//! [`RunPlan::build`] opens the inputs (fixing the versions the run reads), reads the reference
//! files and the ledger, and decides:
//! - which dates the run computes: the requested window, every earlier date within
//!   `[engine] recompute_horizon_days` whose input rows changed since the version the ledger
//!   recorded for it (late rows, deletions; [`crate::input_changes`]) or whose outputs a run
//!   left partly written (`--only`), and every date an unfinished run left behind;
//! - how those dates group into [`Segment`]s (contiguous dates, computed in date order), and
//!   for each segment which history days come from earlier outputs and from which date the raw
//!   inputs are read, with the bytes each input would read;
//! - which dates were checked and found unchanged (their ledger rows' versions advance);
//! - the price and teams versions and the mode.
//!
//! `gateway-analytics plan` prints it; `run` executes exactly it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::ai_gateway;
use crate::config::JobConfig;
use crate::error::Result;
use crate::input_changes::{self, DataFile, DateChanges, DatedInput};
use crate::input_contract::{self, InputContract};
use crate::inputs::{OpenedInputs, ReferenceData};
use crate::ledger::{DateStatus, InputVersions, Ledger, LedgerEntry, Provenance};
use crate::outputs::{self, OutputSelection, Partitioning, SkippedOutput};
use crate::served_entity_changes;
use crate::sql_params::{SqlParams, history_start};
use crate::window::RunWindow;

/// How the job reads spend: from the usage table, estimated from the payload table, or only
/// from the new AI Gateway's tables.
pub fn mode_of(job: &JobConfig) -> &'static str {
    if job.usage.is_some() {
        "usage_table"
    } else if job.payload.is_some() {
        "payload_only"
    } else {
        "ai_gateway_only"
    }
}

/// A date the run computes besides the requested window, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RecomputedDate {
    /// The date.
    pub date: NaiveDate,
    /// Why: `late rows in usage v13..v14`, `an unfinished run (...) left it partly written`...
    pub reasons: Vec<String>,
}

/// A date whose outputs no longer match its inputs but that the run does not recompute
/// (beyond the horizon): a backfill fixes it. Never read back as history.
#[derive(Debug, Clone, Serialize)]
pub struct StaleDate {
    /// The date.
    pub date: NaiveDate,
    /// What changed.
    pub reasons: Vec<String>,
}

/// What a segment reads from one input.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRead {
    /// The input (`usage`, `payload`, `traces`, `served_entities`, `gateway_usage`,
    /// `gateway_payload`).
    pub input: &'static str,
    /// The first date of the rows read (by the input's time column); `None`: every row.
    pub from: Option<NaiveDate>,
    /// The last date of the rows read; `None`: every row.
    pub to: Option<NaiveDate>,
    /// Data files whose statistics place rows in the range read (or cannot tell).
    pub files: u64,
    /// Their size in bytes.
    pub bytes: u64,
}

impl PlannedRead {
    /// The dates read, as the text plan prints them: `2026-11-01..2026-11-03`, or `every row`.
    pub fn dates(&self) -> String {
        match (self.from, self.to) {
            (Some(from), Some(to)) => format!("{from}..{to}"),
            (Some(from), None) => format!("from {from}"),
            (None, Some(to)) => format!("until {to}"),
            (None, None) => "every row".to_string(),
        }
    }
}

/// Contiguous dates computed together: one pass of every view and output query.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// The dates.
    pub window: SerializedWindow,
    /// Why these dates are computed.
    pub reason: String,
    /// The first history date the outputs need (spend baselines, budgets, the lookback).
    pub history_from: NaiveDate,
    /// The first date read from the raw inputs: the days before it come from earlier outputs
    /// (or, for dates an earlier segment of this run computes, from that segment's rows).
    pub inputs_from: NaiveDate,
    /// History dates read from the stored outputs (trusted ledger dates).
    pub stored_history: Vec<NaiveDate>,
    /// Whether the rate-limit recommendations as of the segment's last date are written: for
    /// the requested window, and for a recomputed date that has them already.
    pub writes_as_of: bool,
    /// What the segment reads from each input.
    pub reads: Vec<PlannedRead>,
}

/// A window as it is printed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SerializedWindow {
    /// First date.
    pub from: NaiveDate,
    /// Last date (inclusive).
    pub to: NaiveDate,
}

impl Segment {
    /// The segment's dates.
    pub fn run_window(&self) -> RunWindow {
        RunWindow { from: self.window.from, to: self.window.to }
    }

    /// The SQL variables of the segment's computation.
    pub fn params(&self, job: &JobConfig, price_version: &str) -> SqlParams {
        SqlParams::new(&self.run_window(), &job.settings, price_version, self.inputs_from)
    }

    /// Whether any history comes from earlier outputs or earlier segments.
    pub fn reads_history_from_outputs(&self) -> bool {
        self.inputs_from > self.history_from
    }
}

/// What a run's summary says of its plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanReport {
    /// The run's id.
    pub run_id: String,
    /// Dates computed besides the window, and why.
    pub recomputed: Vec<RecomputedDate>,
    /// Changed dates beyond the horizon, left for a backfill.
    pub stale: Vec<StaleDate>,
    /// Earlier dates checked and found unchanged.
    pub checked_dates: usize,
    /// The recompute horizon in days.
    pub recompute_horizon_days: u32,
    /// Outputs of the selection the job cannot write, and why.
    pub skipped: Vec<SkippedOutput>,
}

/// An input as the plan opened it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedInput {
    /// The input's name.
    pub input: &'static str,
    /// Its location, without credentials.
    pub location: String,
    /// The Delta version the run reads.
    pub version: Option<i64>,
    /// Data files of that version.
    pub files: u64,
    /// Their size in bytes.
    pub bytes: u64,
    /// The columns the queries read from it (its input contract): all a copy of it needs
    /// (`jobs/src/staged_io.py` stages these).
    pub columns: Vec<&'static str>,
}

/// The columns of an input's contract.
fn contract_columns(contract: &InputContract) -> Vec<&'static str> {
    contract.columns.iter().map(|(name, _)| *name).collect()
}

/// The top-level columns of a new AI Gateway table's contract (a `struct.field` path reads
/// its struct column), with `routing_information`, read apart from the contract's list.
fn beta_columns(contract: &ai_gateway::contract::Contract) -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = Vec::new();
    let paths = contract.columns.iter().map(|column| column.path);
    let extra = (contract.input == ai_gateway::contract::GATEWAY_USAGE.input).then_some("routing_information");
    for path in paths.chain(extra) {
        let top = path.split('.').next().unwrap_or(path);
        if !columns.contains(&top) {
            columns.push(top);
        }
    }
    columns
}

/// What a plan reads before it decides: the inputs, opened and checked at the versions the run
/// reads, and the reference files. Loaded before the run takes its lease, so a missing input
/// or a malformed file stops the run before it writes anything at all.
#[derive(Debug)]
pub struct PlanInputs {
    /// The Delta inputs.
    pub opened: OpenedInputs,
    /// Prices, teams and rate limits.
    pub reference: ReferenceData,
}

impl PlanInputs {
    /// Opens and checks the job's inputs and reads its reference files.
    pub async fn load(job: &JobConfig) -> Result<Self> {
        Ok(PlanInputs { opened: OpenedInputs::open(job).await?, reference: ReferenceData::load(job).await? })
    }
}

/// Everything a run decides, in order.
#[derive(Debug, Serialize)]
pub struct RunPlan {
    /// The run's id (`<UTC time>-<host>-<pid>`), recorded in the ledger and in every commit.
    pub run_id: String,
    /// The window asked for.
    pub requested: SerializedWindow,
    /// `usage_table`, `payload_only` or `ai_gateway_only`.
    pub mode: &'static str,
    /// The outputs computed and written.
    pub outputs: Vec<&'static str>,
    /// Outputs of the selection the job cannot write, and why.
    pub skipped: Vec<SkippedOutput>,
    /// Whether this is a run of every output (the only kind that finishes ledger dates).
    pub full_run: bool,
    /// The price list's version.
    pub price_version: String,
    /// The teams file's version.
    pub teams_version: String,
    /// The version of the query definitions.
    pub definitions_version: String,
    /// The inputs and the versions read.
    pub inputs: Vec<PlannedInput>,
    /// Dates computed besides the window, and why.
    pub recomputed: Vec<RecomputedDate>,
    /// The computations, in order.
    pub segments: Vec<Segment>,
    /// Earlier dates checked and found unchanged: their ledger versions advance.
    pub checked: Vec<NaiveDate>,
    /// Changed dates beyond the horizon: not recomputed, not used as history.
    pub stale: Vec<StaleDate>,
    /// The recompute horizon in days.
    pub recompute_horizon_days: u32,
    /// Reference data (prices, teams, rate limits); not printed.
    #[serde(skip)]
    pub reference: ReferenceData,
    /// The opened inputs; not printed.
    #[serde(skip)]
    pub opened: OpenedInputs,
    /// The ledger as read; not printed.
    #[serde(skip)]
    pub ledger: Ledger,
}

impl RunPlan {
    /// Plans run `run_id` of `selection` over `window` from `inputs`: reads the ledger and the
    /// inputs' logs and decides every date and history source. Writes nothing.
    pub async fn build(
        job: &JobConfig,
        window: RunWindow,
        selection: &OutputSelection,
        run_id: String,
        inputs: PlanInputs,
    ) -> Result<Self> {
        let PlanInputs { opened, reference } = inputs;
        let ledger = Ledger::read(job).await?;
        let versions = opened.versions();
        let provenance = Provenance {
            price_version: reference.prices.version.clone(),
            teams_version: reference.teams_version.clone(),
            mode: mode_of(job).to_string(),
            definitions_version: outputs::definitions_version(),
        };
        let full_run = matches!(selection, OutputSelection::All);
        let horizon = i64::from(job.settings.engine.recompute_horizon_days);
        // History of the earliest date the run could recompute reaches back this far.
        let horizon_start = window.from - Duration::days(horizon);
        let checked_from = history_start(&RunWindow { from: horizon_start, to: horizon_start }, &job.settings)
            .min(history_start(&window, &job.settings));

        let files = InputFiles::of(&opened)?;
        let changed = changed_dates(job, &opened, &ledger, checked_from, window.from).await?;

        // Dates to recompute besides the window, with their reasons.
        let mut extra: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
        let mut stale = Vec::new();
        if full_run {
            for entry in ledger.entries().filter(|e| !window_contains(&window, e.date)) {
                match entry.status {
                    DateStatus::Started => extra
                        .entry(entry.date)
                        .or_default()
                        .push(format!("an unfinished run ({}) left its outputs partly written", entry.run_id)),
                    DateStatus::Partial if entry.date < window.from => {
                        let reason = format!(
                            "run --only ({}) rewrote only {}: its outputs come from different runs",
                            entry.run_id, entry.outputs
                        );
                        if entry.date >= horizon_start {
                            extra.entry(entry.date).or_default().push(reason);
                        } else {
                            stale.push(StaleDate { date: entry.date, reasons: vec![reason] });
                        }
                    }
                    _ => {}
                }
            }
            for (date, reasons) in &changed {
                if *date >= horizon_start {
                    extra.entry(*date).or_default().extend(reasons.iter().cloned());
                } else {
                    stale.push(StaleDate { date: *date, reasons: reasons.clone() });
                }
            }
            stale.sort_by_key(|s| s.date);
        }
        let recomputed: Vec<RecomputedDate> =
            extra.iter().map(|(date, reasons)| RecomputedDate { date: *date, reasons: reasons.clone() }).collect();
        for date in &recomputed {
            tracing::info!(date = %date.date, "recomputing: {}", date.reasons.join("; "));
        }
        let skipped = outputs::skipped(job, selection);
        for skip in &skipped {
            tracing::info!(output = skip.table, "not written: {}", skip.reason);
        }

        // Dates whose stored outputs may stand in as history.
        let history_tables_exist = outputs::history_tables_exist(job).await?;
        let reuse = job.usage.is_some() && job.settings.engine.history_from_outputs && history_tables_exist;
        let trusted: BTreeSet<NaiveDate> = ledger
            .entries()
            .filter(|e| {
                reuse
                    && e.status == DateStatus::Finished
                    && e.provenance == provenance
                    && e.versions.same_inputs(&versions)
                    && e.date >= checked_from
                    && !changed.contains_key(&e.date)
            })
            .map(|e| e.date)
            .collect();
        let checked: Vec<NaiveDate> = if full_run {
            ledger
                .entries()
                .filter(|e| {
                    e.status == DateStatus::Finished
                        && e.date >= checked_from
                        && e.date < window.from
                        && !changed.contains_key(&e.date)
                        && !extra.contains_key(&e.date)
                        && e.versions.same_inputs(&versions)
                        && e.versions != versions
                })
                .map(|e| e.date)
                .collect()
        } else {
            Vec::new()
        };

        // Recomputed dates that have recommendations as of them (stored, or meant to be by an
        // unfinished run) get them recomputed too.
        let mut stored_as_of = outputs::stored_as_of_dates(job, &extra.keys().copied().collect::<Vec<_>>()).await?;
        stored_as_of.extend(ledger.entries().filter(|e| e.recommendations_as_of).map(|e| e.date));
        let segments = segments(job, &window, &extra, &stored_as_of, &trusted, reuse, &files);
        let inputs = files.planned(job, &versions);
        Ok(RunPlan {
            run_id,
            requested: SerializedWindow { from: window.from, to: window.to },
            mode: mode_of(job),
            outputs: outputs::selected_names(job, selection),
            skipped,
            full_run,
            price_version: provenance.price_version,
            teams_version: provenance.teams_version,
            definitions_version: provenance.definitions_version,
            inputs,
            recomputed,
            segments,
            checked,
            stale,
            recompute_horizon_days: job.settings.engine.recompute_horizon_days,
            reference,
            opened,
            ledger,
        })
    }

    /// The provenance of every date this run computes.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            price_version: self.price_version.clone(),
            teams_version: self.teams_version.clone(),
            mode: self.mode.to_string(),
            definitions_version: self.definitions_version.clone(),
        }
    }

    /// The segment holding the requested window's last date (whose recommendations give the
    /// patches).
    pub fn window_segment(&self) -> Option<&Segment> {
        self.segments.iter().find(|s| s.window.from <= self.requested.to && self.requested.to <= s.window.to)
    }

    /// The partitions of an output with `partitioning` that the run replaces: every date it
    /// computes, or the as-of dates of the segments that write recommendations.
    pub fn replaced_dates(&self, partitioning: Partitioning) -> Vec<NaiveDate> {
        match partitioning {
            Partitioning::WindowDates => self.dates(),
            Partitioning::AsOfDate => self.segments.iter().filter(|s| s.writes_as_of).map(|s| s.window.to).collect(),
        }
    }

    /// Every date the run computes, in order.
    pub fn dates(&self) -> Vec<NaiveDate> {
        self.segments.iter().flat_map(|s| s.run_window().dates()).collect()
    }

    /// The ledger rows of every date the run computes, with `status`.
    pub fn ledger_entries(&self, status: DateStatus) -> Vec<LedgerEntry> {
        let now = Utc::now();
        let reasons: BTreeMap<NaiveDate, String> =
            self.recomputed.iter().map(|r| (r.date, r.reasons.join("; "))).collect();
        let as_of = self.replaced_dates(Partitioning::AsOfDate);
        self.dates()
            .into_iter()
            .map(|date| LedgerEntry {
                date,
                status,
                run_id: self.run_id.clone(),
                outputs: self.outputs.join(","),
                reason: reasons.get(&date).cloned().unwrap_or_else(|| "requested window".to_string()),
                provenance: self.provenance(),
                versions: self.opened.versions(),
                recommendations_as_of: as_of.contains(&date),
                computed_at: now,
                checked_at: now,
            })
            .collect()
    }

    /// The ledger rows of the dates found unchanged, their versions advanced to the run's.
    pub fn checked_entries(&self) -> Vec<LedgerEntry> {
        let now = Utc::now();
        let versions = self.opened.versions();
        self.checked
            .iter()
            .filter_map(|date| self.ledger.get(*date))
            .map(|entry| LedgerEntry { versions, checked_at: now, ..entry.clone() })
            .collect()
    }

    /// What the run summary reports of the plan.
    pub fn report(&self) -> PlanReport {
        PlanReport {
            run_id: self.run_id.clone(),
            recomputed: self.recomputed.clone(),
            stale: self.stale.clone(),
            checked_dates: self.checked.len(),
            recompute_horizon_days: self.recompute_horizon_days,
            skipped: self.skipped.clone(),
        }
    }

    /// Prints the plan for people.
    pub fn print(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let window = RunWindow { from: self.requested.from, to: self.requested.to };
        writeln!(out, "gateway-analytics plan {window} (run {})", self.run_id)?;
        writeln!(
            out,
            "mode {}, prices {}, teams {}, outputs: {}",
            self.mode,
            self.price_version,
            self.teams_version,
            self.outputs.join(", ")
        )?;
        for input in &self.inputs {
            let version = input.version.map_or("-".to_string(), |v| format!("v{v}"));
            writeln!(
                out,
                "input {:<16} {:>6} {:>7} files {:>14} bytes  {}",
                input.input, version, input.files, input.bytes, input.location
            )?;
        }
        for skip in &self.skipped {
            writeln!(out, "skip {}: {}", skip.table, skip.reason)?;
        }
        for date in &self.recomputed {
            writeln!(out, "recompute {}: {}", date.date, date.reasons.join("; "))?;
        }
        for date in &self.stale {
            writeln!(
                out,
                "stale {} (beyond recompute_horizon_days = {}; backfill with run --from {} --to {}): {}",
                date.date,
                self.recompute_horizon_days,
                date.date,
                date.date,
                date.reasons.join("; ")
            )?;
        }
        if !self.checked.is_empty() {
            let first = self.checked.first().copied().unwrap_or_default();
            let last = self.checked.last().copied().unwrap_or_default();
            writeln!(out, "checked {} earlier dates ({first}..{last}): no input change", self.checked.len())?;
        }
        for (index, segment) in self.segments.iter().enumerate() {
            writeln!(out, "segment {} {}: {}", index + 1, segment.run_window(), segment.reason)?;
            if segment.reads_history_from_outputs() {
                writeln!(
                    out,
                    "  history {}..{} from earlier outputs; inputs from {}",
                    segment.history_from,
                    segment.inputs_from - Duration::days(1),
                    segment.inputs_from
                )?;
            } else {
                writeln!(out, "  history and window from the inputs, from {}", segment.inputs_from)?;
            }
            for read in &segment.reads {
                writeln!(
                    out,
                    "  read  {:<16} {:>7} files {:>14} bytes  {}",
                    read.input,
                    read.files,
                    read.bytes,
                    read.dates()
                )?;
            }
        }
        Ok(())
    }
}

fn window_contains(window: &RunWindow, date: NaiveDate) -> bool {
    window.from <= date && date <= window.to
}

/// A new run id: the UTC start time, the host and the process.
pub fn new_run_id() -> String {
    format!("{}-{}-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"), host_name(), std::process::id())
}

/// This machine's host name (letters, digits, `-` and `.` only), `host` when unknown.
pub fn host_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_default();
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')).collect();
    if host.is_empty() { "host".to_string() } else { host }
}

/// The data files of each dated input at the version read.
struct InputFiles {
    usage: Option<Vec<DataFile>>,
    payload: Option<Vec<DataFile>>,
    traces: Option<Vec<DataFile>>,
    served_entities: Option<Vec<DataFile>>,
    gateway_usage: Option<Vec<DataFile>>,
    gateway_payload: Option<Vec<DataFile>>,
}

impl InputFiles {
    fn of(opened: &OpenedInputs) -> Result<Self> {
        let dated = |table: &Option<deltalake::DeltaTable>, input: &DatedInput| {
            table.as_ref().map(|t| input_changes::current_files(t, input)).transpose()
        };
        let served = DatedInput { name: "served_entities", time_column: "change_time", date_column: None };
        Ok(InputFiles {
            usage: dated(&opened.usage, &input_changes::USAGE)?,
            payload: dated(&opened.payload, &input_changes::PAYLOAD)?,
            traces: dated(&opened.traces, &input_changes::TRACES)?,
            served_entities: dated(&opened.served_entities, &served)?,
            gateway_usage: dated(&opened.gateway_usage, &input_changes::GATEWAY_USAGE)?,
            gateway_payload: dated(&opened.gateway_payload, &input_changes::GATEWAY_PAYLOAD)?,
        })
    }

    /// Files and bytes of the files overlapping `[from, to]` (all files when `None`).
    fn overlapping(files: &[DataFile], range: Option<(NaiveDate, NaiveDate)>) -> (u64, u64) {
        let picked = files.iter().filter(|f| match (range, f.dates) {
            (Some((from, to)), Some((low, high))) => low <= to && high >= from,
            _ => true,
        });
        picked.fold((0, 0), |(n, bytes), f| (n + 1, bytes + f.size))
    }

    fn planned(&self, job: &JobConfig, versions: &InputVersions) -> Vec<PlannedInput> {
        let mut planned = Vec::new();
        let serving = [
            (&input_contract::USAGE, &job.usage, &self.usage, versions.usage),
            (&input_contract::PAYLOAD, &job.payload, &self.payload, versions.payload),
            (&input_contract::TRACES, &job.traces, &self.traces, versions.traces),
            (&input_contract::SERVED_ENTITIES, &job.served_entities, &self.served_entities, versions.served_entities),
        ];
        let serving = serving.into_iter().map(|(contract, location, files, version)| {
            (contract.input, contract_columns(contract), location, files, version)
        });
        let beta = [
            (&ai_gateway::contract::GATEWAY_USAGE, &job.gateway_usage, &self.gateway_usage, versions.gateway_usage),
            (
                &ai_gateway::contract::GATEWAY_PAYLOAD,
                &job.gateway_payload,
                &self.gateway_payload,
                versions.gateway_payload,
            ),
        ];
        let beta = beta.into_iter().map(|(contract, location, files, version)| {
            (contract.input, beta_columns(contract), location, files, version)
        });
        for (input, columns, location, files, version) in serving.chain(beta) {
            if let (Some(location), Some(files)) = (location, files) {
                let (n, bytes) = Self::overlapping(files, None);
                planned.push(PlannedInput { input, location: location.to_string(), version, files: n, bytes, columns });
            }
        }
        planned
    }

    /// What a segment over `window` reading inputs from `inputs_from` reads; the new AI
    /// Gateway's usage rows from `gateway_from` (its recommendations' lookback, read from the
    /// usage table itself, when the segment writes them).
    fn reads(&self, window: &RunWindow, inputs_from: NaiveDate, gateway_from: NaiveDate) -> Vec<PlannedRead> {
        let day = Duration::days(1);
        let ranges = [
            ("usage", &self.usage, Some((inputs_from, window.to))),
            ("payload", &self.payload, Some((inputs_from - day, window.to + day))),
            ("traces", &self.traces, Some((window.from - day, window.to + day))),
            ("served_entities", &self.served_entities, None),
            // The new AI Gateway's outputs read the window's rows only, but for the lookback.
            ("gateway_usage", &self.gateway_usage, Some((gateway_from.min(window.from), window.to))),
            ("gateway_payload", &self.gateway_payload, Some((window.from - day, window.to + day))),
        ];
        let mut reads = Vec::new();
        for (input, files, range) in ranges {
            if let Some(files) = files {
                let (files, bytes) = Self::overlapping(files, range);
                let (from, to) = (range.map(|r| r.0), range.map(|r| r.1));
                reads.push(PlannedRead { input, from, to, files, bytes });
            }
        }
        reads
    }
}

/// Dates in `[from, until)` with a `finished` ledger row whose input rows changed since the
/// versions it records, with the reasons.
async fn changed_dates(
    job: &JobConfig,
    opened: &OpenedInputs,
    ledger: &Ledger,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<BTreeMap<NaiveDate, Vec<String>>> {
    let candidates: Vec<&LedgerEntry> =
        ledger.entries().filter(|e| e.status == DateStatus::Finished && e.date >= from && e.date < until).collect();
    let mut reasons: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    type VersionOf = fn(&InputVersions) -> Option<i64>;
    let dated: [(_, _, VersionOf); 5] = [
        (&opened.usage, &input_changes::USAGE, |v| v.usage),
        (&opened.payload, &input_changes::PAYLOAD, |v| v.payload),
        (&opened.traces, &input_changes::TRACES, |v| v.traces),
        (&opened.gateway_usage, &input_changes::GATEWAY_USAGE, |v| v.gateway_usage),
        (&opened.gateway_payload, &input_changes::GATEWAY_PAYLOAD, |v| v.gateway_payload),
    ];
    for (table, input, version_of) in dated {
        let Some(table) = table else { continue };
        let recorded: BTreeMap<NaiveDate, i64> =
            candidates.iter().filter_map(|e| version_of(&e.versions).map(|v| (e.date, v))).collect();
        let changes: BTreeMap<NaiveDate, DateChanges> = input_changes::changed_dates(table, input, &recorded).await?;
        for (date, change) in changes {
            reasons.entry(date).or_default().extend(change.reasons(input.name));
        }
    }
    if let (Some(table), Some(location)) = (&opened.served_entities, &job.served_entities) {
        for (date, reason) in served_entity_changes::changed_dates(job, location, table, &candidates).await? {
            reasons.entry(date).or_default().push(reason);
        }
    }
    Ok(reasons)
}

/// Groups the `extra` dates into contiguous segments, each ending at a date with stored
/// recommendations (`stored_as_of`, so that those are recomputed too), adds the window as a
/// segment of its own, and decides each segment's history, in date order.
fn segments(
    job: &JobConfig,
    window: &RunWindow,
    extra: &BTreeMap<NaiveDate, Vec<String>>,
    stored_as_of: &BTreeSet<NaiveDate>,
    trusted: &BTreeSet<NaiveDate>,
    reuse: bool,
    files: &InputFiles,
) -> Vec<Segment> {
    let mut groups: Vec<(RunWindow, bool)> = Vec::new();
    for date in extra.keys().copied() {
        match groups.last_mut() {
            Some((group, false)) if group.to + Duration::days(1) == date => group.to = date,
            _ => groups.push((RunWindow { from: date, to: date }, false)),
        }
        if let Some(last) = groups.last_mut() {
            last.1 = stored_as_of.contains(&date);
        }
    }
    groups.push((*window, true));
    groups.sort_by_key(|(group, _)| group.from);
    let mut computed: BTreeSet<NaiveDate> = BTreeSet::new();
    let mut segments = Vec::with_capacity(groups.len());
    for (run_window, writes_as_of) in groups {
        let history_from = history_start(&run_window, &job.settings);
        let mut inputs_from = history_from;
        let mut stored_history = Vec::new();
        if reuse {
            while inputs_from < run_window.from && (trusted.contains(&inputs_from) || computed.contains(&inputs_from)) {
                if !computed.contains(&inputs_from) {
                    stored_history.push(inputs_from);
                }
                inputs_from += Duration::days(1);
            }
        }
        let reason = if run_window == *window {
            "requested window".to_string()
        } else {
            let mut reasons: Vec<String> =
                run_window.dates().filter_map(|d| extra.get(&d)).flatten().cloned().collect();
            reasons.sort();
            reasons.dedup();
            format!("recompute: {}", reasons.join("; "))
        };
        computed.extend(run_window.dates());
        let gateway_from =
            if writes_as_of { crate::sql_params::lookback_start(&run_window, &job.settings) } else { run_window.from };
        segments.push(Segment {
            window: SerializedWindow { from: run_window.from, to: run_window.to },
            reason,
            history_from,
            inputs_from,
            stored_history,
            writes_as_of,
            reads: files.reads(&run_window, inputs_from, gateway_from),
        });
    }
    segments
}
