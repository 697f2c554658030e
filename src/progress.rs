//! Progress display: a spinner naming the current stage when stderr is a terminal, nothing
//! otherwise (logs and pipes stay clean).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows which stage a long run is in.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A spinner on stderr if it is a terminal; silent otherwise.
    pub fn for_stderr() -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// A progress display that never prints.
    pub fn hidden() -> Self {
        Progress { bar: None }
    }

    /// Announces a stage (also logged at info level).
    pub fn stage(&self, message: &str) {
        tracing::info!("{message}");
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
