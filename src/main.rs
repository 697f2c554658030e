//! The `gateway-analytics` binary: parses the command line and maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use gateway_analytics::cli::Cli;
use gateway_analytics::error::EXIT_RUNTIME;

fn main() -> ExitCode {
    bound_allocator_memory();
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

/// Keeps glibc's allocator from holding much more memory than the run uses, so that the
/// process stays within `memory_limit_mib` (docs/PERFORMANCE.md, "The allocator"). By default
/// glibc keeps up to eight arenas per core, each holding on to what was freed in it, and raises
/// its mmap threshold as large buffers are freed, after which those buffers are kept too: a
/// 10M-request run took about 1.5 times the memory it takes with these settings, in the same
/// time. Set here: at most one arena per core; a fixed 4 MiB mmap threshold, so buffers that
/// large (a batch's columns, Parquet pages) go back to the system when freed; and a 64 MiB
/// trim threshold, so a heap gives memory back only when that much is free at its top
/// (returning every free page at once cost 20% more time in page faults). A setting given in
/// the environment (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`) is
/// left as given.
fn bound_allocator_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        let settings = [
            ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, arenas),
            ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 4 << 20),
            ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 64 << 20),
        ];
        for (variable, parameter, value) in settings {
            if std::env::var_os(variable).is_none() {
                // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread.
                unsafe {
                    libc::mallopt(parameter, value);
                }
            }
        }
    }
}
