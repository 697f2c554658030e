//! Log setup: tracing to stderr, level from `-v` flags unless `RUST_LOG` is set.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbosity` counts `-v` flags: 0 shows this tool's warnings
/// only (a failure is reported once, as the error message), 1 adds its progress and the
/// libraries' warnings, 2 and 3 debug and trace.
pub fn init(verbosity: u8) {
    let directives = match verbosity {
        0 => "gateway_analytics=warn,off",
        1 => "gateway_analytics=info,warn",
        2 => "gateway_analytics=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
