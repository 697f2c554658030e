//! The command line (clap derive) and what each command does.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use std::io::Write;

use crate::alerts::{self, AlertsFormat, Severity};
use crate::config::JobConfig;
use crate::deadline::{self, Deadline};
use crate::error::{EXIT_ALERTS, EXIT_OK, Error, Result};
use crate::generate::{self, GenerateOptions};
use crate::outputs::OutputSelection;
use crate::plan::{self, PlanInputs, RunPlan};
use crate::progress::Progress;
use crate::recommend;
use crate::run::{self, RunOptions};
use crate::spark_sql;
use crate::summary::SummaryFormat;
use crate::window::RunWindow;

/// Daily spend, error and latency tables from the Databricks AI Gateway's Delta tables.
#[derive(Debug, Parser)]
#[command(name = "gateway-analytics", version, about)]
pub struct Cli {
    /// More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Recompute the output tables for a window of UTC dates (and the earlier dates whose inputs
    /// changed) and print a summary.
    Run(RunArgs),
    /// Print what `run` would do (dates and why, history sources, input versions, bytes read);
    /// writes nothing.
    Plan(PlanArgs),
    /// Print the proposed rate-limit changes with their evidence, for review; writes nothing.
    Recommend(RecommendArgs),
    /// Write a deterministic, realistic demo data set (Delta tables and CSVs).
    Generate(GenerateArgs),
    /// Print the run's SQL as a Spark manifest (JSON) for jobs/src/spark_runner.py, to compute
    /// the outputs on a Spark cluster; reads the job's reference files, not its tables.
    SparkSql(SparkSqlArgs),
    /// Write a self-contained HTML report of a window from the output tables (charts,
    /// alerts, proposed rate limits, provenance); reads only the outputs.
    Report(crate::report::ReportArgs),
    /// Run DataFusion SQL over the output tables and the inputs; an interactive prompt when no
    /// SQL is given on a terminal.
    Query(crate::query::QueryArgs),
}

/// The job file and the window: the arguments `run`, `plan` and `spark-sql` share.
#[derive(Debug, Args)]
pub struct JobWindowArgs {
    /// The job file (TOML) naming the inputs and the output location.
    #[arg(long, short)]
    pub config: PathBuf,
    /// First UTC date of the window (default: yesterday; alone, a one-day window).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last UTC date of the window, inclusive (default: --from, or yesterday).
    #[arg(long)]
    pub to: Option<NaiveDate>,
}

impl JobWindowArgs {
    /// The job file, read and checked, and the window.
    pub fn load(&self) -> Result<(JobConfig, RunWindow)> {
        Ok((JobConfig::load(&self.config)?, RunWindow::from_args(self.from, self.to)?))
    }
}

/// Arguments of `spark-sql`.
#[derive(Debug, Args)]
pub struct SparkSqlArgs {
    /// The job file and the window.
    #[command(flatten)]
    pub job: JobWindowArgs,
    /// Write the manifest to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// How `plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Lines for people.
    Table,
    /// One JSON document.
    Json,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The job file and the window.
    #[command(flatten)]
    pub job: JobWindowArgs,
    /// Plan a run of only these output tables (as `run --only`).
    #[arg(long, value_delimiter = ',', value_name = "TABLE")]
    pub only: Vec<String>,
    /// How to print the plan.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file and the window.
    #[command(flatten)]
    pub job: JobWindowArgs,
    /// How to print the window's summary on stdout (on stderr when --alerts-jsonl is `-`).
    #[arg(long, value_enum, default_value = "table")]
    pub format: SummaryFormat,
    /// Also write the window's alerts as JSON Lines to this file, or `-` for stdout.
    #[arg(long, value_name = "PATH")]
    pub alerts_jsonl: Option<PathBuf>,
    /// What --alerts-jsonl writes: every alert record (jsonl), or the requested window's
    /// trigger and resolve events as PagerDuty Events API v2 or Opsgenie Alert API requests.
    #[arg(long, value_enum, default_value = "jsonl", requires = "alerts_jsonl")]
    pub alerts_format: AlertsFormat,
    /// Exit with code 3, after writing every output, when an alert of this severity or
    /// higher fired in the window.
    #[arg(long, value_enum)]
    pub fail_on: Option<Severity>,
    /// Compute and write only these output tables (comma-separated), and the tables they read
    /// (alerts read data_quality and spend_forecast). The views they share are computed in any case; the
    /// computed_dates ledger is written only by a run of every output.
    #[arg(long, value_delimiter = ',', value_name = "TABLE")]
    pub only: Vec<String>,
    /// Wait up to this many seconds while another run holds the output location's lease
    /// (default 0: exit at once with code 4, naming the holder).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
    /// Replace dates that have outputs even when their inputs are empty (by default such a run
    /// stops with code 2 and writes nothing).
    #[arg(long)]
    pub allow_empty: bool,
    /// Stop with exit code 5 when the run has taken this long, committing nothing more:
    /// minutes (`170`) or a duration (`2h 50m`, `90s`). Overrides `[engine] deadline_minutes`.
    #[arg(long, value_name = "DURATION", value_parser = deadline::parse_duration_arg)]
    pub deadline: Option<std::time::Duration>,
    /// After the run, write the window's `focus_costs` rows to this file as a FinOps FOCUS 1.2
    /// CSV (docs/OUTPUTS.md#focus_costs).
    #[arg(long, value_name = "PATH")]
    pub focus_csv: Option<PathBuf>,
    /// A second price list (CSV or LiteLLM JSON, as `inputs.prices`): `pricing_what_if` also
    /// prices every entity's tokens with it.
    #[arg(long, value_name = "FILE")]
    pub what_if_prices: Option<PathBuf>,
}

/// Arguments of `recommend`.
#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// The job file (TOML); its `inputs.rate_limits` gives the current limits.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The last UTC date of the lookback (default: yesterday).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
}

/// Arguments of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder to write the data set into (replaced if it holds an earlier data set).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed: the same seed and sizes give the same rows.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Number of UTC days of traffic.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// First UTC date of traffic.
    #[arg(long, default_value = "2026-11-01")]
    pub start: NaiveDate,
    /// Gateway requests per day (usage rows).
    #[arg(long, default_value_t = 2000)]
    pub requests_per_day: u64,
    /// Average size in bytes of a payload row's request JSON (benchmarks use ~3000).
    #[arg(long, default_value_t = 400)]
    pub request_bytes: usize,
    /// Write only the tables the nightly job reads (endpoint_usage, served_entities,
    /// gateway_payload): no trace_logs and no deletion-vector copy. For benchmark data sets.
    #[arg(long)]
    pub lean: bool,
    /// With --lean, still write trace_logs (the MLflow traces table), for benchmarks with traces.
    #[arg(long)]
    pub traces: bool,
    /// Inject a seeded schedule of incidents (429 bursts, outages, spend jumps and, over 16 days
    /// or more, a logging gap) instead of the demo's fixed ones; incidents.json lists them.
    #[arg(long)]
    pub incidents: bool,
    /// Also write the new AI Gateway's (Beta) tables from the same world: `ai_gateway_usage`
    /// (`system.ai_gateway.usage`) and `ai_gateway_payload` (a model service's payload table).
    #[arg(long)]
    pub ai_gateway: bool,
}

impl Cli {
    /// Runs the parsed command; returns the process exit code.
    pub async fn execute(self) -> Result<u8> {
        match self.command {
            Command::Run(args) => {
                let (mut job, window) = args.job.load()?;
                if let Some(path) = &args.what_if_prices {
                    job.what_if_prices = Some(
                        crate::location::Location::resolve(
                            &path.display().to_string(),
                            &std::env::current_dir().unwrap_or_default(),
                        )
                        .map_err(|message| Error::Usage(format!("--what-if-prices: {message}")))?,
                    );
                }
                let selected = OutputSelection::named(&args.only)?;
                if args.focus_csv.is_some() && !selected.includes(&crate::outputs::FOCUS_COSTS) {
                    return Err(Error::Usage(
                        "--focus-csv writes the focus_costs rows this run computes: add focus_costs to --only".into(),
                    ));
                }
                let progress = Progress::for_stderr();
                let deadline = Deadline::for_run(args.deadline, &job.settings.engine);
                let _watchdog = deadline.watchdog(progress.stages());
                let options = RunOptions {
                    wait: std::time::Duration::from_secs(args.wait),
                    allow_empty: args.allow_empty,
                    deadline: deadline.clone(),
                };
                let run = run::run(&job, window, &selected, &options, &progress);
                let summary = deadline.bound(&progress.stages(), run).await?;
                if let Some(path) = &args.focus_csv {
                    let rows = crate::focus::write_csv(&job, &window, path).await?;
                    tracing::info!(rows, path = %path.display(), "wrote the FOCUS CSV");
                }
                let jsonl_to_stdout = args.alerts_jsonl.as_deref() == Some(std::path::Path::new("-"));
                if let Some(path) = &args.alerts_jsonl {
                    if jsonl_to_stdout {
                        alerts::write(&summary.alerts, args.alerts_format, &window, &mut std::io::stdout().lock())?;
                    } else {
                        let io = |source| Error::Io { context: format!("writing {}", path.display()), source };
                        let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
                        alerts::write(&summary.alerts, args.alerts_format, &window, &mut file)?;
                        file.flush().map_err(io)?;
                    }
                }
                if jsonl_to_stdout {
                    summary.print(args.format, &mut std::io::stderr().lock())?;
                } else {
                    summary.print(args.format, &mut std::io::stdout().lock())?;
                }
                let fired = alerts::highest_severity(&summary.alerts)?;
                Ok(match (args.fail_on, fired) {
                    (Some(level), Some(highest)) if highest >= level => EXIT_ALERTS,
                    _ => EXIT_OK,
                })
            }
            Command::Plan(args) => {
                let (job, window) = args.job.load()?;
                let selected = OutputSelection::named(&args.only)?;
                let inputs = PlanInputs::load(&job).await?;
                let plan = RunPlan::build(&job, window, &selected, plan::new_run_id(), inputs).await?;
                let mut out = std::io::stdout().lock();
                let io = |source| Error::Io { context: "writing the plan".into(), source };
                match args.format {
                    PlanFormat::Table => plan.print(&mut out).map_err(io)?,
                    PlanFormat::Json => {
                        serde_json::to_writer_pretty(&mut out, &plan).map_err(|e| io(e.into()))?;
                        writeln!(out).map_err(io)?;
                    }
                }
                Ok(EXIT_OK)
            }
            Command::Recommend(args) => {
                let job = JobConfig::load(&args.config)?;
                let window = RunWindow::from_args(args.as_of, args.as_of)?;
                let review = recommend::review(&job, window).await?;
                review.print(&mut std::io::stdout().lock())?;
                Ok(EXIT_OK)
            }
            Command::Generate(args) => {
                let options = GenerateOptions {
                    seed: args.seed,
                    days: args.days,
                    start: args.start,
                    requests_per_day: args.requests_per_day,
                    request_bytes: args.request_bytes,
                    lean: args.lean,
                    traces: args.traces,
                    incidents: args.incidents,
                    ai_gateway: args.ai_gateway,
                };
                generate::generate(&options, &args.out, &Progress::for_stderr()).await?;
                Ok(EXIT_OK)
            }
            Command::SparkSql(args) => {
                let (job, window) = args.job.load()?;
                let manifest = spark_sql::manifest(&job, &window).await?;
                let mut text = serde_json::to_string_pretty(&manifest)
                    .map_err(|e| Error::Io { context: "serialising the Spark manifest".into(), source: e.into() })?;
                text.push('\n');
                match &args.out {
                    Some(path) => std::fs::write(path, text)
                        .map_err(|source| Error::Io { context: format!("writing {}", path.display()), source })?,
                    None => std::io::stdout()
                        .write_all(text.as_bytes())
                        .map_err(|source| Error::Io { context: "writing to stdout".into(), source })?,
                }
                Ok(EXIT_OK)
            }
            Command::Report(args) => crate::report::execute(args).await,
            Command::Query(args) => crate::query::execute(args).await,
        }
    }
}
