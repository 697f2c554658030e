//! Helpers shared by the integration tests: job files over the demo fixtures, running the job
//! and reading output tables back.

use std::path::{Path, PathBuf};

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::util::pretty::pretty_format_batches;
use gateway_analytics::config::JobConfig;
use gateway_analytics::engine::session;
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;
use gateway_analytics::outputs::OutputSelection;
use gateway_analytics::progress::Progress;
use gateway_analytics::run;
use gateway_analytics::summary::RunSummary;
use gateway_analytics::window::RunWindow;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled demo data set.
pub fn demo() -> PathBuf {
    repo().join("fixtures/demo")
}

pub fn date(s: &str) -> chrono::NaiveDate {
    s.parse().expect("test date")
}

/// The demo window.
pub fn demo_window() -> RunWindow {
    RunWindow::new(date("2026-11-01"), date("2026-11-03")).expect("window")
}

/// `jobs/demo.toml` with absolute fixture paths, `payload` chosen (or removed) and the output
/// folder replaced.
pub fn job_text(payload: Option<&Path>, output: &Path) -> String {
    let demo_toml = std::fs::read_to_string(repo().join("jobs/demo.toml")).expect("jobs/demo.toml");
    let quoted = |p: &Path| format!("{:?}", p.display().to_string());
    let payload_line = payload.map(|p| format!("payload = {}", quoted(p))).unwrap_or_default();
    demo_toml
        .lines()
        .map(|line| {
            if line.starts_with("payload = ") {
                payload_line.clone()
            } else if line.starts_with("location = ") {
                format!("location = {}", quoted(output))
            } else {
                line.replace("../fixtures/demo", &demo().display().to_string())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The demo job (plain payload table) writing into `output`.
pub fn demo_job(output: &Path) -> JobConfig {
    job_with_payload(Some(&demo().join("gateway_payload")), output)
}

/// A demo job with another payload table (or none).
pub fn job_with_payload(payload: Option<&Path>, output: &Path) -> JobConfig {
    JobConfig::parse(&job_text(payload, output), &repo().join("jobs/test.toml")).expect("job")
}

/// Runs a job on a window.
pub async fn run_job(job: &JobConfig, window: RunWindow) -> gateway_analytics::error::Result<RunSummary> {
    run::run(job, window, &OutputSelection::All, &run::RunOptions::default(), &Progress::hidden()).await
}

/// Runs a job on a window for the named outputs and the outputs they read (`run --only`).
pub async fn run_only(
    job: &JobConfig,
    window: RunWindow,
    names: &[&str],
) -> gateway_analytics::error::Result<RunSummary> {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let selection = OutputSelection::named(&names)?;
    run::run(job, window, &selection, &run::RunOptions::default(), &Progress::hidden()).await
}

/// Runs `sql` over the Delta table at `location`, registered as `t`, through the project's reader.
pub async fn query_table(location: &Path, sql: &str) -> Vec<RecordBatch> {
    let ctx = session().unwrap();
    let loc = Location::resolve(&location.display().to_string(), Path::new("/")).expect("location");
    let provider = delta_provider(&ctx, "test", &loc, &Default::default()).await.expect("open table");
    ctx.register_table("t", provider).expect("register");
    ctx.sql(sql).await.expect("plan").collect().await.expect("collect")
}

/// All rows of a Delta table, ordered by every (non-nested) column.
pub async fn read_table(location: &Path) -> Vec<RecordBatch> {
    read_table_where(location, "TRUE").await
}

/// The rows of a Delta table matching the SQL `predicate`, ordered by every (non-nested) column.
pub async fn read_table_where(location: &Path, predicate: &str) -> Vec<RecordBatch> {
    let ctx = session().unwrap();
    let loc = Location::resolve(&location.display().to_string(), Path::new("/")).expect("location");
    let provider = delta_provider(&ctx, "test", &loc, &Default::default()).await.expect("open table");
    let columns: Vec<String> = provider
        .schema()
        .fields()
        .iter()
        .filter(|f| !f.data_type().is_nested())
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    query_table(location, &format!("SELECT * FROM t WHERE {predicate} ORDER BY {}", columns.join(", "))).await
}

/// An output table of a run as text (one line per row, all columns), for comparisons.
pub async fn table_text(location: &Path) -> String {
    pretty_format_batches(&read_table(location).await).expect("format").to_string()
}

/// CSV text of batches (header + rows).
pub fn csv_text(batches: &[RecordBatch]) -> String {
    let mut out = Vec::new();
    {
        let mut writer = deltalake::arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
        for batch in batches {
            writer.write(batch).expect("csv");
        }
    }
    String::from_utf8(out).expect("utf8")
}

/// Latest version of a Delta table.
pub async fn version(location: &Path) -> i64 {
    let url = url::Url::from_directory_path(location).expect("url");
    let table = deltalake::open_table(url).await.expect("open");
    table.version().expect("version") as i64
}

/// Asserts two multi-line texts are equal, reporting only the first differing line.
pub fn assert_same_lines(left: &str, right: &str, what: &str) {
    if left == right {
        return;
    }
    let clip = |s: &str| s.chars().take(300).collect::<String>();
    let (l, r): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let first = (0..l.len().max(r.len())).find(|&i| l.get(i) != r.get(i)).unwrap_or(0);
    panic!(
        "{what} differs at line {first} ({} vs {} lines):\n  left:  {}\n  right: {}",
        l.len(),
        r.len(),
        clip(l.get(first).copied().unwrap_or("<none>")),
        clip(r.get(first).copied().unwrap_or("<none>"))
    );
}

/// Writes `batches` as a new Delta table at `path` (delta-rs, plain protocol).
pub async fn write_delta(path: &Path, batches: Vec<RecordBatch>) {
    std::fs::create_dir_all(path).expect("create table folder");
    let table =
        deltalake::DeltaTable::try_from_url(url::Url::from_directory_path(path).expect("url")).await.expect("table");
    table.write(batches).with_save_mode(deltalake::protocol::SaveMode::Append).await.expect("write");
}

/// Total bytes of the Parquet files of a table folder.
pub fn parquet_bytes(table: &Path) -> u64 {
    std::fs::read_dir(table)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the demo fixtures at `dir/fixtures` (to change the inputs) and the text of the
/// demo job over it writing into `dir/out`, with `extra` appended (job-file sections).
pub fn copied_demo(dir: &Path, extra: &str) -> (PathBuf, String) {
    let fixtures = dir.join("fixtures");
    copy_dir(&demo(), &fixtures);
    let demo_toml = std::fs::read_to_string(repo().join("jobs/demo.toml")).expect("jobs/demo.toml");
    let text = demo_toml
        .replace("../fixtures/demo", &fixtures.display().to_string())
        .replace("\"../out/demo\"", &format!("{:?}", dir.join("out").display().to_string()));
    (fixtures, format!("{text}\n{extra}\n"))
}
