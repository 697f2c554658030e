//! The `gateway-analytics` binary: parses the command line and maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use gateway_analytics::cli::Cli;
use gateway_analytics::error::EXIT_RUNTIME;

fn main() -> ExitCode {
    let cli = Cli::parse();
    gateway_analytics::logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = runtime.block_on(cli.execute());
    // A run stopped by its deadline or an error may leave tasks behind (scans, writers, a
    // call that does not return); the process does not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
