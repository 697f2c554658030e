//! `gateway-analytics report`: one self-contained HTML file of a window, built from the output
//! tables (never the inputs): spend by team and model, top requesters and teams, error and 429
//! heatmaps, latency, alerts, proposed rate-limit changes with their evidence, trace coverage,
//! data quality, and the window's provenance from the ledger.
//!
//! The page has no script and loads nothing: styles are inline and charts are SVG drawn here
//! ([`svg`]). It carries aggregates ([`data`]), so its size depends on the numbers of dates,
//! endpoints and checks, not on the rows of the tables. Its labelled totals carry their exact
//! values in `data-value` attributes, which `scripts/report-browser-test.sh` compares with the
//! output tables in a headless browser.

pub mod data;
pub mod html;
pub mod rows;
pub mod svg;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::JobConfig;
use crate::error::{EXIT_OK, Error, Result};
use crate::window::RunWindow;

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The job file (TOML); the report reads the output tables under its output location.
    #[arg(long, short)]
    pub config: PathBuf,
    /// First UTC date of the window (default: yesterday; alone, a one-day window).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last UTC date of the window, inclusive (default: --from, or yesterday).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// The HTML file to write.
    #[arg(long, value_name = "PATH", default_value = "report.html")]
    pub out: PathBuf,
}

/// Runs `report` from its command line; returns the exit code.
pub async fn execute(args: ReportArgs) -> Result<u8> {
    let job = JobConfig::load(&args.config)?;
    let window = RunWindow::from_args(args.from, args.to)?;
    let bytes = write(&job, window, &args.out).await?;
    eprintln!("wrote {} ({} KiB) for {window}", args.out.display(), bytes.div_ceil(1024));
    Ok(EXIT_OK)
}

/// The report page of `window` as HTML.
pub async fn render(job: &JobConfig, window: RunWindow) -> Result<String> {
    let data = data::load(job, window).await?;
    Ok(html::render(&data))
}

/// Writes the report of `window` to `path` (replacing it whole: a reader never sees half a
/// page); returns its size in bytes.
pub async fn write(job: &JobConfig, window: RunWindow, path: &Path) -> Result<usize> {
    let page = render(job, window).await?;
    let io = |source| Error::Io { context: format!("writing {}", path.display()), source };
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(folder).map_err(io)?;
    std::io::Write::write_all(&mut file, page.as_bytes()).map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(page.len())
}
