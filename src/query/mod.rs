//! `gateway-analytics query`: DataFusion SQL over the job's output tables and its inputs, for
//! questions the outputs do not answer directly (docs/QUERY.md).
//!
//! The session holds, under their own names: every output table found under the job's output
//! location and the ledger `computed_dates` (a table not written yet is simply absent, and
//! [`QuerySession::absent`] says why); the job's Delta inputs `usage`, `payload`, `traces`,
//! `served_entities` at their latest versions (opened and checked by [`OpenedInputs`]); the
//! reference tables `prices`, `teams` and `rate_limit_rules`; and the project's SQL functions
//! (`gateway_usage`, `trace_token_usage`). Statements that modify data (`INSERT`, `COPY`) are
//! refused: the command reads. Views and tables created with `CREATE VIEW` live in the session
//! only.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::util::pretty::pretty_format_batches_with_schema;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::context::SQLOptions;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::datafusion::sql::parser::DFParser;

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::inputs::{self, OpenedInputs, ReferenceData};
use crate::ledger::LEDGER;
use crate::outputs;
use crate::{prices, reference_data};

mod prompt;

pub use prompt::{history_path, statement_complete};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    /// An aligned text table and the number of rows.
    Table,
    /// CSV with a header line.
    Csv,
    /// JSON Lines: one object per row (decimals as exact numbers, timestamps RFC 3339 UTC).
    Json,
    /// One Parquet file (needs `--out`, or stdout that is not a terminal).
    Parquet,
}

impl QueryFormat {
    fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "table" => Some(QueryFormat::Table),
            "csv" => Some(QueryFormat::Csv),
            "json" => Some(QueryFormat::Json),
            "parquet" => Some(QueryFormat::Parquet),
            _ => None,
        }
    }
}

/// What a registered table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// An output table of the job.
    Output,
    /// The ledger `computed_dates`.
    Ledger,
    /// A Delta input of the job.
    Input,
    /// A reference table built from the job's files (prices, teams, rate limits).
    Reference,
}

impl TableKind {
    fn as_str(self) -> &'static str {
        match self {
            TableKind::Output => "output",
            TableKind::Ledger => "ledger",
            TableKind::Input => "input",
            TableKind::Reference => "reference",
        }
    }
}

/// A table the session holds.
#[derive(Debug, Clone)]
pub struct RegisteredTable {
    /// Its name in SQL.
    pub name: String,
    /// What it is.
    pub kind: TableKind,
    /// Where it is read from (without credentials).
    pub location: String,
}

/// A table the session would hold but does not, and why.
#[derive(Debug, Clone)]
pub struct AbsentTable {
    /// Its name.
    pub name: String,
    /// Why it is absent.
    pub why: String,
}

/// A DataFusion session with the job's tables registered.
pub struct QuerySession {
    /// The session (with the project's SQL functions).
    pub ctx: SessionContext,
    /// The tables registered, in the order listed to the user.
    pub tables: Vec<RegisteredTable>,
    /// The tables that could not be registered.
    pub absent: Vec<AbsentTable>,
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession").field("tables", &self.tables).field("absent", &self.absent).finish()
    }
}

/// Registers every output table found under the job's output location, and the ledger, on
/// `ctx` under their names; returns those registered and those absent (not written yet).
pub async fn register_outputs(
    ctx: &SessionContext,
    job: &JobConfig,
) -> Result<(Vec<RegisteredTable>, Vec<AbsentTable>)> {
    let mut registered = Vec::new();
    let mut absent = Vec::new();
    let names = outputs::all_tables().map(|t| (t.name, outputs::skip_reason(job, t), TableKind::Output));
    for (name, skipped, kind) in names.chain([(LEDGER, None, TableKind::Ledger)]) {
        let location = job.output.child(name);
        match outputs::open_stored(ctx, job, name).await? {
            Some(provider) => {
                inputs::register_table(ctx, name, provider)?;
                registered.push(RegisteredTable { name: name.to_string(), kind, location: location.to_string() });
            }
            None => {
                // The new AI Gateway's outputs are no part of a job that does not write them.
                let beta = crate::ai_gateway::OUTPUTS.iter().find(|t| t.name == name);
                if beta.is_some_and(|t| !crate::ai_gateway::is_written(job, t)) {
                    continue;
                }
                let why = match skipped {
                    Some(reason) => format!("no Delta table at {location}; runs of this job do not write it: {reason}"),
                    None => format!("no Delta table at {location} (no run has written it yet)"),
                };
                absent.push(AbsentTable { name: name.to_string(), why });
            }
        }
    }
    Ok((registered, absent))
}

impl QuerySession {
    /// Opens the job's outputs, inputs and reference files and registers them. An input or
    /// reference file that cannot be opened is reported absent (with the reason), so the
    /// outputs can still be queried; an output location that cannot be read is an error.
    pub async fn open(job: &JobConfig) -> Result<Self> {
        let ctx = crate::engine::session_within(&job.settings.engine)?;
        // `SHOW TABLES`, `SHOW COLUMNS FROM t` and `information_schema` for the user.
        ctx.state_ref().write().config_mut().options_mut().catalog.information_schema = true;
        let (mut tables, mut absent) = register_outputs(&ctx, job).await?;

        let configured = [
            ("usage", job.usage.as_ref()),
            ("payload", job.payload.as_ref()),
            ("traces", job.traces.as_ref()),
            ("served_entities", job.served_entities.as_ref()),
            ("gateway_usage", job.gateway_usage.as_ref()),
            ("gateway_payload", job.gateway_payload.as_ref()),
        ];
        match OpenedInputs::open(job).await {
            Ok(opened) => {
                opened.register(&ctx, job).await?;
                for (name, location) in configured {
                    let source = match name {
                        "served_entities" => name.to_string(),
                        // The new AI Gateway's tables as they are (their canonical views keep them).
                        "gateway_usage" | "gateway_payload" => format!("{name}_raw"),
                        _ => format!("{name}_source"),
                    };
                    let provider = ctx.table_provider(source.as_str()).await.map_err(|e| Error::query(name, e))?;
                    if source != name {
                        ctx.deregister_table(source.as_str()).map_err(|e| Error::query(name, e))?;
                    }
                    match location {
                        Some(location) => {
                            if source != name {
                                inputs::register_table(&ctx, name, provider)?;
                            }
                            tables.push(RegisteredTable {
                                name: name.to_string(),
                                kind: TableKind::Input,
                                location: location.to_string(),
                            });
                        }
                        // The new AI Gateway's tables are optional and no part of a job without them;
                        // served_entities is no part of a job of the new AI Gateway alone.
                        None if name.starts_with("gateway_") => {}
                        None if name == "served_entities" && !job.has_serving_endpoint_tables() => {}
                        None => absent.push(AbsentTable {
                            name: name.to_string(),
                            why: format!("the job file names no `inputs.{name}`"),
                        }),
                    }
                }
            }
            Err(error) => {
                for (name, location) in configured {
                    if location.is_none() && name.starts_with("gateway_") {
                        continue;
                    }
                    let why = match location {
                        Some(_) => format!("the inputs could not be opened: {error}"),
                        None => format!("the job file names no `inputs.{name}`"),
                    };
                    absent.push(AbsentTable { name: name.to_string(), why });
                }
            }
        }

        match ReferenceData::load(job).await {
            Ok(reference) => {
                let built = [
                    ("prices", prices::prices_table(&reference.prices.rows), job.prices.as_ref()),
                    ("teams", reference_data::teams_table(&reference.teams), job.teams.as_ref()),
                    ("rate_limit_rules", reference.rate_limits.rules_table(), job.rate_limits.as_ref()),
                    (
                        crate::ai_gateway::rate_limits::RULES_TABLE,
                        reference.gateway_rate_limits.rules_table(),
                        job.gateway_rate_limits.as_ref(),
                    ),
                ];
                for (name, table, location) in built {
                    inputs::register_table(&ctx, name, Arc::new(table?))?;
                    let location =
                        location.map_or_else(|| "(none in the job file: empty)".to_string(), |l| l.to_string());
                    tables.push(RegisteredTable { name: name.to_string(), kind: TableKind::Reference, location });
                }
            }
            Err(error) => {
                for name in ["prices", "teams", "rate_limit_rules", crate::ai_gateway::rate_limits::RULES_TABLE] {
                    absent.push(AbsentTable { name: name.to_string(), why: format!("{error}") });
                }
            }
        }
        Ok(QuerySession { ctx, tables, absent })
    }

    /// One line per absent table, for stderr.
    pub fn absent_notes(&self) -> Vec<String> {
        self.absent.iter().map(|a| format!("note: table `{}` is absent: {}", a.name, a.why)).collect()
    }

    /// Runs every statement of `sql` in order and returns the results of those that return
    /// columns. Parse and planning errors (an unknown table or column, bad syntax) are
    /// [`Error::Usage`] and name the table or column; failures while executing are
    /// [`Error::Query`].
    pub async fn run(&self, sql: &str) -> Result<Vec<QueryResult>> {
        // DataFusion's default (generic) dialect, as `SessionContext::sql` parses it.
        let statements = DFParser::parse_sql(sql).map_err(|e| self.usage_error(e))?;
        let options = SQLOptions::new().with_allow_dml(false);
        let mut results = Vec::new();
        for statement in statements {
            let plan = self.ctx.state().statement_to_plan(statement).await.map_err(|e| self.usage_error(e))?;
            options.verify_plan(&plan).map_err(|e| {
                Error::Usage(format!(
                    "{}: `query` only reads (INSERT, UPDATE, DELETE and COPY are refused)",
                    e.strip_backtrace()
                ))
            })?;
            let frame = self.ctx.execute_logical_plan(plan).await.map_err(|e| self.usage_error(e))?;
            let schema: SchemaRef = frame.schema().inner().clone();
            let batches = frame.collect().await.map_err(|e| Error::query("query", e))?;
            if !schema.fields().is_empty() {
                results.push(QueryResult { schema, batches });
            }
        }
        Ok(results)
    }

    /// A planning error, with what the user needs to fix it: the absent table's reason, or
    /// the tables there are.
    fn usage_error(&self, error: DataFusionError) -> Error {
        let message = error.strip_backtrace();
        let mut hint = String::new();
        if let Some(table) = missing_table(&message) {
            match self.absent.iter().find(|a| a.name == table) {
                Some(absent) => hint = format!(" (`{table}` is absent: {})", absent.why),
                None => {
                    let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
                    hint = format!(" (the tables are: {})", names.join(", "));
                }
            }
        }
        Error::Usage(format!("SQL: {message}{hint}"))
    }
}

/// The unqualified table name of DataFusion's "table '...' not found" error.
fn missing_table(message: &str) -> Option<String> {
    let rest = message.split("table '").nth(1)?;
    let (name, after) = rest.split_once('\'')?;
    if !after.trim_start().starts_with("not found") {
        return None;
    }
    Some(name.rsplit('.').next().unwrap_or(name).to_string())
}

/// The rows one statement returned.
#[derive(Debug)]
pub struct QueryResult {
    /// Its columns.
    pub schema: SchemaRef,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Writes the rows in `format`.
    pub fn write(&self, format: QueryFormat, out: &mut dyn Write) -> Result<()> {
        let io = |source| Error::Io { context: "writing the query result".into(), source };
        let arrow = |e: deltalake::arrow::error::ArrowError| Error::Io {
            context: "writing the query result".into(),
            source: std::io::Error::other(e),
        };
        match format {
            QueryFormat::Table => {
                let table = pretty_format_batches_with_schema(self.schema.clone(), &self.batches).map_err(arrow)?;
                let rows = self.rows();
                writeln!(out, "{table}\n({rows} row{})", if rows == 1 { "" } else { "s" }).map_err(io)?;
            }
            QueryFormat::Csv => {
                let mut writer = deltalake::arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
                if self.batches.is_empty() {
                    writer.write(&RecordBatch::new_empty(self.schema.clone())).map_err(arrow)?;
                }
                for batch in &self.batches {
                    writer.write(batch).map_err(arrow)?;
                }
            }
            QueryFormat::Json => {
                let mut writer = deltalake::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, deltalake::arrow::json::writer::LineDelimited>(&mut *out);
                for batch in &self.batches {
                    writer.write(batch).map_err(arrow)?;
                }
                writer.finish().map_err(arrow)?;
            }
            QueryFormat::Parquet => {
                let parquet = |e: deltalake::parquet::errors::ParquetError| Error::Io {
                    context: "writing the query result as Parquet".into(),
                    source: std::io::Error::other(e),
                };
                let mut buffer = Vec::new();
                let mut writer =
                    deltalake::parquet::arrow::ArrowWriter::try_new(&mut buffer, self.schema.clone(), None)
                        .map_err(parquet)?;
                for batch in &self.batches {
                    writer.write(batch).map_err(parquet)?;
                }
                writer.close().map_err(parquet)?;
                out.write_all(&buffer).map_err(io)?;
            }
        }
        Ok(())
    }
}

/// Arguments of `query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The job file (TOML): its output location and inputs give the tables.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The SQL (one or more statements separated by `;`). Without it: read from stdin, or an
    /// interactive prompt with history when stdin is a terminal.
    pub sql: Option<String>,
    /// How to print results.
    #[arg(long, value_enum, default_value = "table")]
    pub format: QueryFormat,
    /// Write the results to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// Runs `query` from its command line; returns the exit code.
pub async fn execute(args: QueryArgs) -> Result<u8> {
    let job = JobConfig::load(&args.config)?;
    let options = QueryOptions { sql: args.sql, format: args.format, out: args.out };
    query(&job, &options).await?;
    Ok(crate::error::EXIT_OK)
}

/// What `query` was asked to do.
#[derive(Debug)]
pub struct QueryOptions {
    /// The SQL; `None`: read it from stdin, or prompt on a terminal.
    pub sql: Option<String>,
    /// How to print results.
    pub format: QueryFormat,
    /// Write results to this file instead of stdout.
    pub out: Option<PathBuf>,
}

/// Runs `query`: one-shot SQL (argument or stdin) or the interactive prompt.
pub async fn query(job: &JobConfig, options: &QueryOptions) -> Result<()> {
    let interactive = options.sql.is_none() && std::io::stdin().is_terminal();
    if interactive && options.out.is_some() {
        return Err(Error::Usage(
            "--out writes the results of SQL given as an argument or on stdin, not of the prompt".into(),
        ));
    }
    let session = QuerySession::open(job).await?;
    if interactive {
        return prompt::prompt(&session, options.format).await;
    }
    for note in session.absent_notes() {
        eprintln!("{note}");
    }
    let sql = match &options.sql {
        Some(sql) => sql.clone(),
        None => std::io::read_to_string(std::io::stdin())
            .map_err(|source| Error::Io { context: "reading SQL from stdin".into(), source })?,
    };
    let results = session.run(&sql).await?;
    write_results(&results, options.format, options.out.as_deref())
}

/// Writes the results to `out` (a file) or stdout.
pub fn write_results(results: &[QueryResult], format: QueryFormat, out: Option<&Path>) -> Result<()> {
    if format == QueryFormat::Parquet && results.len() > 1 {
        return Err(Error::Usage(format!(
            "--format parquet writes one result, and the SQL returned {}: run one query",
            results.len()
        )));
    }
    match out {
        Some(path) => {
            let io = |source| Error::Io { context: format!("writing {}", path.display()), source };
            let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
            for result in results {
                result.write(format, &mut file)?;
            }
            file.flush().map_err(io)
        }
        None => {
            if format == QueryFormat::Parquet && std::io::stdout().is_terminal() {
                return Err(Error::Usage(
                    "--format parquet: give --out FILE (or redirect stdout) rather than print Parquet on a terminal"
                        .into(),
                ));
            }
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for result in results {
                result.write(format, &mut out)?;
            }
            out.flush().map_err(|source| Error::Io { context: "writing to stdout".into(), source })
        }
    }
}

/// A `\format` argument of the prompt.
pub(crate) fn parse_format(value: &str) -> Option<QueryFormat> {
    QueryFormat::parse(value)
}

/// The kind of a table, as the prompt's `\d` lists it.
pub(crate) fn kind_label(table: &RegisteredTable) -> &'static str {
    table.kind.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_missing_table_in_datafusions_message() {
        let message = "Error during planning: table 'datafusion.public.daily_spnd' not found";
        assert_eq!(missing_table(message).as_deref(), Some("daily_spnd"));
        assert_eq!(missing_table("Schema error: No field named x"), None);
    }
}
