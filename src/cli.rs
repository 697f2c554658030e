//! The command line (clap derive) and what each command does.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::config::JobConfig;
use crate::error::Result;
use crate::generate::{self, GenerateOptions};
use crate::progress::Progress;
use crate::run;
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
    /// Recompute the output tables for a window of UTC dates and print a summary.
    Run(RunArgs),
    /// Write a deterministic, realistic demo data set (Delta tables and CSVs).
    Generate(GenerateArgs),
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file (TOML) naming the inputs and the output location.
    #[arg(long, short)]
    pub config: PathBuf,
    /// First UTC date to recompute (default: yesterday; alone, a one-day window).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last UTC date to recompute, inclusive (default: --from, or yesterday).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// How to print the window's summary on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: SummaryFormat,
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
}

impl Cli {
    /// Runs the parsed command.
    pub async fn execute(self) -> Result<()> {
        match self.command {
            Command::Run(args) => {
                let job = JobConfig::load(&args.config)?;
                let window = RunWindow::from_args(args.from, args.to)?;
                let summary = run::run(&job, window, &Progress::for_stderr()).await?;
                let stdout = std::io::stdout();
                summary.print(args.format, &mut stdout.lock())
            }
            Command::Generate(args) => {
                let options = GenerateOptions {
                    seed: args.seed,
                    days: args.days,
                    start: args.start,
                    requests_per_day: args.requests_per_day,
                    request_bytes: args.request_bytes,
                };
                generate::generate(&options, &args.out, &Progress::for_stderr()).await
            }
        }
    }
}
