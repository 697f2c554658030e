//! The one error type of the crate, and the process exit code each kind of error maps to.

use std::path::PathBuf;

/// Exit code of a run that finished and wrote every output.
pub const EXIT_OK: u8 = 0;
/// Exit code when the run failed while reading, computing or writing (storage, engine).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code when the job file, the command line or an input's shape is wrong: fix and rerun.
pub const EXIT_BAD_CONFIG_OR_INPUT: u8 = 2;
/// Exit code of a run that wrote every output and fired an alert at or above `--fail-on`.
pub const EXIT_ALERTS: u8 = 3;
/// Exit code when another run holds the output location's lease (after `--wait`): nothing was
/// computed or written; run again later.
pub const EXIT_LEASE_HELD: u8 = 4;
/// Exit code of a run that passed its deadline (`[engine] deadline_minutes`, `run --deadline`)
/// and stopped; the message names the stage it was in and what was committed (normally nothing).
pub const EXIT_DEADLINE: u8 = 5;

/// Everything that can go wrong in a run, worded so that a user can act on it.
///
/// Messages name table locations through [`crate::location::Location`]'s display form, which
/// never contains credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job file could not be read or does not describe a valid job.
    #[error("job file {path}: {message}")]
    Config { path: PathBuf, message: String },

    /// The command line asked for something impossible (for example `--from` after `--to`).
    #[error("{0}")]
    Usage(String),

    /// An input table is not there or is not a Delta table.
    #[error("input `{input}` at {location}: {message}")]
    InputUnavailable { input: String, location: String, message: String },

    /// An input table lacks a column the computation needs.
    #[error(
        "input `{input}` at {location}: required column `{column}` is missing \
         (expected type {expected}; the table has: {found})"
    )]
    MissingColumn { input: String, location: String, column: String, expected: String, found: String },

    /// Reading an input failed for a reason that may pass on a retry (network, permissions,
    /// throttling, a corrupt log).
    #[error("input `{input}` at {location} could not be read: {message}")]
    InputRead { input: String, location: String, message: String },

    /// An input column exists but has a type the computation cannot use.
    #[error("input `{input}` at {location}: column `{column}` has type {found}, expected {expected}")]
    WrongColumnType { input: String, location: String, column: String, expected: String, found: String },

    /// A CSV reference file (prices, teams) is malformed.
    #[error("{input} file {location}, line {line}: {message}")]
    ReferenceData { input: String, location: String, line: u64, message: String },

    /// A query from `queries/` failed to plan or execute.
    #[error("query `{query}`: {source}{}", memory_hint(source))]
    Query {
        query: String,
        #[source]
        source: deltalake::datafusion::error::DataFusionError,
    },

    /// Writing an output table failed; the table is left at its previous version.
    #[error("output table `{table}` at {location}: {message}")]
    Output { table: String, location: String, message: String },

    /// Another run holds the output location's lease.
    #[error(
        "another run holds the lease on {location}: {holder}; its lease expires at {expires_at} unless renewed. \
         Nothing was computed or written: run again when it has finished, or give --wait SECONDS"
    )]
    LeaseHeld { location: String, holder: String, expires_at: String },

    /// The lease could not be read, taken or released.
    #[error("the lease on {location}: {message}")]
    Lease { location: String, message: String },

    /// This run lost its lease before it finished committing.
    #[error(
        "this run lost its lease on {location} ({message}); it stopped before its next commit. The next run \
         recomputes the dates it left unfinished"
    )]
    LeaseLost { location: String, message: String },

    /// Dates that have outputs would be replaced by outputs of empty inputs.
    #[error(
        "{what} for {dates}, which already have outputs: the run would replace them with empty ones, so it \
         wrote nothing. Check the inputs (a failed copy job, a paused endpoint's logging), or rerun with \
         --allow-empty if the dates truly had no traffic"
    )]
    EmptyInputs { what: String, dates: String },

    /// The data generator could not write its tables.
    #[error("generate: {0}")]
    Generate(String),

    /// The run passed its deadline and stopped (see [`crate::deadline`]).
    #[error("{0}")]
    DeadlinePassed(String),

    /// Writing to stdout or a local file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error (see the README's exit-code table).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config { .. }
            | Error::Usage(_)
            | Error::InputUnavailable { .. }
            | Error::MissingColumn { .. }
            | Error::WrongColumnType { .. }
            | Error::ReferenceData { .. }
            | Error::EmptyInputs { .. } => EXIT_BAD_CONFIG_OR_INPUT,
            Error::LeaseHeld { .. } => EXIT_LEASE_HELD,
            Error::InputRead { .. }
            | Error::Query { .. }
            | Error::Output { .. }
            | Error::Lease { .. }
            | Error::LeaseLost { .. }
            | Error::Generate(_)
            | Error::Io { .. } => EXIT_RUNTIME,
            Error::DeadlinePassed(_) => EXIT_DEADLINE,
        }
    }

    /// Wraps a DataFusion error raised by the named query.
    pub fn query(query: &str, source: deltalake::datafusion::error::DataFusionError) -> Self {
        Error::Query { query: query.to_string(), source }
    }
}

/// What to do when a query ran out of the run's memory budget.
fn memory_hint(source: &deltalake::datafusion::error::DataFusionError) -> &'static str {
    match source.find_root() {
        deltalake::datafusion::error::DataFusionError::ResourcesExhausted(_) => {
            ". The run's memory budget is `[engine] memory_limit_mib` in the job file (default 2048): raise \
             it, or run a shorter window"
        }
        _ => "",
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
