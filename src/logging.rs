//! Log setup: tracing to stderr, level from `-v` flags unless `RUST_LOG` is set.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbosity` counts `-v` flags (0 = warnings only).
pub fn init(verbosity: u8) {
    let default_level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("gateway_analytics={default_level},warn")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
